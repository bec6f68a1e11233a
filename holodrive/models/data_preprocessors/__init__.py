"""Batching of every key the scene data path packs (one place for every model family)."""
from .scene_preprocessor import SceneDataPreprocessor

__all__ = ['SceneDataPreprocessor']
