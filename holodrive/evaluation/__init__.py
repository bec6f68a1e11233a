"""HoloDrive evaluation: registered metrics (one file per family) and their functions."""
from .lidar_gen_metric import LiDARGenMetric  # noqa: F401
from .camera_recon_metric import CameraReconMetric  # noqa: F401
from .drive_qa_metric import DriveQAMetric  # noqa: F401
from .camera_gen_metric import CameraGenMetric  # noqa: F401
