"""Training-loop pieces: hooks and helpers for tools/train.py and tools/test.py."""
from .hooks import StepSeedHook

__all__ = ['StepSeedHook']
