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

#: Per-frame geometry (4x4 float matrices; per view lists for the cameras) that goes into
#: every data sample's metainfo and is stacked into tensors by ``SceneDataPreprocessor``.
GEOMETRY_KEYS = ('cam2img', 'lidar2cam', 'lidar2img', 'cam2lidar', 'img_aug_matrix',
                 'lidar_aug_matrix', 'ego2global')

#: Per-frame context packed into the data sample's metainfo by default.
SCENE_META_KEYS = ('token', 'scene_token', 'scene_name', 'scene_description', 'location',
                   'frame_idx', 'num_frames', 'timestamp', 'prev', 'next',
                   'ego_velocity', 'ego_yaw_rate', 'lidar2ego', 'cam2ego', 'caption',
                   'map_bev_layers', 'box_bev_groups', 'layout_channels', 'depth_bin_edges',
                   'camera_names', 'img_aug_params') + GEOMETRY_KEYS


@TRANSFORMS.register_module()
class FilterSceneInstances(BaseTransform):
    """Drop boxes outside a BEV range and/or with ignored labels, keeping all
    per-box keys (:data:`INSTANCE_KEYS`) aligned -- mmdet3d's ``ObjectRangeFilter``
    and ``ObjectNameFilter`` only filter boxes and labels.

    Args:
        point_cloud_range (Sequence[float], optional): ``[x0, y0, z0, x1, y1, z1]``;
            boxes whose BEV centre is outside ``[x0, x1) x [y0, y1)`` are dropped.
        drop_ignored (bool): drop labels ``-1`` (classes outside the dataset's).

    Raises:
        ValueError: a per-box key present in the results has another length than
            ``gt_bboxes_3d`` (it would silently fall out of step).
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
        bad = {k: len(results[k]) for k in INSTANCE_KEYS if k in results and
               len(results[k]) != len(keep)}
        if bad:
            raise ValueError(f'FilterSceneInstances: per-box keys {bad} do not match the '
                             f'{len(keep)} boxes of gt_bboxes_3d (token '
                             f'{results.get("token")}); a transform before it filtered boxes '
                             'without these keys: use FilterSceneInstances instead of '
                             'ObjectRangeFilter / ObjectNameFilter')
        if self.pcd_range is not None:
            keep &= boxes.in_range_bev(self.pcd_range[[0, 1, 3, 4]]).numpy().astype(bool)
        if self.drop_ignored and 'gt_labels_3d' in results:
            keep &= np.asarray(results['gt_labels_3d']) >= 0
        for key in INSTANCE_KEYS:
            if key in results:
                value = results[key]
                results[key] = value[torch.from_numpy(keep)] if key == 'gt_bboxes_3d' \
                    else value[keep]
        if self.pcd_range is not None:
            results['gt_bboxes_3d'].limit_yaw(offset=0.5, period=2 * np.pi)
        return results


def _to_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
        value = np.stack(value)
    return to_tensor(np.ascontiguousarray(value))


@TRANSFORMS.register_module()
class PackSceneInputs(Pack3DDetInputs):
    """``Pack3DDetInputs`` that also packs HoloDrive's keys.

    - ``inputs``: ``points``, ``img`` as mmdet3d; every other key listed in ``keys`` that
      is not a per-box / segmentation key becomes a tensor in ``inputs`` under its own
      name, e.g. ``depth_maps`` ``(V, H, W)``, ``depth_s16``, ``depth_bins_s16``,
      ``depth_valid_s16``, ``map_bev`` ``(C, H, W)``, ``box_bev`` ``(G, H, W)``,
      ``layout_images`` ``(V, C, h, w)``, ``ego_fut_traj`` ``(6, 2)``, ``ego_fut_valid``;
      ``adjacent``: a list with the packed ``inputs`` of each neighbour loaded by
      ``LoadAdjacentFrames``.
    - ``data_samples.gt_instances_3d``: also ``instance_ids`` (from ``gt_instance_ids``)
      and ``instance_tokens``.
    - metainfo: mmdet3d's meta keys plus :data:`SCENE_META_KEYS` (geometry matrices,
      caption, ...), and for neighbours ``adjacent_offsets``, ``adjacent_valid``,
      ``adjacent_adj2cur_lidar`` (neighbour LiDAR -> current *un-augmented* LiDAR frame;
      compose with ``lidar_aug_matrix``), ``adjacent_time_delta``; the neighbours' data
      samples are in ``data_samples.adjacent`` (a list).
    """

    INSTANCEDATA_3D_KEYS = Pack3DDetInputs.INSTANCEDATA_3D_KEYS + [
        'gt_instance_ids', 'gt_instance_tokens']
    _NOT_INPUTS = set(INSTANCEDATA_3D_KEYS + Pack3DDetInputs.INSTANCEDATA_2D_KEYS +
                      Pack3DDetInputs.SEG_KEYS)

    def __init__(self, keys: tuple, meta_keys: Optional[tuple] = None):
        if meta_keys is None:
            meta_keys = tuple(Pack3DDetInputs.__init__.__defaults__[0]) + SCENE_META_KEYS
        super().__init__(keys=keys, meta_keys=meta_keys)
        self.INPUTS_KEYS = list(Pack3DDetInputs.INPUTS_KEYS) + [
            k for k in keys if k not in self._NOT_INPUTS and k not in
            Pack3DDetInputs.INPUTS_KEYS]

    def pack_single_results(self, results: dict) -> dict:
        for key in self.INPUTS_KEYS:
            if key in results and key not in ('points', 'img'):
                results[key] = _to_tensor(results[key])
        if 'gt_instance_ids' in results and isinstance(results['gt_instance_ids'], np.ndarray):
            results['gt_instance_ids'] = to_tensor(results['gt_instance_ids'])
        if 'lidar2ego' not in results and 'lidar_points' in results:
            results['lidar2ego'] = results['lidar_points'].get('lidar2ego')
        if 'camera_names' not in results and 'images' in results:
            results['camera_names'] = tuple(results['images'])
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
