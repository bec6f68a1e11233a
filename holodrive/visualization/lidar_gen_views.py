"""Pictures of a generated LiDAR sweep: BEV (beside the real sweep when there is one) and a
3D view (open3d offscreen, matplotlib 3D when open3d cannot render)."""
from typing import List, Optional

import numpy as np

from .scene_plots import bev_figure, plt


def write_views(stem: str, points: np.ndarray, boxes: Optional[np.ndarray],
                real_points: Optional[np.ndarray] = None, use_open3d: bool = False,
                extent_m: float = 54.0) -> List[str]:
    """Write ``stem_bev.png`` and ``stem_points3d.png``; return the paths written.

    ``points`` / ``real_points``: ``(N, >=3)`` LiDAR frame; ``boxes``: ``(K, 7)`` conditioning
    boxes (bottom centre), drawn in green."""
    panels = 2 if real_points is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(8 * panels, 8), dpi=90, squeeze=False)
    bev_figure(points, boxes, extent_m=extent_m,
               title=f'generated ({len(points)} points) + conditioning boxes', ax=axes[0, 0])
    if real_points is not None:
        bev_figure(real_points, boxes, extent_m=extent_m,
                   title=f'real sweep ({len(real_points)} points)', ax=axes[0, 1])
    fig.savefig(stem + '_bev.png')
    plt.close(fig)
    out3d = stem + '_points3d.png'
    rendered = False
    if use_open3d:
        from .open3d_render import render_points
        rendered = render_points(points, boxes, out3d)
    if not rendered:
        fig = plt.figure(figsize=(8, 6), dpi=90)
        ax = fig.add_subplot(projection='3d')
        keep = np.abs(points[:, :2]).max(axis=1) < extent_m
        p = points[keep][::2]
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], s=0.2, c=p[:, 2], cmap='viridis', vmin=-2.5,
                   vmax=2.0)
        ax.set_zlim(-6, 6)
        ax.view_init(elev=35, azim=-120)
        ax.set_title('generated sweep (matplotlib 3D)')
        fig.savefig(out3d)
        plt.close(fig)
    return [stem + '_bev.png', out3d]
