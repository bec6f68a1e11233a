"""HoloDrive registries: children of mmdet3d's, so one config mixes our modules with theirs.

Configs set ``default_scope = 'holodrive'``; a type that is not ours is looked up in
mmdet3d's registry and then mmengine's root (``'mmdet.X'`` / ``'mmseg.X'`` reach those scopes).
"""
from mmdet3d.registry import (DATA_SAMPLERS as MMDET3D_DATA_SAMPLERS,
                              DATASETS as MMDET3D_DATASETS,
                              HOOKS as MMDET3D_HOOKS,
                              METRICS as MMDET3D_METRICS,
                              MODELS as MMDET3D_MODELS,
                              TRANSFORMS as MMDET3D_TRANSFORMS,
                              VISUALIZERS as MMDET3D_VISUALIZERS)
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMDET3D_MODELS, scope='holodrive',
                  locations=['holodrive.models'])
DATASETS = Registry('dataset', parent=MMDET3D_DATASETS, scope='holodrive',
                    locations=['holodrive.datasets'])
TRANSFORMS = Registry('transform', parent=MMDET3D_TRANSFORMS, scope='holodrive',
                      locations=['holodrive.datasets.transforms'])
DATA_SAMPLERS = Registry('data sampler', parent=MMDET3D_DATA_SAMPLERS,
                         scope='holodrive', locations=['holodrive.datasets'])
METRICS = Registry('metric', parent=MMDET3D_METRICS, scope='holodrive',
                   locations=['holodrive.evaluation'])
HOOKS = Registry('hook', parent=MMDET3D_HOOKS, scope='holodrive',
                 locations=['holodrive.engine'])
VISUALIZERS = Registry('visualizer', parent=MMDET3D_VISUALIZERS,
                       scope='holodrive', locations=['holodrive.visualization'])

from holodrive.compat import apply_runtime_fixes  # noqa: E402

apply_runtime_fixes()
