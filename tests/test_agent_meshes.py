"""Agent meshes: inside their boxes, and front / back told apart by shape alone (what LiDAR sees)."""
import numpy as np
import open3d as o3d
import pytest

from holodrive.datasets.synthetic.meshes import make_mesh

# (shape, size (w, l, h), rider) with typical nuScenes sizes
SHAPES = [('car', (1.95, 4.62, 1.73), False), ('truck', (2.5, 7.0, 2.9), False),
          ('construction', (2.8, 6.4, 3.2), False), ('bus', (2.9, 11.0, 3.5), False),
          ('trailer', (2.9, 12.0, 3.9), False), ('motorcycle', (0.77, 2.1, 1.47), False),
          ('motorcycle', (0.77, 2.1, 1.6), True), ('bicycle', (0.6, 1.7, 1.28), False),
          ('bicycle', (0.6, 1.7, 1.75), True), ('pedestrian', (0.67, 0.73, 1.77), False)]


def _height_map(verts, tris, size_wlh, cells=24):
    """Top-down ray cast over the box footprint: (cells along x, cells along y) hit heights, nan = miss."""
    w, l, h = size_wlh
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(verts.astype(np.float32)), o3d.core.Tensor(tris.astype(np.uint32)))
    xs = (np.arange(cells) + 0.5) / cells * l - l / 2
    ys = (np.arange(cells) + 0.5) / cells * w - w / 2
    gx, gy = np.meshgrid(xs, ys, indexing='ij')
    rays = np.zeros((cells * cells, 6), np.float32)
    rays[:, 0], rays[:, 1], rays[:, 2], rays[:, 5] = gx.ravel(), gy.ravel(), h, -1.0
    t = scene.cast_rays(o3d.core.Tensor(rays))['t_hit'].numpy()
    z = np.where(np.isfinite(t), h / 2 - t, np.nan)     # mesh origin is the box centre
    return z.reshape(cells, cells)


@pytest.mark.parametrize('shape,size,rider', SHAPES)
def test_mesh_fits_its_box(shape, size, rider):
    v, t, part = make_mesh(shape, size, rider)
    w, l, h = size
    assert len(t) == len(part) and t.max() < len(v)
    assert np.all(np.abs(v[:, 0]) <= l / 2 + 1e-6) and np.all(np.abs(v[:, 1]) <= w / 2 + 1e-6)
    assert np.all(np.abs(v[:, 2]) <= h / 2 + 1e-6)
    # the mesh fills its box: it reaches near every face (the box stays an honest annotation)
    assert v[:, 0].max() > 0.35 * l and v[:, 0].min() < -0.35 * l
    assert v[:, 2].max() > 0.2 * h and v[:, 2].min() < -0.45 * h


@pytest.mark.parametrize('shape,size,rider', SHAPES)
def test_front_and_back_differ_in_shape(shape, size, rider):
    """The top-down height profile is not symmetric under a half turn (x -> -x, y -> -y).

    A plain box (the old agents) has the same profile both ways and would fail; the
    difference is measured in metres of height, averaged over the footprint.
    """
    v, t, _ = make_mesh(shape, size, rider)
    z = np.nan_to_num(_height_map(v, t, size), nan=-size[2] / 2)    # a miss reads as the ground
    turned = z[::-1, ::-1]
    asym = float(np.abs(z - turned).mean())
    assert asym > 0.04 * size[2], (shape, asym)
    # the same criterion fails a plain box of the same size (the old agents)
    vb, tb, _ = make_mesh('building', size)
    zb = np.nan_to_num(_height_map(vb, tb, size), nan=-size[2] / 2)
    assert float(np.abs(zb - zb[::-1, ::-1]).mean()) < 0.04 * size[2]
