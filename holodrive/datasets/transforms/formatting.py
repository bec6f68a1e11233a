"""Instance filtering and packing that keep HoloDrive's extra per-box and per-frame keys."""
from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet3d.datasets.transforms import Pack3DDetInputs
from mmdet3d.datasets.transforms.formating import to_tensor

from holodrive.registry import TRANSFORMS

#: Per-box keys that must be filtered together.
INSTANCE_KEYS = ('gt_bboxes_3d', 'gt_labels_3d', 'gt_instance_ids', 'gt_instance_tokens',
                 'attr_labels', 'centers_2d', 'depths')

#: Per-frame context packed into the data sample's metainfo by default.
SCENE_META_KEYS = ('token', 'scene_token', 'scene_name', 'scene_description', 'location',
                   'frame_idx', 'num_frames', 'timestamp', 'prev', 'next',
                   'ego_velocity', 'ego_yaw_rate', 'lidar2ego', 'cam2ego',
                   'map_bev_layers', 'box_bev_groups')


@TRANSFORMS.register_module()
class FilterSceneInstances(BaseTransform):
    """Drop boxes outside a BEV range and/or with ignored labels, keeping all
    per-box keys (:data:`INSTANCE_KEYS`) aligned -- mmdet3d's ``ObjectRangeFilter``
    and ``ObjectNameFilter`` only filter boxes and labels.

    Args:
        point_cloud_range (Sequence[float], optional): ``[x0, y0, z0, x1, y1, z1]``;
            boxes whose BEV centre is outside ``[x0, x1) x [y0, y1)`` are dropped.
        drop_ignored (bool): drop labels ``-1`` (classes outside the dataset's).
    """

    def __init__(self, point_cloud_range: Optional[Sequence[float]] = None,
                 drop_ignored: bool = True):
        self.pcd_range = None if point_cloud_range is None else \
            np.asarray(point_cloud_range, dtype=np.float32)
        self.drop_ignored = drop_ignored

    def transform(self, results: dict) -> dict:
        if 'gt_bboxes_3d' not in results:
            return results
        boxes = results['gt_bboxes_3d']
        keep = np.ones(len(boxes), dtype=bool)
        if self.pcd_range is not None:
            keep &= boxes.in_range_bev(self.pcd_range[[0, 1, 3, 4]]).numpy().astype(bool)
        if self.drop_ignored and 'gt_labels_3d' in results:
            keep &= np.asarray(results['gt_labels_3d']) >= 0
        for key in INSTANCE_KEYS:
            if key in results and len(results[key]) == len(keep):
                value = results[key]
                results[key] = value[torch.from_numpy(keep)] if key == 'gt_bboxes_3d' \
                    else value[keep]
        if self.pcd_range is not None:
            results['gt_bboxes_3d'].limit_yaw(offset=0.5, period=2 * np.pi)
        return results


@TRANSFORMS.register_module()
class PackSceneInputs(Pack3DDetInputs):
    """``Pack3DDetInputs`` that also packs HoloDrive's keys.

    - ``inputs``: ``points``, ``img`` as mmdet3d, plus ``depth_maps``
      (``(V, H, W)``), ``map_bev`` (``(C, H, W)``), ``box_bev`` (``(G, H, W)``) as
      tensors when listed in ``keys``; ``adjacent`` -- a list with the packed
      ``inputs`` of each neighbour loaded by ``LoadAdjacentFrames``.
    - ``data_samples.gt_instances_3d``: also ``instance_ids`` (from
      ``gt_instance_ids``) and ``instance_tokens``.
    - metainfo: mmdet3d's meta keys plus :data:`SCENE_META_KEYS`, and for
      neighbours ``adjacent_offsets``, ``adjacent_valid``, ``adjacent_adj2cur_lidar``,
      ``adjacent_time_delta``; the neighbours' data samples are in
      ``data_samples.adjacent`` (a list).
    """

    INPUTS_KEYS = Pack3DDetInputs.INPUTS_KEYS + ['depth_maps', 'map_bev', 'box_bev']
    INSTANCEDATA_3D_KEYS = Pack3DDetInputs.INSTANCEDATA_3D_KEYS + [
        'gt_instance_ids', 'gt_instance_tokens']

    def __init__(self, keys: tuple, meta_keys: Optional[tuple] = None):
        if meta_keys is None:
            meta_keys = tuple(Pack3DDetInputs.__init__.__defaults__[0]) + SCENE_META_KEYS
        super().__init__(keys=keys, meta_keys=meta_keys)

    def pack_single_results(self, results: dict) -> dict:
        for key in ('depth_maps', 'map_bev', 'box_bev', 'gt_instance_ids'):
            if key in results and isinstance(results[key], np.ndarray):
                results[key] = to_tensor(np.ascontiguousarray(results[key]))
        if 'lidar2ego' not in results and 'lidar_points' in results:
            results['lidar2ego'] = results['lidar_points'].get('lidar2ego')
        packed = super().pack_single_results(results)
        entries = [e for e in results.get('adjacent_frames', ()) if 'results' in e]
        if entries:
            packed_adj = [self.pack_single_results(e['results']) for e in entries]
            packed['inputs']['adjacent'] = [p['inputs'] for p in packed_adj]
            sample = packed['data_samples']
            sample.set_metainfo(dict(
                adjacent_offsets=[e['offset'] for e in entries],
                adjacent_valid=[e['valid'] for e in entries],
                adjacent_adj2cur_lidar=[np.asarray(e['adj2cur_lidar']) for e in entries],
                adjacent_time_delta=[e['time_delta'] for e in entries]))
            sample.adjacent = [p['data_samples'] for p in packed_adj]
        return packed
