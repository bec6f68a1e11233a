"""Training-loop pieces: hooks and helpers for tools/train.py and tools/test.py.

``StepSeedHook`` is imported on first use, so ``holodrive.engine.cli`` (the error handling of
every tool) does not import torch and mmengine's runner for tools that need neither.
"""
__all__ = ['StepSeedHook']


def __getattr__(name):
    if name == 'StepSeedHook':
        from .hooks import StepSeedHook
        return StepSeedHook
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
