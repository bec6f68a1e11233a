"""``BEVDet``: a camera-only 3D detector composed of registered parts.

    imgs (B, V, 3, H, W) -> img_backbone (on B*V images) -> img_neck -> (B, V, C, h, w)
      -> view_transform (LSSViewTransform + DepthNet) -> bev (B, C_bev, Hb, Wb)
      [-> temporal_fusion with the previous keyframe's bev, warped by the ego motion]
      -> bev_backbone -> bev_neck -> bbox_head (mmdet3d CenterHead)

``loss`` adds the depth loss (``depth_loss=dict(type='DepthLoss', loss_weight=..., stride=...)``)
when the batch packs ``depth_bins_s{s}`` / ``depth_valid_s{s}``. A batch the view transform
cannot use (missing camera, calibration key, image size that differs from the config) raises
one :class:`BEVDetInputError` line naming the key and the sample; it is also a
:class:`~holodrive.engine.config_check.ConfigError`, so ``tools/train.py`` / ``tools/test.py``
print it as one ``error:`` line. Docs: ``docs/bev_det.md``.
"""
from typing import List, Optional, Sequence

import torch
from mmdet3d.models.detectors import Base3DDetector

from holodrive.engine.config_check import ConfigError
from holodrive.registry import MODELS

from ..view_transforms import ViewTransformInputError
from .temporal_fusion import TemporalBEVFusion  # noqa: F401  (registers it)


class BEVDetInputError(ViewTransformInputError, ConfigError):
    """A batch that disagrees with the detector's config (one line: key and sample)."""


def _sample_name(data_samples, b: int) -> str:
    meta = getattr(data_samples[b], 'metainfo', {}) if data_samples else {}
    token = meta.get('token', meta.get('sample_idx'))
    return f'sample {token!r} (batch index {b})' if token is not None else f'batch index {b}'


