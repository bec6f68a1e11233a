"""Points from an occupancy volume that look like a LiDAR scan.

A generated (or reconstructed) occupancy fills volumes; a sensor sees only the first surface
along each beam. :class:`ScanSampler` casts the beams of a spinning LiDAR (elevation angles and
azimuth steps from the config; ``'hdl32e'``: the 32-beam layout of nuScenes' Velodyne HDL-32E,
which the synthetic world renders too) from the sensor origin (the LiDAR frame's origin),
marches each ray through the volume in steps of half the smallest voxel side and keeps the
first occupied sample: a sweep with LiDAR rings and occlusion. Output rows are nuScenes'
``.pcd.bin`` columns ``(x, y, z, intensity, ring)``; intensity is read from the voxel hit
(0 without an intensity volume).
"""
import math
from typing import Optional, Sequence, Union

import numpy as np
import torch

from holodrive.utils.io import atomic_write_bytes
from .voxel_grid import VoxelGrid

#: elevation angles in degrees, bottom beam first (ring 0)
BEAM_PRESETS = {
    'hdl32e': tuple(np.linspace(-30.67, 10.67, 32).tolist()),   # nuScenes LIDAR_TOP, synthetic
}


class ScanSampler:
    """First-hit ray casting through an occupancy volume (module docstring).

    Args:
        point_cloud_range, voxel_size: the :class:`VoxelGrid` of the volumes.
        elevations: a preset name (``'hdl32e'``) or elevation angles in degrees.
        azimuth_steps: beams per turn (1084 for the synthetic HDL-32E at 20 Hz).
        min_range, max_range: metres; returns outside are dropped.
        chunk_rays: rays marched at once (bounds memory at the full grid).
    """

    def __init__(self, point_cloud_range: Sequence[float], voxel_size: Sequence[float],
                 elevations: Union[str, Sequence[float]] = 'hdl32e',
                 azimuth_steps: int = 1084, min_range: float = 1.0, max_range: float = 70.0,
                 chunk_rays: int = 4096):
        if isinstance(elevations, str):
            if elevations not in BEAM_PRESETS:
                raise ValueError(f'unknown beam preset {elevations!r}; known: '
                                 f'{sorted(BEAM_PRESETS)} or give a list of angles in degrees')
            elevations = BEAM_PRESETS[elevations]
        self.grid = VoxelGrid(point_cloud_range, voxel_size)
        self.elevations = torch.tensor(sorted(float(e) for e in elevations)).deg2rad()
        self.azimuth_steps = int(azimuth_steps)
        self.min_range, self.max_range = float(min_range), float(max_range)
        self.chunk_rays = int(chunk_rays)
        self.step = 0.5 * min(self.grid.voxel_size)

    def ray_directions(self) -> torch.Tensor:
        """``(R, 3)`` unit directions, ring-major (ring = row // azimuth_steps)."""
        az = torch.arange(self.azimuth_steps) * (2 * math.pi / self.azimuth_steps) - math.pi
        el = self.elevations[:, None]
        return torch.stack([torch.cos(el) * torch.cos(az), torch.cos(el) * torch.sin(az),
                            torch.sin(el).expand(-1, len(az))], dim=-1).reshape(-1, 3)

    @torch.no_grad()
    def __call__(self, occupancy: torch.Tensor,
                 intensity: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One sweep from ``occupancy`` ``(Z, H, W)`` (bool, or probabilities > 0.5 occupied).

        Returns ``(N, 5)`` float32 ``(x, y, z, intensity, ring)`` in the LiDAR frame.
        """
        if occupancy.dim() != 3 or tuple(occupancy.shape) != self.grid.shape:
            raise ValueError(f'occupancy must be (Z, H, W) = {self.grid.shape} of the sampler '
                             f'grid, got {tuple(occupancy.shape)}')
        occ = occupancy > 0.5 if occupancy.dtype != torch.bool else occupancy
        device = occ.device
        nz, ny, nx = self.grid.shape
        flat = occ.reshape(-1)
        lo = torch.tensor(self.grid.point_cloud_range[:3], device=device)
        size = torch.tensor(self.grid.voxel_size, device=device)
        upper = torch.tensor([nx, ny, nz], device=device)
        t = torch.arange(self.min_range, self.max_range, self.step, device=device)
        dirs = self.ray_directions().to(device)
        rings = torch.arange(len(self.elevations), device=device).repeat_interleave(
            self.azimuth_steps)
        out = []
        for s in range(0, len(dirs), self.chunk_rays):
            d = dirs[s:s + self.chunk_rays]
            xyz = d[:, None, :] * t[None, :, None]                      # (r, T, 3)
            ijk = torch.floor((xyz - lo) / size).long()
            inside = ((ijk >= 0) & (ijk < upper)).all(-1)
            lin = (ijk[..., 2] * ny + ijk[..., 1]) * nx + ijk[..., 0]
            hit = inside & flat[lin.clamp(0, flat.numel() - 1)]
            any_hit = hit.any(dim=1)
            first = hit.float().argmax(dim=1)                          # first True sample
            rows = torch.nonzero(any_hit).squeeze(1)
            r_hit = t[first[rows]]
            pts = d[rows] * r_hit[:, None]
            lin_hit = lin[rows, first[rows]]
            inten = (intensity.reshape(-1)[lin_hit] if intensity is not None
                     else torch.zeros_like(r_hit))
            out.append(torch.cat([pts, inten[:, None], rings[s:s + self.chunk_rays][rows, None]
                                  .float()], dim=1))
        return torch.cat(out).float() if out else torch.zeros(0, 5)


def write_pcd_bin(path: str, points: Union[torch.Tensor, np.ndarray]) -> None:
    """Write ``(N, 5)`` ``(x, y, z, intensity, ring)`` as nuScenes ``.pcd.bin`` (float32),
    atomically (a reader never sees half a file)."""
    arr = np.asarray(points.detach().cpu() if torch.is_tensor(points) else points, np.float32)
    if arr.ndim != 2 or arr.shape[1] != 5:
        raise ValueError(f'{path}: a .pcd.bin sweep needs (N, 5) points (x, y, z, intensity, '
                         f'ring), got shape {arr.shape}')
    atomic_write_bytes(path, np.ascontiguousarray(arr).tobytes())
