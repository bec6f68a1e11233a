"""Offscreen 3D view of a point cloud with boxes, rendered by open3d.

open3d 0.20 renders headless only through Vulkan (lavapipe on CPU: Debian's
``libvulkan1 mesa-vulkan-drivers``, installed by tools/install.sh). Without a Vulkan
driver open3d *aborts the process*, so rendering runs in a child process and a failure
is reported, not fatal.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

_CHILD = r'''
import sys, numpy as np, open3d as o3d
from open3d.visualization import rendering
data = np.load(sys.argv[1]); out = sys.argv[2]
pts = data['points']
r = rendering.OffscreenRenderer(960, 720)
r.scene.set_background([1, 1, 1, 1])
r.scene.view.set_post_processing(False)  # exact colours, no tone mapping
pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts[:, :3].astype(np.float64)))
z = np.clip((pts[:, 2] + 2.5) / 4.5, 0, 1)
pcd.colors = o3d.utility.Vector3dVector(np.stack([z, 0.3 + 0.4 * (1 - z), 1 - z], 1))
mat = rendering.MaterialRecord(); mat.shader = 'defaultUnlit'; mat.point_size = 2.0
r.scene.add_geometry('points', pcd, mat)
edges = [[0,1],[1,2],[2,3],[3,0],[4,5],[5,6],[6,7],[7,4],[0,4],[1,5],[2,6],[3,7]]
line_mat = rendering.MaterialRecord(); line_mat.shader = 'unlitLine'; line_mat.line_width = 2.0
for name, color in (('gt', [0.1, 0.75, 0.1]), ('pred', [0.85, 0.1, 0.1])):
    for i, c in enumerate(data[name]):
        ls = o3d.geometry.LineSet(o3d.utility.Vector3dVector(c.astype(np.float64)),
                                  o3d.utility.Vector2iVector(edges))
        ls.paint_uniform_color(color)
        r.scene.add_geometry(f'{name}{i}', ls, line_mat)
r.setup_camera(60.0, [10, 0, 0], [-25, -25, 30], [0, 0, 1])
o3d.io.write_image(out, r.render_to_image())
'''


def render_points(points: np.ndarray, boxes_lidar=None, out_png: str = 'points3d.png',
                  timeout_s: float = 120.0, pred_boxes_lidar=None) -> bool:
    """Render ``[M, >=3]`` LiDAR points, ground-truth ``[N, 7]`` boxes (green) and predicted
    ``[K, 7]`` boxes (red; LiDAR frame, metres, radians) to ``out_png``; True on success."""
    from .scene_plots import box_corners

    def corners_of(boxes):
        return box_corners(boxes) if boxes is not None and len(boxes) else np.zeros((0, 8, 3))
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, 'scene.npz')
        np.savez(npz, points=np.asarray(points, np.float32), gt=corners_of(boxes_lidar),
                 pred=corners_of(pred_boxes_lidar))
        proc = subprocess.run([sys.executable, '-c', _CHILD, npz, out_png],
                              capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0 or not os.path.isfile(out_png):
        last = (proc.stderr.strip().splitlines() or ['no output'])[-1]
        print(f'open3d rendering unavailable ({last}); skipped {out_png}', file=sys.stderr)
        return False
    return True
