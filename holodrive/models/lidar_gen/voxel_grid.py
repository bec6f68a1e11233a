"""The voxelised BEV space of the LiDAR generator: points <-> binary occupancy.

A :class:`VoxelGrid` covers ``point_cloud_range = [x_min, y_min, z_min, x_max, y_max, z_max]``
(metres, LiDAR frame) with cells of ``voxel_size = [dx, dy, dz]``. Its occupancy volume has
shape ``(Z, H, W)`` = (height bins, rows along +y, columns along +x), the layout of
:mod:`holodrive.datasets.transforms.bev` (``occ[k, i, j]`` is the cell centred at
``x = x_min + (j + 0.5) dx``, ``y = y_min + (i + 0.5) dy``, ``z = z_min + (k + 0.5) dz``), so the
BEV layout rasters of the data path and the occupancy align cell for cell when they share the
range and resolution. The height bins act as the channels of a BEV image (UltraLiDAR /
OpenDWM's ``VQPointCloud``). Full size (the reference): x, y in [-50, 50] m at 0.15625 m,
z in [-3, 5] m at 0.125 m -> (64, 640, 640).
"""
from typing import List, Sequence, Tuple

import torch


class VoxelGrid:
    """Metric voxel grid (module docstring).

    Args:
        point_cloud_range: ``[x_min, y_min, z_min, x_max, y_max, z_max]`` in metres.
        voxel_size: ``[dx, dy, dz]`` in metres; each extent must be a whole multiple.
    """

    def __init__(self, point_cloud_range: Sequence[float], voxel_size: Sequence[float]):
        if len(point_cloud_range) != 6 or len(voxel_size) != 3:
            raise ValueError(f'point_cloud_range needs 6 values and voxel_size 3, got '
                             f'{list(point_cloud_range)} and {list(voxel_size)}')
        self.point_cloud_range = [float(v) for v in point_cloud_range]
        self.voxel_size = [float(v) for v in voxel_size]
        dims = []
        for axis in range(3):
            n = (self.point_cloud_range[axis + 3] - self.point_cloud_range[axis]) \
                / self.voxel_size[axis]
            if n <= 0 or abs(n - round(n)) > 1e-6:
                raise ValueError(f'point_cloud_range {self.point_cloud_range} must span whole '
                                 f'multiples of voxel_size {self.voxel_size} (axis {"xyz"[axis]})')
            dims.append(int(round(n)))
        self.nx, self.ny, self.nz = dims

    @property
    def shape(self) -> Tuple[int, int, int]:
        """``(Z, H, W)`` of the occupancy volume."""
        return self.nz, self.ny, self.nx

    def linear_cells(self, points: torch.Tensor):
        """``(keep (N,) bool, lin (K,) long)``: which points fall inside the grid and the flat
        index ``(k * H + i) * W + j`` of the cell of each kept point."""
        lo = points.new_tensor(self.point_cloud_range[:3])
        size = points.new_tensor(self.voxel_size)
        ijk = torch.floor((points[:, :3] - lo) / size).long()          # (N, 3) x, y, z bins
        upper = torch.tensor([self.nx, self.ny, self.nz], device=points.device)
        keep = ((ijk >= 0) & (ijk < upper)).all(dim=1)
        ijk = ijk[keep]
        return keep, (ijk[:, 2] * self.ny + ijk[:, 1]) * self.nx + ijk[:, 0]

    def voxel_indices(self, points: torch.Tensor) -> torch.Tensor:
        """Unique occupied cells of one sweep.

        Args:
            points: ``(N, >=3)`` LiDAR-frame points (x, y, z first).
        Returns:
            ``(M, 3)`` long ``(k, i, j)`` = (z bin, row, column) of the occupied cells, sorted;
            points outside the range are dropped.
        """
        lin = torch.unique(self.linear_cells(points)[1])
        plane = self.ny * self.nx
        return torch.stack([lin // plane, (lin % plane) // self.nx, lin % self.nx], dim=1)

    def occupancy(self, points_list: List[torch.Tensor]) -> torch.Tensor:
        """``(B, Z, H, W)`` float 0/1 occupancy of a batch of sweeps."""
        nz, ny, nx = self.shape
        device = points_list[0].device if points_list else 'cpu'
        occ = torch.zeros(len(points_list), nz * ny * nx, device=device)
        for b, points in enumerate(points_list):
            occ[b, self.linear_cells(points)[1]] = 1.0
        return occ.view(len(points_list), nz, ny, nx)

    def sparse_indices(self, points_list: List[torch.Tensor]) -> torch.Tensor:
        """``(M, 4)`` int32 ``(batch, k, i, j)``: spconv's ``SparseConvTensor`` index layout."""
        rows = []
        for b, points in enumerate(points_list):
            kij = self.voxel_indices(points)
            rows.append(torch.cat([kij.new_full((len(kij), 1), b), kij], dim=1))
        return torch.cat(rows).int()

    def cell_centres(self, kij: torch.Tensor) -> torch.Tensor:
        """``(M, 3)`` metric x, y, z centres of cells ``kij`` ``(M, 3)`` (k, i, j)."""
        lo = torch.tensor(self.point_cloud_range[:3], device=kij.device)
        size = torch.tensor(self.voxel_size, device=kij.device)
        xyz_index = torch.stack([kij[:, 2], kij[:, 1], kij[:, 0]], dim=1).float()
        return lo + (xyz_index + 0.5) * size

    def __repr__(self):
        return (f'VoxelGrid(range={self.point_cloud_range}, voxel={self.voxel_size}, '
                f'shape (Z, H, W)={self.shape})')