@MODELS.register_module()
class BEVDet(Base3DDetector):
    """Camera BEV detector (module docstring).

    Args:
        img_backbone: image backbone config (``piip_det.PIIP``, ``piip_det.ViTBaseline``, ...)
            returning a tuple of maps.
        view_transform: ``LSSViewTransform`` config (with a ``depth_net``).
        bev_backbone: BEV encoder config (e.g. mmdet3d ``SECOND``).
        bev_neck: BEV neck config (e.g. ``SECONDFPN``) or None.
        bbox_head: ``CenterHead`` config; ``train_cfg`` / ``test_cfg`` are passed to it.
        img_neck: image neck config (e.g. ``mmdet.FPN``) or None.
        img_in_indices: backbone outputs given to the neck (default: all).
        img_out_index: the neck output used for the view transform (its stride must be the
            view transform's ``downsample``).
        depth_loss: ``DepthLoss`` config or None.
        temporal_fusion: ``TemporalBEVFusion`` config or None. Needs the previous keyframe
            packed as ``inputs['adjacent'][adjacent_index]`` (``LoadAdjacentFrames``).
    """

    def __init__(self, img_backbone: dict, view_transform: dict, bev_backbone: dict,
                 bbox_head: dict, bev_neck: Optional[dict] = None,
                 img_neck: Optional[dict] = None,
                 img_in_indices: Optional[Sequence[int]] = None, img_out_index: int = 0,
                 depth_loss: Optional[dict] = None, temporal_fusion: Optional[dict] = None,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.img_backbone = MODELS.build(img_backbone)
        self.img_neck = MODELS.build(img_neck) if img_neck is not None else None
        self.img_in_indices = None if img_in_indices is None else tuple(img_in_indices)
        self.img_out_index = int(img_out_index)
        self.view_transform = MODELS.build(view_transform)
        self.temporal_fusion = (MODELS.build(temporal_fusion)
                                if temporal_fusion is not None else None)
        self.bev_backbone = MODELS.build(bev_backbone)
        self.bev_neck = MODELS.build(bev_neck) if bev_neck is not None else None
        bbox_head = dict(bbox_head)
        bbox_head.update(train_cfg=train_cfg, test_cfg=test_cfg)
        self.bbox_head = MODELS.build(bbox_head)
        self.depth_loss = MODELS.build(depth_loss) if depth_loss is not None else None
        self.train_cfg, self.test_cfg = train_cfg, test_cfg

    # ------------------------------------------------------------------ features
    def _check_batch(self, inputs: dict, data_samples) -> None:
        imgs = inputs.get('imgs') if isinstance(inputs, dict) else None
        if imgs is None:
            n = len(data_samples) if data_samples else 0
            names = ', '.join(_sample_name(data_samples, b) for b in range(n)) or 'the batch'
            raise BEVDetInputError(f"BEVDet: inputs['imgs'] is missing ({names}); pack the "
                                   "images with LoadMultiViewImagesChecked + "
                                   "PackSceneInputs(keys=['img', ...])")
        if imgs.dim() != 5:
            raise BEVDetInputError(f"BEVDet: inputs['imgs'] has shape {tuple(imgs.shape)}, "
                                   'expected (B, V, 3, H, W) multi-view images')
        self.view_transform.check_inputs(inputs, imgs.shape[0], data_samples)

    def camera_bev(self, inputs: dict, data_samples=None) -> dict:
        """Images -> BEV of one frame: the view transform's dict (``bev_feats`` ...)."""
        self._check_batch(inputs, data_samples)
        imgs = inputs['imgs']
        b, v = imgs.shape[:2]
        feats = self.img_backbone(imgs.flatten(0, 1))
        feats = list(feats) if isinstance(feats, (list, tuple)) else [feats]
        if self.img_in_indices is not None:
            feats = [feats[i] for i in self.img_in_indices]
        if self.img_neck is not None:
            feats = self.img_neck(feats)
            feats = list(feats) if isinstance(feats, (list, tuple)) else [feats]
        feat = feats[self.img_out_index]
        feat = feat.view(b, v, *feat.shape[1:])
        return self.view_transform(feat, inputs, data_samples=data_samples)

    def _previous_bev(self, inputs: dict, data_samples):
        """The previous keyframe's BEV and the matrix prev LiDAR -> current augmented LiDAR."""
        fusion = self.temporal_fusion
        adjacent = inputs.get('adjacent')
        k = fusion.adjacent_index
        if not adjacent or len(adjacent) <= k:
            names = ', '.join(_sample_name(data_samples, b) for b in range(len(data_samples)))
            raise BEVDetInputError(
                f"BEVDet: temporal_fusion needs inputs['adjacent'][{k}] ({names}); build the "
                'dataset with adjacent_frames=(-1,) and add LoadAdjacentFrames to the pipeline')
        prev2cur = []
        for b, sample in enumerate(data_samples):
            meta = sample.metainfo
            if 'adjacent_adj2cur_lidar' not in meta:
                raise BEVDetInputError(f"BEVDet: metainfo 'adjacent_adj2cur_lidar' is missing "
                                       f'for {_sample_name(data_samples, b)}')
            adj2cur = torch.as_tensor(meta['adjacent_adj2cur_lidar'][k], dtype=torch.float64)
            aug = torch.as_tensor(meta.get('lidar_aug_matrix', torch.eye(4)),
                                  dtype=torch.float64)
            prev2cur.append(aug @ adj2cur)
        prev2cur = torch.stack(prev2cur).float().to(inputs['imgs'].device)
        prev_samples = [s.adjacent[k] for s in data_samples] \
            if all(hasattr(s, 'adjacent') for s in data_samples) else data_samples
        with torch.set_grad_enabled(torch.is_grad_enabled() and not fusion.detach_previous):
            prev = self.camera_bev(adjacent[k], prev_samples)['bev_feats']
        return prev, prev2cur

    def extract_feat(self, batch_inputs_dict: dict, batch_data_samples=None):
        """``(list of BEV maps for the head, view-transform dict)``."""
        try:
            out = self.camera_bev(batch_inputs_dict, batch_data_samples)
            bev = out['bev_feats']
            if self.temporal_fusion is not None:
                prev, prev2cur = self._previous_bev(batch_inputs_dict, batch_data_samples)
                bev = self.temporal_fusion(bev, prev, prev2cur)
        except ViewTransformInputError as err:
            if isinstance(err, BEVDetInputError):
                raise
            raise BEVDetInputError(str(err)) from None
        feats = self.bev_backbone(bev)
        if self.bev_neck is not None:
            feats = self.bev_neck(feats)
        feats = list(feats) if isinstance(feats, (list, tuple)) else [feats]
        return feats, out

    # ------------------------------------------------------------------ mmdet3d API
    def loss(self, batch_inputs_dict: dict, batch_data_samples: List) -> dict:
        feats, out = self.extract_feat(batch_inputs_dict, batch_data_samples)
        losses = self.bbox_head.loss(feats, batch_data_samples)
        if self.depth_loss is not None and 'depth_logits' in out:
            key = f'depth_bins_s{self.depth_loss.stride}'
            if key in batch_inputs_dict:
                losses['loss_depth'] = self.depth_loss.from_inputs(out['depth_logits'],
                                                                   batch_inputs_dict)
        return losses

    def predict(self, batch_inputs_dict: dict, batch_data_samples: List, **kwargs) -> List:
        feats, _ = self.extract_feat(batch_inputs_dict, batch_data_samples)
        results = self.bbox_head.predict(feats, batch_data_samples)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _forward(self, batch_inputs_dict: dict, batch_data_samples=None, **kwargs):
        feats, _ = self.extract_feat(batch_inputs_dict, batch_data_samples)
        return self.bbox_head.forward(feats)
