"""HoloDrive models (importing them applies the runtime fixes of :mod:`holodrive.compat`)."""
from holodrive.compat import apply_runtime_fixes

apply_runtime_fixes()

from . import data_preprocessors  # noqa: F401,E402  (registers SceneDataPreprocessor)
from . import view_transforms  # noqa: F401,E402  (DepthNet, LSSViewTransform, BEVToCamera, DepthLoss)
from . import detectors  # noqa: F401,E402  (BEVDet, TemporalBEVFusion)
from . import lidar_gen  # noqa: F401,E402  (VoxelGrid, SparseBEVEncoder, VectorQuantizer, LiDARTokenizer)
from . import camera_gen  # noqa: F401,E402  (CameraAutoencoder, MultiViewUNet)
from . import drive_qa  # noqa: F401,E402  (MonoDriveForCausalLM, DriveQAModel)
