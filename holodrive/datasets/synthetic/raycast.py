"""Ray casting of the triangle-mesh world with open3d's ``RaycastingScene`` (Embree).

One :class:`InstantScene` holds the static scenery (merged once per scene) and the agents at
one instant (merged per instant); every triangle knows its box index and part id, so a cast
returns per ray the hit distance, the box index (-1 = nothing), the part and the geometric
normal. Each ray is traced independently, so the result does not depend on the thread count.
"""
import math

import numpy as np
import open3d as o3d

#: threads used by Embree (0 = all); results are identical for any value
NTHREADS = 0


_RAY_BUFFERS = {}


def _rays(origin, dirs):
    """(N, 6) float32 rays in a reused buffer (saves page faults of a fresh array per cast)."""
    n = len(dirs)
    buf = _RAY_BUFFERS.get(n)
    if buf is None:
        if len(_RAY_BUFFERS) > 8:
            _RAY_BUFFERS.clear()
        buf = _RAY_BUFFERS[n] = np.empty((n, 6), np.float32)
    buf[:, :3] = np.asarray(origin, np.float32)
    buf[:, 3:] = dirs
    return o3d.core.Tensor.from_numpy(buf)


class MeshSet:
    """Triangles in the world frame with their box index and part id."""

    def __init__(self, verts, tris, box, part):
        self.verts = np.ascontiguousarray(verts, np.float32).reshape(-1, 3)
        self.tris = np.ascontiguousarray(tris, np.uint32).reshape(-1, 3)
        self.box = np.asarray(box, np.int32).reshape(-1)
        self.part = np.asarray(part, np.int32).reshape(-1)

    def __len__(self):
        return len(self.tris)

    @classmethod
    def from_meshes(cls, meshes, centers, yaws, box_ids):
        """``meshes``: list of box-frame ``(V, T, part)``, placed at ``centers`` (M, 3) / ``yaws`` (M,)
        (all at once; the same arithmetic as :func:`.meshes.place` per mesh)."""
        if not len(meshes):
            return cls(np.zeros((0, 3)), np.zeros((0, 3)), [], [])
        nv = np.array([len(v) for v, _, _ in meshes])
        nt = np.array([len(t) for _, t, _ in meshes])
        v = np.concatenate([m[0] for m in meshes])
        yaws = list(yaws)[:len(meshes)]
        c = np.repeat([math.cos(float(y)) for y in yaws], nv)
        s = np.repeat([math.sin(float(y)) for y in yaws], nv)
        cen = np.repeat(np.asarray(centers, np.float64).reshape(-1, 3)[:len(meshes)], nv, axis=0)
        verts = np.empty_like(v)
        verts[:, 0] = c * v[:, 0] - s * v[:, 1] + cen[:, 0]
        verts[:, 1] = s * v[:, 0] + c * v[:, 1] + cen[:, 1]
        verts[:, 2] = v[:, 2] + cen[:, 2]
        first = np.concatenate([[0], np.cumsum(nv)[:-1]])
        tris = np.concatenate([m[1] for m in meshes]) + np.repeat(first, nt)[:, None]
        box = np.repeat(np.fromiter(box_ids, np.int32, len(meshes)), nt)
        return cls(verts, tris, box, np.concatenate([m[2] for m in meshes]))


