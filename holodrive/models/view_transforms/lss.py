"""Camera -> BEV (``LSSViewTransform``, lift-splat) and BEV -> camera (``BEVToCamera``).

Both take the geometry the data path packs (``inputs`` of ``SceneDataPreprocessor``:
``cam2img``, ``cam2lidar`` or ``lidar2cam``, ``img_aug_matrix``, all ``(B, V, 4, 4)``; and
``lidar_aug_matrix`` ``(B, 4, 4)`` when ``apply_lidar_aug``), build the frustum of the
configured image size once (a buffer) and move it to the LiDAR frame with
:func:`~.frustum.frustum_to_lidar`; the same points serve both directions.

BEV maps are ``(B, C, H, W)`` over the configured :class:`BEVGrid` (``bev[:, :, i, j]`` is
centred at ``x = x_min + (j + 0.5) res``, ``y = y_min + (i + 0.5) res`` of the augmented
LiDAR frame: columns along +x (forward), rows along +y (left), row 0 at ``y_min``), the
convention of ``map_bev`` / ``box_bev``.

Bad input is reported before any tensor work as one :class:`ViewTransformInputError` line
naming the key and the sample (``token`` of the data sample's metainfo, else its index).
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch.utils.checkpoint import checkpoint

from holodrive.datasets.transforms.bev import BEVGrid
from holodrive.registry import MODELS
from .bev_pool import DEFAULT_MAX_ELEMENTS, bev_pool, compute_ranks
from .depth_net import camera_params
from .frustum import bev_sample_grid, depth_bin_centres, feature_size, frustum_to_lidar, \
    ground_depth, make_frustum, soft_depth_bins


class ViewTransformInputError(ValueError):
    """A batch the view transforms cannot use (missing key / camera, wrong size)."""


def _sample_names(data_samples, idx: Sequence[int]) -> str:
    names = []
    for b in idx:
        meta = {}
        if data_samples is not None and b < len(data_samples):
            meta = getattr(data_samples[b], 'metainfo', data_samples[b]) or {}
        name = meta.get('token', meta.get('sample_idx'))
        names.append(f'{name!r} (batch index {b})' if name is not None else f'batch index {b}')
    return 'sample ' + ', '.join(names) if len(names) == 1 else 'samples ' + ', '.join(names)


class _FrustumGeometry(BaseModule):
    """Configuration, frustum buffer and input checks shared by both directions.

    Args:
        image_size: ``(H, W)`` of the augmented network input images.
        downsample: stride of the camera feature maps (``h = ceil(H / downsample)``).
        depth_bins: ``(start, stop, step)`` metres (as ``ProjectLidarDepth``'s).
        bev_grid: ``dict(x_range, y_range, resolution)`` of the BEV grid (metres).
        z_range: ``(z_min, z_max)`` of the frustum points kept (metres, LiDAR frame).
        num_views: cameras per sample.
        apply_lidar_aug: the calibration is the *recorded* one, apply ``lidar_aug_matrix`` on
            top (BEVFusion's convention). False for the data path's packed matrices, which
            already include it.
        max_elements: bound on the temporaries of one chunk (elements).
    """

    def __init__(self, image_size: Sequence[int], downsample: int,
                 depth_bins: Sequence[float], bev_grid: Optional[dict] = None,
                 z_range: Sequence[float] = (-10.0, 10.0), num_views: int = 6,
                 apply_lidar_aug: bool = False, max_elements: int = DEFAULT_MAX_ELEMENTS,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.downsample = int(downsample)
        self.feature_size = feature_size(self.image_size, self.downsample)
        self.depth_bins = tuple(float(v) for v in depth_bins)
        self.grid = BEVGrid(**(bev_grid or {}))
        self.z_range = (float(z_range[0]), float(z_range[1]))
        self.num_views = int(num_views)
        self.apply_lidar_aug = bool(apply_lidar_aug)
        self.max_elements = int(max_elements)
        self.register_buffer('frustum', make_frustum(self.image_size, self.downsample,
                                                     self.depth_bins).float(),
                             persistent=False)
        self.register_buffer('depth_centres', depth_bin_centres(self.depth_bins).float(),
                             persistent=False)

    @property
    def num_depth_bins(self) -> int:
        return self.frustum.shape[0]

    def _error(self, msg: str):
        raise ViewTransformInputError(f'{type(self).__name__}: {msg}')

    def _matrix(self, inputs: dict, key: str, batch: int, per_view: bool, data_samples):
        if key not in inputs or inputs[key] is None:
            self._error(f"inputs[{key!r}] is missing ({_sample_names(data_samples, range(batch))}"
                        '); pack the calibration with PackSceneInputs and '
                        'SceneDataPreprocessor(with_geometry=True)')
        mat = torch.as_tensor(inputs[key])
        want = (batch, self.num_views, 4, 4) if per_view else (batch, 4, 4)
        if per_view and mat.dim() == 4 and mat.shape[:1] == (batch,) and \
                mat.shape[1] != self.num_views and mat.shape[2:] == (4, 4):
            names = _sample_names(data_samples, range(batch))
            self._error(f'inputs[{key!r}] has {mat.shape[1]} cameras for {names}, the config '
                        f'expects num_views={self.num_views} (a missing camera?)')
        if tuple(mat.shape) != want:
            self._error(f'inputs[{key!r}] has shape {tuple(mat.shape)}, expected {want} '
                        f'({_sample_names(data_samples, range(batch))})')
        bad = ~torch.isfinite(mat).flatten(-2).all(-1)
        if not per_view:
            bad = bad[:, None]
        if not bad.any():
            det = torch.linalg.det(mat.double())
            bad = det.abs() < 1e-12 if per_view else (det.abs() < 1e-12)[:, None]
        if bad.any():
            b, v = (int(i) for i in bad.nonzero()[0])
            where = f'camera {v} of ' if per_view else ''
            self._error(f'inputs[{key!r}] is not a finite invertible matrix for {where}'
                        f'{_sample_names(data_samples, [b])}')
        return mat

    def check_inputs(self, inputs: dict, batch: int, data_samples=None) -> dict:
        """The geometry of ``inputs`` as float tensors, or one clear error (module docstring)."""
        if not isinstance(inputs, dict):
            self._error(f'inputs must be a dict of packed tensors, got {type(inputs).__name__}')
        imgs = inputs.get('imgs')
        if imgs is not None and hasattr(imgs, 'shape'):
            if imgs.dim() == 5 and imgs.shape[1] != self.num_views:
                self._error(f"inputs['imgs'] has {imgs.shape[1]} cameras for "
                            f'{_sample_names(data_samples, range(imgs.shape[0]))}, the config '
                            f'expects num_views={self.num_views} (a missing camera?)')
            if tuple(imgs.shape[-2:]) != self.image_size:
                self._error(f"inputs['imgs'] are {tuple(imgs.shape[-2:])} (H, W) for "
                            f'{_sample_names(data_samples, range(imgs.shape[0]))}, the config '
                            f'image_size is {self.image_size}; resize with '
                            'MultiViewImageAug(final_size=(W, H))')
        key = 'cam2lidar' if inputs.get('cam2lidar') is not None else 'lidar2cam'
        out = dict(cam2img=self._matrix(inputs, 'cam2img', batch, True, data_samples),
                   img_aug_matrix=self._matrix(inputs, 'img_aug_matrix', batch, True,
                                               data_samples))
        mat = self._matrix(inputs, key, batch, True, data_samples)
        out['cam2lidar'] = mat if key == 'cam2lidar' else torch.linalg.inv(mat.double())
        out['lidar_aug_matrix'] = self._matrix(inputs, 'lidar_aug_matrix', batch, False,
                                               data_samples) if self.apply_lidar_aug else None
        return out

    def check_camera_tensor(self, name: str, tensor: torch.Tensor, channels_dim: bool,
                            data_samples=None) -> None:
        """``tensor`` is ``(B, V, C, h, w)`` (or ``(B, V, D, h, w)``) of the config's size."""
        if tensor.dim() != 5:
            self._error(f'{name} must be (B, V, C, h, w), got {tuple(tensor.shape)}')
        b, v = tensor.shape[:2]
        if v != self.num_views:
            self._error(f'{name} has {v} cameras for {_sample_names(data_samples, range(b))}, '
                        f'the config expects num_views={self.num_views} (a missing camera?)')
        if tuple(tensor.shape[-2:]) != self.feature_size:
            self._error(f'{name} is {tuple(tensor.shape[-2:])} (h, w), the config expects '
                        f'{self.feature_size} (image_size {self.image_size} / downsample '
                        f'{self.downsample}) ({_sample_names(data_samples, range(b))})')
        if not channels_dim and tensor.shape[2] != self.num_depth_bins:
            self._error(f'{name} has {tensor.shape[2]} depth bins, depth_bins '
                        f'{self.depth_bins} give {self.num_depth_bins}')

    def points_lidar(self, geometry: dict) -> torch.Tensor:
        """``(B, V, D, h, w, 3)`` frustum points in the (augmented) LiDAR frame."""
        return frustum_to_lidar(self.frustum, geometry['cam2img'], geometry['cam2lidar'],
                                geometry['img_aug_matrix'], geometry['lidar_aug_matrix'])


@MODELS.register_module()
class LSSViewTransform(_FrustumGeometry):
    """Lift-splat camera -> BEV: ``bev = sum over frustum points of P(d) * context``.

    With ``depth_net`` (a ``DepthNet`` config; ``in_channels``, ``context_channels`` and
    ``num_depth_bins`` are filled in) the depth distribution and the context come from the
    image features; without it ``forward`` takes ``depth_probs`` and lifts ``img_feats``.

    Args:
        in_channels: width of ``img_feats``.
        out_channels: width of the BEV features (= context width; ``in_channels`` without a
            depth net).
        depth_net: ``DepthNet`` config or None.
        depth_source: ``'net'`` (default) lifts with the depth net's distribution;
            ``'lidar'`` is an oracle diagnostic: at cells with a LiDAR point it lifts with the
            packed one-hot target ``depth_bins_s{downsample}`` (``depth_valid_s{downsample}``),
            elsewhere with the net's distribution, so a detector trained this way shows what
            perfect depth would give (the test pipeline must then pack the targets too).
        teacher_forcing: weight ``r`` in ``[0, 1]`` of the LiDAR one-hot in training with
            ``depth_source='net'``: at cells with a LiDAR point the lift uses
            ``r * onehot + (1 - r) * P_net`` while ``self.training`` (the train pipeline packs
            the targets for the depth loss anyway); eval always lifts with ``P_net``.
            ``DepthTeacherForcingHook`` anneals it during training.
        ground_prior: optional ``dict(ground_z=-1.84, sub_rows=4, sigma_bins=1.0)`` (ours,
            not BEVDepth's): give the depth net, per feature cell, the soft depth bins at which
            ``sub_rows`` rays of the cell meet the ground plane ``z = ground_z`` of the recorded
            LiDAR frame (:func:`~.frustum.ground_depth`, :func:`~.frustum.soft_depth_bins`;
            ``D + 1`` channels, from the packed calibration, so image and BEV augmentation are
            followed). Needs a depth_net.
        **kwargs: geometry (:class:`_FrustumGeometry`: ``image_size``, ``downsample``,
            ``depth_bins``, ``bev_grid``, ``z_range``, ``num_views``, ``apply_lidar_aug``,
            ``max_elements``).
    """

    def __init__(self, in_channels: int, out_channels: int, depth_net: Optional[dict] = None,
                 depth_source: str = 'net', teacher_forcing: float = 0.0,
                 ground_prior: Optional[dict] = None, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        if depth_source not in ('net', 'lidar'):
            raise ValueError(f"LSSViewTransform: depth_source={depth_source!r}, expected 'net' "
                             "or 'lidar' (the oracle diagnostic)")
        if depth_source == 'lidar' and depth_net is None:
            raise ValueError("LSSViewTransform: depth_source='lidar' needs a depth_net (its "
                             'distribution fills the cells without a LiDAR point)')
        self.depth_source = depth_source
        self.teacher_forcing = float(teacher_forcing)
        if not 0.0 <= self.teacher_forcing <= 1.0 or (teacher_forcing and depth_net is None):
            raise ValueError(f'LSSViewTransform: teacher_forcing={teacher_forcing!r} must be in '
                             '[0, 1] and needs a depth_net')
        self.ground_prior = None
        if ground_prior is not None:
            unknown = set(ground_prior) - {'ground_z', 'sub_rows', 'sigma_bins'}
            if unknown or depth_net is None:
                raise ValueError(f'LSSViewTransform: ground_prior={ground_prior!r}: keys are '
                                 'ground_z, sub_rows, sigma_bins, and it needs a depth_net')
            self.ground_prior = dict(ground_z=-1.84, sub_rows=4, sigma_bins=1.0)
            self.ground_prior.update(ground_prior)
        self.depth_net = None
        if depth_net is not None:
            cfg = dict(type='DepthNet', mid_channels=in_channels)
            if self.ground_prior is not None:
                cfg['prior_channels'] = self.num_depth_bins + 1
            cfg.update(depth_net)
            cfg.setdefault('in_channels', in_channels)
            cfg.setdefault('context_channels', out_channels)
            cfg.setdefault('num_depth_bins', self.num_depth_bins)
            self.depth_net = MODELS.build(cfg)
        elif in_channels != out_channels:
            raise ValueError(f'LSSViewTransform without depth_net lifts img_feats as they are: '
                             f'in_channels {in_channels} must equal out_channels {out_channels}')

    def forward(self, img_feats: torch.Tensor, inputs: dict,
                depth_probs: Optional[torch.Tensor] = None, data_samples=None) -> dict:
        """
        Args:
            img_feats: ``(B, V, C_in, h, w)`` camera features at stride ``downsample``.
            inputs: the batch ``inputs`` with the packed geometry.
            depth_probs: ``(B, V, D, h, w)`` depth distribution (only without a depth net).
            data_samples: optional, to name samples in errors.

        Returns:
            dict with ``bev_feats`` ``(B, C_out, H, W)``, ``depth_probs`` ``(B, V, D, h, w)``,
            ``context`` ``(B, V, C_out, h, w)``, and with a depth net ``depth_logits``.
        """
        self.check_camera_tensor('img_feats', img_feats, True, data_samples)
        b, v, c, h, w = img_feats.shape
        geometry = self.check_inputs(inputs, b, data_samples)
        out = {}
        if self.depth_net is not None:
            cam = camera_params(geometry['cam2img'], geometry['cam2lidar'],
                                geometry['img_aug_matrix'])
            prior = None
            if self.ground_prior is not None:
                prior = self.ground_prior_bins(self.ground_geometry(inputs, geometry, data_samples))
                prior = prior.to(img_feats.device).flatten(0, 1)
            logits, context = self.depth_net(img_feats.flatten(0, 1), cam.flatten(0, 1), prior)
            out['depth_logits'] = logits.view(b, v, -1, h, w)
            depth_probs = out['depth_logits'].softmax(dim=2)
            if self.depth_source == 'lidar':
                depth_probs = self._oracle_depth(depth_probs, inputs, data_samples)
            elif self.training and self.teacher_forcing > 0:
                depth_probs = self._oracle_depth(depth_probs, inputs, data_samples,
                                                 self.teacher_forcing)
            context = context.view(b, v, -1, h, w)
        else:
            if depth_probs is None:
                self._error('depth_probs is required without a depth_net')
            self.check_camera_tensor('depth_probs', depth_probs, False, data_samples)
            context = img_feats
        with torch.no_grad():
            ranks = compute_ranks(self.points_lidar(geometry).to(img_feats.device), self.grid,
                                  self.z_range)
        out.update(bev_feats=bev_pool(depth_probs, context, ranks, self.max_elements),
                   depth_probs=depth_probs, context=context)
        return out

    def ground_geometry(self, inputs: dict, geometry: dict, data_samples=None) -> dict:
        """``geometry`` plus ``recorded_to_frame``: the packed ``lidar_aug_matrix`` that takes
        the recorded LiDAR frame (the ground plane's) to the one of ``cam2lidar``, or None
        when ``cam2lidar`` is the recorded one (``apply_lidar_aug``)."""
        out = dict(geometry, recorded_to_frame=None)
        if not self.apply_lidar_aug:
            out['recorded_to_frame'] = self._matrix(inputs, 'lidar_aug_matrix',
                                                    geometry['cam2img'].shape[0], False,
                                                    data_samples)
        return out

    @torch.no_grad()
    def ground_prior_bins(self, geometry: dict) -> torch.Tensor:
        """``(B, V, D + 1, h, w)`` ground-plane soft depth bins of ``ground_prior``
        (``geometry`` from :meth:`ground_geometry`)."""
        cfg = self.ground_prior
        depths = ground_depth(geometry['cam2img'], geometry['cam2lidar'],
                              geometry['img_aug_matrix'], self.image_size, self.downsample,
                              float(cfg['ground_z']), int(cfg['sub_rows']),
                              geometry.get('recorded_to_frame'))
        return soft_depth_bins(depths, self.depth_bins, float(cfg['sigma_bins']))

    def _oracle_depth(self, depth_probs: torch.Tensor, inputs: dict, data_samples=None,
                      weight: float = 1.0) -> torch.Tensor:
        """``weight * onehot + (1 - weight) * depth_probs`` where a cell has a LiDAR point,
        ``depth_probs`` elsewhere."""
        key_bins, key_valid = f'depth_bins_s{self.downsample}', f'depth_valid_s{self.downsample}'
        if key_bins not in inputs or key_valid not in inputs:
            what = "depth_source='lidar'" if self.depth_source == 'lidar' \
                else f'teacher_forcing={weight:g}'
            self._error(f"{what} needs inputs[{key_bins!r}] and "
                        f'[{key_valid!r}] ({_sample_names(data_samples, range(len(depth_probs)))}'
                        f'); add ProjectLidarDepth(strides=({self.downsample},)) and both keys '
                        'to PackSceneInputs in this pipeline (test too)')
        onehot = inputs[key_bins].to(depth_probs)
        self.check_camera_tensor(key_bins, onehot, False, data_samples)
        valid = inputs[key_valid].bool()[:, :, None] & (onehot.sum(2, keepdim=True) > 0)
        if weight != 1.0:
            onehot = weight * onehot + (1.0 - weight) * depth_probs
        return torch.where(valid, onehot, depth_probs)


@MODELS.register_module()
class BEVToCamera(_FrustumGeometry):
    """BEV -> camera: sample the BEV map at every frustum point's x / y (bilinear
    ``grid_sample``; zero outside the grid and ``z_range``), weight by ``P(d)`` and sum over
    depth. Same geometry arguments as :class:`LSSViewTransform`; no weights."""

    def forward(self, bev_feats: torch.Tensor, depth_probs: torch.Tensor, inputs: dict,
                data_samples=None) -> torch.Tensor:
        """
        Args:
            bev_feats: ``(B, C, H, W)`` over the configured grid.
            depth_probs: ``(B, V, D, h, w)`` depth distribution of each camera.
            inputs: the batch ``inputs`` with the packed geometry.

        Returns:
            ``(B, V, C, h, w)`` camera features.
        """
        self.check_camera_tensor('depth_probs', depth_probs, False, data_samples)
        b, v, d, h, w = depth_probs.shape
        if bev_feats.dim() != 4 or bev_feats.shape[0] != b or \
                tuple(bev_feats.shape[-2:]) != self.grid.shape:
            self._error(f'bev_feats is {tuple(bev_feats.shape)}, expected ({b}, C, '
                        f'{self.grid.height}, {self.grid.width}) for {self.grid}')
        geometry = self.check_inputs(inputs, b, data_samples)
        c = bev_feats.shape[1]
        with torch.no_grad():
            points = self.points_lidar(geometry).to(bev_feats.device)
            coords = bev_sample_grid(points, self.grid).to(bev_feats.dtype)  # (B,V,D,h,w,2)
            z = points[..., 2]
            keep = ((z >= self.z_range[0]) & (z < self.z_range[1])).to(depth_probs.dtype)
        weights = depth_probs * keep                                          # (B, V, D, h, w)
        chunk = max(1, self.max_elements // max(1, b * c * v * h * w))
        recompute = torch.is_grad_enabled() and (bev_feats.requires_grad or
                                                 weights.requires_grad) and chunk < d
        out = bev_feats.new_zeros(b, c, v, h, w)
        for d0 in range(0, d, chunk):
            d1 = min(d, d0 + chunk)
            args = (bev_feats, coords[:, :, d0:d1], weights[:, :, d0:d1])
            # several chunks under autograd: recompute each in backward instead of storing
            # its (B, C, V, chunk, h, w) samples, so training memory stays bounded too
            out = out + (checkpoint(_sample_depth_chunk, *args, use_reentrant=False)
                         if recompute else _sample_depth_chunk(*args))
        return out.permute(0, 2, 1, 3, 4).contiguous()


def _sample_depth_chunk(bev_feats: torch.Tensor, coords: torch.Tensor,
                        weights: torch.Tensor) -> torch.Tensor:
    """``sum_d weights * bev(x, y)`` over one chunk of depth bins.

    ``bev_feats`` ``(B, C, H, W)``, ``coords`` ``(B, V, d, h, w, 2)`` grid_sample coordinates,
    ``weights`` ``(B, V, d, h, w)`` -> ``(B, C, V, h, w)``."""
    b, v, d, h, w, _ = coords.shape
    sampled = F.grid_sample(bev_feats, coords.reshape(b, v * d * h, w, 2), mode='bilinear',
                            padding_mode='zeros', align_corners=False)
    return (sampled.view(b, -1, v, d, h, w) * weights[:, None]).sum(dim=3)
