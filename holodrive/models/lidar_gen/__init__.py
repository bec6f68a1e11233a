"""HoloDrive LiDAR branch: voxel grid, sparse tokenizer, quantizer, masked-token generator,
scan-like point output (docs/lidar_gen.md)."""
from .voxel_grid import VoxelGrid  # noqa: F401
from .sparse_encoder import SparseBEVEncoder  # noqa: F401
from .quantizer import VectorQuantizer  # noqa: F401
from .occupancy_decoder import OccupancyDecoder  # noqa: F401
from .scan_sampler import BEAM_PRESETS, ScanSampler, write_pcd_bin  # noqa: F401
from .tokenizer import LiDARTokenizer  # noqa: F401
from .token_transformer import BEVTokenTransformer  # noqa: F401
from .generator import LayoutError, LiDARGenerator  # noqa: F401
