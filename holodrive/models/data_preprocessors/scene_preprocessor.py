"""``SceneDataPreprocessor``: batches everything ``PackSceneInputs`` emits.

mmdet3d's ``Det3DDataPreprocessor`` passes on only ``points`` / ``voxels`` / ``imgs``; this
subclass keeps its handling of those (normalisation, multi-view stacking, voxelisation) and
adds every other packed input and the per-sample geometry, so no model re-implements it.

Output ``inputs`` (B samples, V views; shapes as packed):

=====================  =============================================  ==================
key                    shape / dtype                                  from
=====================  =============================================  ==================
``imgs``               ``(B, V, 3, H, W)`` float, normalised          ``img``
``points``, ``voxels`` list of ``(N_i, C)``; mmdet3d's voxel dict      ``points``
``depth_maps``         ``(B, V, H, W)`` float32 (metres, 0 = none)    ``ProjectLidarDepth``
``depth_s{s}``         ``(B, V, h, w)`` float32                       ``ProjectLidarDepth``
``depth_bins_s{s}``    ``(B, V, D, h, w)`` uint8 one-hot              ``ProjectLidarDepth``
``depth_valid_s{s}``   ``(B, V, h, w)`` bool                          ``ProjectLidarDepth``
``map_bev``            ``(B, C, H, W)`` uint8                         ``RasterizeMapBEV``
``box_bev``            ``(B, G, H, W)`` uint8                         ``RasterizeBoxBEV``
``layout_images``      ``(B, V, C + G, h, w)`` uint8                  ``ProjectLayoutToCameras``
``ego_fut_traj`` ...   ``(B, 6, 2)`` float32 (and ``*_valid`` bool)   info records
``cam2img``,           ``(B, V, 4, 4)`` float32                       geometry (augment.py)
``lidar2cam``,
``lidar2img``,
``cam2lidar``,
``img_aug_matrix``
``lidar_aug_matrix``,  ``(B, 4, 4)`` float32                          geometry
``ego2global``
``camera_ring``        ``(B, V)`` int64: view indices in ring order   calibration
``camera_adjacency``   ``(B, V, 2)`` int64: ring positions of the     ``cameras.py``
                       neighbours seen at the left and the right image
                       edge of each ring position (swapped for a view
                       whose image is mirrored by ``img_aug_matrix``)
``adjacent``           list (one per neighbour offset) of dicts with  ``LoadAdjacentFrames``
                       the same keys, batched the same way
=====================  =============================================  ==================

A key is batched when every sample has it (``torch.stack``; sizes must agree: use
``MultiViewImageAug`` for a fixed image size); a key some samples lack is an error naming it.
"""
from typing import List, Optional

import numpy as np
import torch
from mmdet3d.models.data_preprocessors import Det3DDataPreprocessor

from holodrive.datasets.cameras import camera_ring_order, ring_adjacency
from holodrive.registry import MODELS

PER_VIEW_MATRICES = ('cam2img', 'lidar2cam', 'lidar2img', 'cam2lidar', 'img_aug_matrix')
PER_SAMPLE_MATRICES = ('lidar_aug_matrix', 'ego2global')
_HANDLED = ('img', 'imgs', 'points', 'voxels', 'adjacent')


def _matrix(value) -> torch.Tensor:
    """A 4x4 (or list of 4x4 / 3x3) matrix from metainfo as float32 ``(..., 4, 4)``."""
    arr = np.asarray(value, dtype=np.float64)
    out = np.broadcast_to(np.eye(4), arr.shape[:-2] + (4, 4)).copy()
    out[..., :arr.shape[-2], :arr.shape[-1]] = arr
    return torch.from_numpy(out.astype(np.float32))


