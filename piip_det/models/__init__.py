"""PIIP models."""
from .backbones import PIIP  # noqa: F401  (registers piip_det.PIIP)
