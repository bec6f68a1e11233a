"""HoloDrive registries: children of mmdet3d's, so one config mixes our modules with theirs.

Configs set ``default_scope = 'holodrive'``; a type that is not ours is looked up in
mmdet3d's registry and then mmengine's root (``'mmdet.X'`` / ``'mmseg.X'`` reach those scopes).
The runtime fixes of :mod:`holodrive.compat` are applied by the entry points and by
``holodrive.models``, not by importing this module.
"""
from mmdet3d import registry as mmdet3d_registry
from mmengine.registry import Registry


def _child(name, parent, locations=None):
    return Registry(name, parent=parent, scope='holodrive', locations=locations or [])


# registries with modules of ours (imported lazily from `locations`)
MODELS = _child('model', mmdet3d_registry.MODELS, ['holodrive.models'])
DATASETS = _child('dataset', mmdet3d_registry.DATASETS, ['holodrive.datasets.scene_dataset'])
TRANSFORMS = _child('transform', mmdet3d_registry.TRANSFORMS, ['holodrive.datasets.transforms'])
DATA_SAMPLERS = _child('data sampler', mmdet3d_registry.DATA_SAMPLERS)
METRICS = _child('metric', mmdet3d_registry.METRICS, ['holodrive.evaluation'])
HOOKS = _child('hook', mmdet3d_registry.HOOKS, ['holodrive.engine.hooks'])
VISUALIZERS = _child('visualizer', mmdet3d_registry.VISUALIZERS, ['holodrive.visualization'])
# the rest exist so 'holodrive'-scoped configs resolve every kind of module without warnings
TASK_UTILS = _child('task util', mmdet3d_registry.TASK_UTILS)
VISBACKENDS = _child('vis_backend', mmdet3d_registry.VISBACKENDS)
LOOPS = _child('loop', mmdet3d_registry.LOOPS)
RUNNERS = _child('runner', mmdet3d_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child('runner constructor', mmdet3d_registry.RUNNER_CONSTRUCTORS)
MODEL_WRAPPERS = _child('model_wrapper', mmdet3d_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child('weight initializer', mmdet3d_registry.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child('optimizer', mmdet3d_registry.OPTIMIZERS)
OPTIM_WRAPPERS = _child('optim_wrapper', mmdet3d_registry.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    mmdet3d_registry.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child('parameter scheduler', mmdet3d_registry.PARAM_SCHEDULERS)
LOG_PROCESSORS = _child('log_processor', mmdet3d_registry.LOG_PROCESSORS)
