"""Pictures of a keyframe: six camera views with projected 3D boxes, and a LiDAR BEV plot.

Boxes are ``[N, 7+]`` arrays ``(x, y, z_bottom, l, w, h, yaw, ...)`` in the LiDAR frame
(mmdet3d ``LiDARInstance3DBoxes`` convention); points are ``[M, >=3]`` in the LiDAR frame
(metres).
"""
import cv2
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from holodrive.utils.geometry import box_corners as corners_of  # noqa: E402

#: (start, end) corner indices of the 12 box edges in mmdet3d's corner order.
_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
          (0, 4), (1, 5), (2, 6), (3, 7)]
GT_COLOR = (40, 220, 40)     # RGB
PRED_COLOR = (230, 40, 40)


def box_corners(boxes_lidar: np.ndarray) -> np.ndarray:
    """``[N, 7+]`` LiDAR boxes (bottom centre) -> ``[N, 8, 3]`` corners (mmdet3d order)."""
    return corners_of(boxes_lidar, origin=(0.5, 0.5, 0.0))


#: RGB colours of layout channels (map layers first, then box groups), by name.
LAYOUT_COLORS = {'drivable_area': (70, 70, 80), 'lane': (110, 110, 130),
                 'ped_crossing': (240, 240, 240), 'walkway': (150, 120, 90),
                 'lane_divider': (250, 210, 60), 'road_divider': (250, 120, 30)}
_GROUP_COLORS = [(30, 120, 255), (255, 60, 200), (255, 40, 40), (60, 230, 60),
                 (0, 220, 220), (200, 200, 0)]


def layout_to_rgb(layout: np.ndarray, channels) -> np.ndarray:
    """``(C, h, w)`` 0/1 layout -> ``(h, w, 3)`` uint8 RGB; later channels paint over earlier
    ones (map layers, then lines, then boxes)."""
    out = np.zeros(layout.shape[1:] + (3,), np.uint8)
    groups = 0
    for ch, name in enumerate(channels):
        color = LAYOUT_COLORS.get(name)
        if color is None:
            color = _GROUP_COLORS[groups % len(_GROUP_COLORS)]
            groups += 1
        out[layout[ch] > 0] = color
    return out


def caption_strip(text: str, width: int, height: int = 28) -> np.ndarray:
    """A black ``(height * lines, width, 3)`` strip with ``text`` wrapped in white."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.55
    words, lines, line = text.split(), [], ''
    for word in words:
        trial = f'{line} {word}'.strip()
        if cv2.getTextSize(trial, font, scale, 1)[0][0] > width - 16 and line:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    strip = np.zeros((height * len(lines), width, 3), np.uint8)
    for i, ln in enumerate(lines):
        cv2.putText(strip, ln, (8, height * i + 19), font, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return strip


def draw_boxes_on_image(image: np.ndarray, corners_lidar: np.ndarray, lidar2cam: np.ndarray,
                        cam2img: np.ndarray, color, thickness: int = 2) -> np.ndarray:
    """Project ``[N, 8, 3]`` LiDAR corners into an ``[H, W, 3]`` RGB image and draw edges."""
    out = image.copy()
    h, w = out.shape[:2]
    for corners in corners_lidar:
        pts_cam = corners @ lidar2cam[:3, :3].T + lidar2cam[:3, 3]
        if (pts_cam[:, 2] < 0.1).all():
            continue
        for a, b in _EDGES:
            pa, pb = pts_cam[a].copy(), pts_cam[b].copy()
            if pa[2] < 0.1 and pb[2] < 0.1:
                continue
            # clip the edge to the near plane z = 0.1 m
            if pa[2] < 0.1 or pb[2] < 0.1:
                t = (0.1 - pa[2]) / (pb[2] - pa[2])
                clipped = pa + t * (pb - pa)
                pa, pb = (clipped, pb) if pa[2] < 0.1 else (pa, clipped)
            uv = np.stack([pa, pb]) @ cam2img[:3, :3].T
            uv = uv[:, :2] / uv[:, 2:3]
            ok, p1, p2 = cv2.clipLine((0, 0, w, h), tuple(int(v) for v in uv[0]),
                                      tuple(int(v) for v in uv[1]))
            if ok:
                cv2.line(out, p1, p2, color, thickness, cv2.LINE_AA)
    return out


def camera_grid(images: dict, lidar2cam: dict, cam2img: dict, gt_boxes=None, pred_boxes=None,
                order=None) -> np.ndarray:
    """Tile six camera views (2 x 3, front row / back row) with GT and predicted boxes."""
    order = order or list(images)
    gt_c = box_corners(gt_boxes) if gt_boxes is not None else None
    pr_c = box_corners(pred_boxes) if pred_boxes is not None else None
    tiles = []
    for cam in order:
        img = images[cam]
        if gt_c is not None:
            img = draw_boxes_on_image(img, gt_c, lidar2cam[cam], cam2img[cam], GT_COLOR)
        if pr_c is not None:
            img = draw_boxes_on_image(img, pr_c, lidar2cam[cam], cam2img[cam], PRED_COLOR, 1)
        img = img.copy()
        cv2.putText(img, cam, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        tiles.append(img)
    h, w = tiles[0].shape[:2]
    tiles = [cv2.resize(t, (w, h)) for t in tiles]
    half = (len(tiles) + 1) // 2
    rows = [np.concatenate(tiles[:half], 1), np.concatenate(tiles[half:], 1)]
    if rows[1].shape[1] < rows[0].shape[1]:
        pad = np.zeros((h, rows[0].shape[1] - rows[1].shape[1], 3), rows[0].dtype)
        rows[1] = np.concatenate([rows[1], pad], 1)
    return np.concatenate(rows, 0)


def bev_figure(points: np.ndarray, gt_boxes=None, pred_boxes=None, extent_m: float = 54.0,
               title: str = '', ax=None):
    """Matplotlib figure of LiDAR points (coloured by height) with box footprints
    (drawn into ``ax`` when given, else a new 8 x 8 in figure)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 8), dpi=100)
    else:
        fig = ax.figure
    keep = (np.abs(points[:, 0]) < extent_m) & (np.abs(points[:, 1]) < extent_m)
    pts = points[keep]
    ax.scatter(pts[:, 0], pts[:, 1], s=0.3, c=pts[:, 2], cmap='viridis', vmin=-2.5, vmax=2.0)
    for boxes, color, label in ((gt_boxes, GT_COLOR, 'ground truth'),
                                (pred_boxes, PRED_COLOR, 'prediction')):
        if boxes is None or len(boxes) == 0:
            continue
        rgb = tuple(c / 255 for c in color)
        for i, c in enumerate(box_corners(boxes)):
            foot = c[[0, 3, 7, 4, 0], :2]  # bottom face in mmdet3d corner order
            ax.plot(foot[:, 0], foot[:, 1], color=rgb, lw=1.2, label=label if i == 0 else None)
            front = c[[4, 7], :2].mean(0)  # heading tick: centre -> front face
            ax.plot([c[:, 0].mean(), front[0]], [c[:, 1].mean(), front[1]], color=rgb, lw=1)
    ax.plot(0, 0, marker='^', color='k', ms=8)
    ax.set_xlim(-extent_m, extent_m)
    ax.set_ylim(-extent_m, extent_m)
    ax.set_aspect('equal')
    ax.set_xlabel('x (m, LiDAR frame)')
    ax.set_ylabel('y (m, LiDAR frame)')
    ax.set_title(title)
    if gt_boxes is not None or pred_boxes is not None:
        ax.legend(loc='upper right', fontsize=8)
    fig.tight_layout()
    return fig