class InstantScene:
    """Static + dynamic triangles of one instant, ready to be ray cast."""

    def __init__(self, static, dynamic):
        self.sets = [s for s in (static, dynamic) if s is not None and len(s)]
        self.scene, self.offsets = self._build(self.sets)
        self.tri_box = np.concatenate([s.box for s in self.sets] + [np.zeros(0, np.int32)])
        self.tri_part = np.concatenate([s.part for s in self.sets] + [np.zeros(0, np.int32)])
        self.dynamic = dynamic
        self.tri_tables = None      # per-triangle colour / pattern flag, filled by the renderer

    @staticmethod
    def _build(sets):
        scene = o3d.t.geometry.RaycastingScene()
        offsets = np.zeros(len(sets) + 1, np.int64)
        n = 0
        for s in sets:
            gid = scene.add_triangles(o3d.core.Tensor(s.verts), o3d.core.Tensor(s.tris))
            offsets[gid] = n
            n += len(s)
        return scene, offsets

    def _cast(self, origin, dirs):
        """Embree nearest hits: open3d's answer, the indices of the rays that hit (K,) int64, their
        triangles (K,) int64 and normals (K, 3) float32 turned to face the ray."""
        ans = self.scene.cast_rays(_rays(origin, dirs), nthreads=NTHREADS)
        hit = np.flatnonzero(np.isfinite(ans['t_hit'].numpy()))
        gid = ans['geometry_ids'].numpy()[hit].astype(np.int64)
        tri = ans['primitive_ids'].numpy()[hit].astype(np.int64) + self.offsets[gid]
        nh = ans['primitive_normals'].numpy()[hit]
        flip = np.einsum('ij,ij->i', nh, dirs[hit]) > 0
        nh[flip] *= -1
        return ans, hit, tri, nh

    def cast(self, origin, dirs):
        """Rays from ``origin`` (3,) along ``dirs`` (N, 3) float32.

        Returns t (N,) float32 (inf = miss; in units of ``dirs``' length), box (N,) int32
        (-1 = miss), part (N,) int32, normal (N, 3) float32 (unit, facing the ray) and the
        triangle index (N,) int64 (-1 = miss; into :attr:`tri_box` / :attr:`tri_part`).
        """
        n = len(dirs)
        if not self.sets or not n:
            return (np.full(n, np.inf, np.float32), np.full(n, -1, np.int32), np.zeros(n, np.int32),
                    np.zeros((n, 3), np.float32), np.full(n, -1, np.int64))
        ans, hit, tri, nh = self._cast(origin, dirs)
        box = np.full(n, -1, np.int32)
        box[hit] = self.tri_box[tri]
        part = np.zeros(n, np.int32)
        part[hit] = self.tri_part[tri]
        nrm = ans['primitive_normals'].numpy()
        nrm[hit] = nh
        tri_all = np.full(n, -1, np.int64)
        tri_all[hit] = tri
        return ans['t_hit'].numpy(), box, part, nrm, tri_all

    def cast_hits(self, origin, dirs):
        """Like :meth:`cast` for the rays that hit only: their indices (K,) int64 into ``dirs``, then
        t (K,) float32, box (K,) int32, part (K,) int32, normal (K, 3) float32 and triangle (K,) int64."""
        if not self.sets or not len(dirs):
            return (np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(0, np.int32),
                    np.zeros((0, 3), np.float32), np.zeros(0, np.int64))
        ans, hit, tri, nh = self._cast(origin, dirs)
        return hit, ans['t_hit'].numpy()[hit], self.tri_box[tri], self.tri_part[tri], nh, tri

    def coverage(self, origin, dirs, ray_index, n_boxes):
        """Pixels covered by each box ignoring occlusion: counts (n_boxes,) of rays that hit
        a box's agent mesh anywhere along the ray (dynamic triangles only)."""
        counts = np.zeros(n_boxes, np.int64)
        if self.dynamic is None or not len(self.dynamic) or not len(dirs):
            return counts
        # the scene's own BVH (no second build); keep the intersections with agent triangles
        lx = self.scene.list_intersections(_rays(origin, dirs), nthreads=NTHREADS)
        rid = lx['ray_ids'].numpy().astype(np.int64)
        if not len(rid):
            return counts
        dyn_gid = self.sets.index(self.dynamic)
        ok = (lx['t_hit'].numpy() > 1e-3) & (lx['geometry_ids'].numpy().astype(np.int64) == dyn_gid)
        b = self.dynamic.box[lx['primitive_ids'].numpy().astype(np.int64)[ok]].astype(np.int64)
        key = np.unique(ray_index[rid[ok]].astype(np.int64) * n_boxes + b)
        np.add.at(counts, key % n_boxes, 1)
        return counts
