"""PIIP registries: children of mmdet's, so detection configs mix PIIP with mmdet parts.

Segmentation (mmseg) and 3D (mmdet3d) configs reach these modules with the
``'piip_det.'`` scope prefix, e.g. ``backbone=dict(type='piip_det.PIIP', ...)``.
"""
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMDET_MODELS, scope='piip_det',
                  locations=['piip_det.models'])