@MODELS.register_module()
class SceneDataPreprocessor(Det3DDataPreprocessor):
    """Det3DDataPreprocessor + every scene key (module docstring). Same arguments.

    Args:
        with_geometry (bool): stack the geometry matrices from the data samples'
            metainfo into ``inputs`` (default True).
        **kwargs: ``Det3DDataPreprocessor`` arguments (``mean``, ``std``, ``bgr_to_rgb``,
            ``voxel``, ``voxel_layer``, ``pad_size_divisor`` ...).
    """

    def __init__(self, with_geometry: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.with_geometry = with_geometry

    def simple_process(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        extra = {k: v for k, v in inputs.items() if k not in _HANDLED}
        adjacent = inputs.get('adjacent')
        base = dict(data, inputs={k: v for k, v in inputs.items() if k in _HANDLED
                                  and k != 'adjacent'})
        out = super().simple_process(base, training)
        batch_inputs, samples = out['inputs'], out['data_samples']
        for key, values in extra.items():
            batch_inputs[key] = self._stack(key, values)
        if self.with_geometry and samples:
            batch_inputs.update(self._geometry(samples))
        if adjacent is not None:
            batch_inputs['adjacent'] = self._adjacent(adjacent, samples, training)
        return out

    def _stack(self, key: str, values) -> torch.Tensor:
        if not isinstance(values, (list, tuple)):
            return values.to(self.device) if hasattr(values, 'to') else values
        tensors = [v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
                   for v in values]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            raise ValueError(f'SceneDataPreprocessor: inputs[{key!r}] has different shapes '
                             f'in one batch {sorted(shapes)}; give every sample the same '
                             'size (e.g. MultiViewImageAug(final_size=...))')
        return torch.stack(tensors).to(self.device)

    def _geometry(self, samples) -> dict:
        out = {}
        metas = [s.metainfo for s in samples]
        for key in PER_VIEW_MATRICES + PER_SAMPLE_MATRICES:
            have = [key in m for m in metas]
            if not any(have):
                continue
            if not all(have):
                raise KeyError(f'SceneDataPreprocessor: metainfo {key!r} is missing in '
                               f'{have.count(False)} of {len(have)} samples of the batch')
            out[key] = self._stack(key, [_matrix(m[key]) for m in metas])
        if 'cam2lidar' in out or 'lidar2cam' in out:
            cam2lidar = out.get('cam2lidar', None)
            if cam2lidar is None:
                cam2lidar = torch.linalg.inv(out['lidar2cam'])
            rings = []
            for m, c2l in zip(metas, cam2lidar):
                names = list(m.get('camera_names') or range(len(c2l)))
                # ring from the yaw of each camera in the (LiDAR ~ ego) frame
                l2e = _matrix(m['lidar2ego']).double() if 'lidar2ego' in m else \
                    torch.eye(4, dtype=torch.float64)
                aug_inv = torch.linalg.inv(_matrix(m.get('lidar_aug_matrix', np.eye(4))).double())
                cam2ego = l2e @ aug_inv @ c2l.double().cpu()
                order = camera_ring_order({n: cam2ego[i].numpy() for i, n in enumerate(names)})
                rings.append([names.index(n) for n in order])
            out['camera_ring'] = torch.tensor(rings, dtype=torch.int64, device=self.device)
            adjacency = np.repeat(ring_adjacency(cam2lidar.shape[1])[None], len(rings), 0)
            if 'img_aug_matrix' in out:   # a mirrored image shows its right neighbour on the left
                aug = out['img_aug_matrix'].detach().cpu().double()
                mirrored = torch.linalg.det(aug[..., :2, :2]) < 0          # (B, V)
                for b, ring in enumerate(rings):
                    for pos, view in enumerate(ring):
                        if mirrored[b, view]:
                            adjacency[b, pos] = adjacency[b, pos, ::-1]
            out['camera_adjacency'] = torch.from_numpy(adjacency).to(self.device)
        return out

    def _adjacent(self, adjacent: list, samples, training: bool) -> List[dict]:
        """Batch the neighbours: ``pseudo_collate`` gives one dict of lists per offset;
        a hand-made batch may give one list of per-offset dicts per sample."""
        if adjacent and isinstance(adjacent[0], dict):
            per_offset = adjacent
        else:
            num = {len(a) for a in adjacent}
            if len(num) != 1:
                raise ValueError(f'SceneDataPreprocessor: samples carry {sorted(num)} '
                                 "adjacent frames; use adjacent_policy='clamp' for a fixed "
                                 'number')
            per_offset = [{key: [a[k][key] for a in adjacent] for key in adjacent[0][k]}
                          for k in range(num.pop())]
        out = []
        for k, sub_inputs in enumerate(per_offset):
            sub_samples = None if samples is None else [s.adjacent[k] for s in samples]
            sub = self.simple_process(dict(inputs=sub_inputs, data_samples=sub_samples),
                                      training)
            out.append(sub['inputs'])
        return out
