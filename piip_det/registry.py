"""PIIP registries: children of mmdet's, so detection configs mix PIIP with mmdet parts.

Segmentation (mmseg), 3D (mmdet3d) and HoloDrive configs reach these modules with the
``'piip_det.'`` scope prefix, e.g. ``backbone=dict(type='piip_det.PIIP', ...)``. mmengine
resolves a scoped name among the current registry's children, else among the children of
mmengine's root registry; mmseg's and mmdet3d's ``MODELS`` are siblings of mmdet's under
that root, so ``MODELS`` is also linked as a child of the root (its parent stays mmdet's:
unscoped names inside PIIP configs still fall back to mmdet).
"""
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMDET_MODELS, scope='piip_det',
                  locations=['piip_det.models', 'piip_det.models.vit_baseline'])
ROOT_MODELS._children.setdefault(MODELS.scope, MODELS)   # 'piip_det.X' from mmseg / mmdet3d
