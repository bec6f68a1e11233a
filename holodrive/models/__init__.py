"""HoloDrive models."""
from . import data_preprocessors  # noqa: F401  (registers SceneDataPreprocessor)
