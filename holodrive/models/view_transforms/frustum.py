"""Frustum and camera geometry shared by camera->BEV and BEV->camera.

Frames and matrices are the data path's (``docs/data_pipeline.md``; all ``(B, V, 4, 4)``
float from :class:`~holodrive.models.data_preprocessors.SceneDataPreprocessor`):

- ``cam2img``: recorded intrinsics padded to 4x4 (camera frame, OpenCV: x right, y down,
  z forward -> original pixels, acting on ``(x, y, z, 1)``, giving ``(u*d, v*d, d, 1)``);
- ``img_aug_matrix``: original pixels -> augmented pixels, acting on ``(u*d, v*d, d, 1)``
  (depth ``d`` is kept);
- ``cam2lidar`` (inverse of ``lidar2cam``): camera frame -> LiDAR frame. **The packed matrices
  already include the 3D augmentation** (packed ``lidar2cam`` = recorded ``lidar2cam @
  inv(lidar_aug_matrix)``), so they map to the *augmented* LiDAR frame, the frame of the
  augmented points, boxes and BEV rasters. ``lidar_aug_matrix`` (``(B, 4, 4)``, original ->
  augmented LiDAR frame) is applied on top only for *recorded* calibrations
  (BEVFusion's convention), see :func:`frustum_to_lidar`.

Integer pixel coordinates are pixel centres (as ``ProjectLidarDepth`` and
``MultiViewImageAug``), so the feature cell ``(i, j)`` of a stride-``s`` map covers pixels
``s*j .. s*j + s - 1`` and its centre is ``u = (j + 0.5) * s - 0.5``; depth bin ``k`` holds
``start + k*step <= d < start + (k+1)*step`` (the one-hot targets of ``ProjectLidarDepth``)
and its frustum point sits at the bin centre.
"""
import math
from typing import Optional, Sequence, Tuple

import torch

from holodrive.datasets.transforms.bev import BEVGrid


def depth_bin_centres(depth_bins: Sequence[float]) -> torch.Tensor:
    """``(start, stop, step)`` metres -> ``(D,)`` float32 bin centres (metres)."""
    start, stop, step = (float(v) for v in depth_bins)
    num = int(round((stop - start) / step))
    if num <= 0:
        raise ValueError(f'depth_bins {tuple(depth_bins)} give no bins')
    return start + step * (torch.arange(num, dtype=torch.float64) + 0.5)


def feature_size(image_size: Sequence[int], downsample: int) -> Tuple[int, int]:
    """``(H, W)`` image size and stride -> ``(ceil(H/s), ceil(W/s))`` (as the depth targets)."""
    h, w = (int(v) for v in image_size)
    return math.ceil(h / downsample), math.ceil(w / downsample)


def make_frustum(image_size: Sequence[int], downsample: int,
                 depth_bins: Sequence[float]) -> torch.Tensor:
    """The (pixel x depth-bin) frustum of one image shape, in augmented-image pixels.

    Args:
        image_size: ``(H, W)`` of the (augmented) network input images.
        downsample: stride ``s`` of the feature map.
        depth_bins: ``(start, stop, step)`` in metres.

    Returns:
        ``(D, h, w, 3)`` float64 ``(u, v, d)``: pixel centre of each feature cell and the
        depth-bin centre in metres along the camera z axis.
    """
    h, w = feature_size(image_size, downsample)
    depths = depth_bin_centres(depth_bins)
    us = (torch.arange(w, dtype=torch.float64) + 0.5) * downsample - 0.5
    vs = (torch.arange(h, dtype=torch.float64) + 0.5) * downsample - 0.5
    d, v, u = torch.meshgrid(depths, vs, us, indexing='ij')
    return torch.stack([u, v, d], dim=-1)


