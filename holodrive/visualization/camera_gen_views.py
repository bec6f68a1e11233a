"""Pictures of a generated multi-view frame (``tools/generate.py --modality camera``).

``write_camera_outputs(stem, ...)`` writes

- ``STEM_<CAMERA>.png``: each generated view at the model resolution;
- ``STEM_grid.png``: the six views (2 x 3, ring order) with the layout blended in, the caption
  below, and the real views beside them when given;
- ``STEM_depth.png``: the depth branch's expected depth per view (metres, colour bar);
- ``STEM_conditions.json``: what the sample was conditioned on and how it was sampled.
"""
import json
from typing import Dict, Optional, Sequence

import cv2
import numpy as np

from .scene_plots import caption_strip, layout_to_rgb


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """``(V, 3, H, W)`` in [0, 1] -> ``(V, H, W, 3)`` uint8 RGB."""
    return (np.clip(images, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)


def _tile(tiles: Sequence[np.ndarray], names: Sequence[str]) -> np.ndarray:
    tiles = [t.copy() for t in tiles]
    for t, name in zip(tiles, names):
        cv2.putText(t, name, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
    half = (len(tiles) + 1) // 2
    rows = [np.concatenate(tiles[:half], 1), np.concatenate(tiles[half:], 1)]
    if rows[1].shape[1] < rows[0].shape[1]:
        rows[1] = np.pad(rows[1], ((0, 0), (0, rows[0].shape[1] - rows[1].shape[1]), (0, 0)))
    return np.concatenate(rows, 0)


def expected_depth(depth_logits: np.ndarray, bins: Sequence[float]) -> np.ndarray:
    """``(V, D, h, w)`` logits -> ``(V, h, w)`` expected depth (metres) at the bin centres of
    ``bins = (start, stop, step)``."""
    start, _, step = bins
    centres = start + step * (np.arange(depth_logits.shape[1]) + 0.5)
    z = depth_logits - depth_logits.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return (p * centres[None, :, None, None]).sum(1)


def write_camera_outputs(stem: str, images: np.ndarray, camera_names: Sequence[str],
                         ring: Sequence[int], layout: Optional[np.ndarray] = None,
                         layout_channels: Optional[Sequence[str]] = None,
                         caption: str = '', real_images: Optional[np.ndarray] = None,
                         depth_logits: Optional[np.ndarray] = None,
                         depth_bins: Optional[Sequence[float]] = None,
                         conditions: Optional[Dict] = None) -> list:
    """Write the pictures and the conditions (module docstring); returns the paths.

    Args:
        images, real_images: ``(V, 3, H, W)`` in [0, 1].
        ring: view indices in ring order (the grid's order).
        layout: ``(V, C, H, W)`` 0/1 layout images; ``layout_channels`` their names.
        depth_logits: ``(V, D, h, w)``; ``depth_bins`` ``(start, stop, step)`` metres.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    written = []
    gen = _to_uint8(images)
    for v, name in enumerate(camera_names):
        path = f'{stem}_{name}.png'
        cv2.imwrite(path, cv2.cvtColor(gen[v], cv2.COLOR_RGB2BGR))
        written.append(path)
    order = list(ring)
    names = [camera_names[v] for v in order]
    tiles = []
    for v in order:
        tile = gen[v]
        if layout is not None:
            rgb = layout_to_rgb(layout[v], layout_channels or [])
            drawn = rgb.any(-1, keepdims=True)
            tile = np.where(drawn, (0.6 * tile + 0.4 * rgb).astype(np.uint8), tile)
        tiles.append(tile)
    grid = _tile(tiles, [f'{n} (generated)' for n in names])
    if real_images is not None:
        real = _to_uint8(real_images)
        grid = np.concatenate([grid, _tile([real[v] for v in order], names)], 1)
    if caption:
        grid = np.concatenate([grid, caption_strip(caption, grid.shape[1])], 0)
    path = f'{stem}_grid.png'
    cv2.imwrite(path, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    written.append(path)
    if depth_logits is not None and depth_bins is not None:
        depth = expected_depth(depth_logits, depth_bins)
        fig, axes = plt.subplots(2, (len(order) + 1) // 2, figsize=(12, 3.2))
        for ax, v in zip(axes.flat, order):
            im = ax.imshow(depth[v], cmap='turbo', vmin=depth_bins[0], vmax=depth_bins[1])
            ax.set_title(camera_names[v], fontsize=8)
            ax.axis('off')
        fig.colorbar(im, ax=axes, shrink=0.8, label='expected depth (m)')
        path = f'{stem}_depth.png'
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    path = f'{stem}_conditions.json'
    with open(path, 'w') as f:
        json.dump(dict(conditions or {}, caption=caption, cameras=list(camera_names),
                       layout_channels=list(layout_channels or [])), f, indent=1)
    written.append(path)
    return written
