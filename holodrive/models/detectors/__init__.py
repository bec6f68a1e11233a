"""Detectors: compositions of registered parts only.

- :class:`BEVDet` (``bev_det.py``): camera-only BEV detector (image backbone -> neck -> LSS
  view transform -> BEV encoder -> CenterHead), optional temporal fusion
  (:class:`TemporalBEVFusion`, ``temporal_fusion.py``). Docs: ``docs/bev_det.md``.
"""
from .bev_det import BEVDet, BEVDetInputError
from .temporal_fusion import TemporalBEVFusion, warp_bev

__all__ = ['BEVDet', 'BEVDetInputError', 'TemporalBEVFusion', 'warp_bev']