def img_to_lidar_matrix(cam2img: torch.Tensor, cam2lidar: torch.Tensor,
                        img_aug_matrix: Optional[torch.Tensor] = None,
                        lidar_aug_matrix: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``(B, V, 4, 4)`` float64 map of augmented ``(u*d, v*d, d, 1)`` into the LiDAR frame.

    ``= [lidar_aug_matrix] @ cam2lidar @ inv(cam2img) @ inv(img_aug_matrix)``: undo the image
    augmentation, un-project with the intrinsics, move to the LiDAR frame, and (only for
    recorded, un-augmented calibrations) apply the BEV augmentation.

    Args:
        cam2img, cam2lidar, img_aug_matrix: ``(B, V, 4, 4)``.
        lidar_aug_matrix: ``(B, 4, 4)`` or None (packed calibrations already include it).
    """
    mat = cam2lidar.double() @ torch.linalg.inv(cam2img.double())
    if img_aug_matrix is not None:
        mat = mat @ torch.linalg.inv(img_aug_matrix.double())
    if lidar_aug_matrix is not None:
        mat = lidar_aug_matrix.double()[:, None] @ mat
    return mat


def frustum_to_lidar(frustum: torch.Tensor, cam2img: torch.Tensor, cam2lidar: torch.Tensor,
                     img_aug_matrix: Optional[torch.Tensor] = None,
                     lidar_aug_matrix: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Frustum points of every camera in the LiDAR frame.

    Args:
        frustum: ``(D, h, w, 3)`` ``(u, v, d)`` from :func:`make_frustum`.
        cam2img, cam2lidar, img_aug_matrix: ``(B, V, 4, 4)`` (see the module docstring).
        lidar_aug_matrix: ``(B, 4, 4)``; pass it only with recorded calibrations.

    Returns:
        ``points_lidar`` ``(B, V, D, h, w, 3)`` float32 (metres, LiDAR frame).
    """
    # the matrices are composed in float64; the (many) points are float32
    mat = img_to_lidar_matrix(cam2img, cam2lidar, img_aug_matrix, lidar_aug_matrix).float()
    f = frustum.to(device=mat.device, dtype=torch.float32)
    uvd = torch.cat([f[..., :2] * f[..., 2:3], f[..., 2:3]], dim=-1)        # (D, h, w, 3)
    points = torch.einsum('bvij,dhwj->bvdhwi', mat[..., :3, :3], uvd)
    return points + mat[..., None, None, None, :3, 3]


def bev_cells(points_lidar: torch.Tensor, grid: BEVGrid,
              z_range: Sequence[float]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BEV cell of each point (the :class:`BEVGrid` convention: ``bev[:, i, j]`` is centred at
    ``x = x_min + (j + 0.5) res``, ``y = y_min + (i + 0.5) res``; rows along +y).

    Args:
        points_lidar: ``(..., 3)`` metres.
        grid: the BEV grid; z_range: ``(z_min, z_max)`` kept.

    Returns:
        ``(row, col, inside)``: int64 ``(...)`` indices and a bool mask of the points inside
        the grid and ``z_min <= z < z_max``.
    """
    res = grid.resolution
    col = torch.floor((points_lidar[..., 0] - grid.x_range[0]) / res).long()
    row = torch.floor((points_lidar[..., 1] - grid.y_range[0]) / res).long()
    z = points_lidar[..., 2]
    inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height) & \
        (z >= z_range[0]) & (z < z_range[1])
    return row, col, inside


def bev_sample_grid(points_lidar: torch.Tensor, grid: BEVGrid) -> torch.Tensor:
    """``(..., 3)`` LiDAR points -> ``(..., 2)`` ``grid_sample`` coordinates of a ``(C, H, W)``
    BEV map (``align_corners=False``: -1 / +1 are the outer cell edges)."""
    gx = (points_lidar[..., 0] - grid.x_range[0]) / (grid.x_range[1] - grid.x_range[0])
    gy = (points_lidar[..., 1] - grid.y_range[0]) / (grid.y_range[1] - grid.y_range[0])
    return torch.stack([gx, gy], dim=-1) * 2 - 1


def ground_depth(cam2img: torch.Tensor, cam2lidar: torch.Tensor,
                 img_aug_matrix: Optional[torch.Tensor], image_size: Sequence[int],
                 downsample: int, ground_z: float, sub_rows: int = 4,
                 lidar_aug_matrix: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Camera depth at which the ray of each (sub-)pixel meets the ground plane.

    The ground is the plane ``z = ground_z`` of the *recorded* LiDAR frame (nuScenes: about
    -1.84 m, the LiDAR's height). With packed calibrations (``cam2lidar`` into the augmented
    frame) pass ``lidar_aug_matrix`` (``(B, 4, 4)``, recorded -> augmented): the rays are
    taken back to the recorded frame, so any BEV rotation / scale / flip / translation is
    followed. In that frame a ray is ``p(d) = o + d * r`` (``r = M[:3, :3] @ (u, v, 1)``,
    ``o = M[:3, 3]``, ``M = inv(lidar_aug_matrix) @`` :func:`img_to_lidar_matrix`) and meets
    the plane at ``d = (ground_z - o_z) / r_z``.

    Args:
        cam2img, cam2lidar, img_aug_matrix: ``(B, V, 4, 4)``.
        image_size: ``(H, W)`` of the augmented images; downsample: feature stride ``s``.
        ground_z: metres, recorded LiDAR frame.
        sub_rows: rays per feature cell, at the cell's centre column and ``sub_rows`` evenly
            spaced pixel rows inside it (``s * i + (k + 0.5) * s / sub_rows - 0.5``; a
            stride-16 cell near the horizon spans tens of metres of ground).
        lidar_aug_matrix: ``(B, 4, 4)`` or None (``cam2lidar`` is the recorded one).

    Returns:
        ``(B, V, sub_rows, h, w)`` float32 depths (metres); ``inf`` where the ray does not
        go down to the ground (at or above the horizon).
    """
    h, w = feature_size(image_size, downsample)
    mat = img_to_lidar_matrix(cam2img, cam2lidar, img_aug_matrix)           # (B, V, 4, 4)
    if lidar_aug_matrix is not None:
        mat = torch.linalg.inv(lidar_aug_matrix.double())[:, None] @ mat
    dev = mat.device
    us = (torch.arange(w, dtype=torch.float64, device=dev) + 0.5) * downsample - 0.5
    offsets = (torch.arange(sub_rows, dtype=torch.float64, device=dev) + 0.5) / sub_rows
    vs = (torch.arange(h, dtype=torch.float64, device=dev)[None, :] + offsets[:, None]) \
        * downsample - 0.5                                                  # (K, h)
    row = mat[..., 2, :, None, None, None]                                  # (B, V, 4, 1, 1, 1)
    ray_z = row[:, :, 0] * us + row[:, :, 1] * vs[:, :, None] + row[:, :, 2]  # (B, V, K, h, w)
    depth = (ground_z - row[:, :, 3]) / ray_z
    going_down = (ray_z < 0) & (depth > 0)
    return torch.where(going_down, depth, torch.full_like(depth, float('inf'))).float()


def soft_depth_bins(depths: torch.Tensor, depth_bins: Sequence[float],
                    sigma_bins: float = 1.0) -> torch.Tensor:
    """Gaussian soft one-hots of depths over the bins, averaged over the sub-rays.

    Args:
        depths: ``(B, V, K, h, w)`` metres (``inf``: no ground), from :func:`ground_depth`.
        depth_bins: ``(start, stop, step)``; sigma_bins: Gaussian width in bins.

    Returns:
        ``(B, V, D + 1, h, w)``: per bin the mean over the ``K`` rays of
        ``exp(-((c_k - d) / (sigma * step))^2 / 2)`` normalised over the bins (rays whose
        depth is beyond the last bin or infinite count nothing), and a last channel with the
        share of those rays (ground beyond the range or not seen).
    """
    start, stop, step = (float(v) for v in depth_bins)
    centres = depth_bin_centres(depth_bins).to(depths.device, torch.float32)
    inside = torch.isfinite(depths) & (depths < stop)
    d = torch.where(inside, depths, torch.zeros_like(depths))[:, :, :, None]  # (B,V,K,1,h,w)
    z = (centres[:, None, None] - d) / (sigma_bins * step)
    weights = torch.exp(-0.5 * z * z)
    weights = weights / weights.sum(dim=3, keepdim=True).clamp_min(1e-12)
    weights = weights * inside[:, :, :, None].to(weights.dtype)
    far = (~inside).to(weights.dtype).mean(dim=2, keepdim=True)
    return torch.cat([weights.mean(dim=2), far], dim=2)
