"""Camera and LiDAR rendering of the scene: analytic ground plane (raster classes), sky, and
the triangle meshes of scenery and agents ray cast with Embree (:mod:`.raycast`).

Both sensors are regular ray grids sharing one origin; the nearest of the ground hit and the
mesh hit wins. Shading uses the hit triangle's normal and its part id (glass, lights, ...);
class patterns (building windows, barrier stripes) use the hit point in the box frame.
"""
import math

import numpy as np
from PIL import ImageDraw

from ...utils.geometry import box_corners, box_footprints
from . import layout as L
from .meshes import P_BODY, P_HEAD, P_TAIL, PART_COLORS, PART_REFLECT
from .sensors import LIDAR_AZIMUTH_STEPS, LIDAR_ELEVATIONS, LIDAR_RANGE

# materials (shading patterns and LiDAR reflectivity)
M_BUILDING, M_WALL, M_TRUNK, M_CROWN, M_CAR, M_TRUCK, M_BUS, M_PED, M_CONE, M_BARRIER, M_CYCLE, M_BIN = range(12)
_REFLECT = np.array([40, 45, 25, 20, 35, 40, 40, 20, 120, 90, 30, 25], np.float32)
_GROUND_REFLECT = np.array([20, 8, 25, 90, 70, 90], np.float32)
_GROUND_COLORS = np.array([[92, 112, 70], [68, 68, 72], [152, 147, 140], [232, 232, 228],
                           [222, 186, 60], [238, 238, 235]], np.float32)
_GROUND_COLORS_WHITE_DIVIDER = _GROUND_COLORS.copy()
_GROUND_COLORS_WHITE_DIVIDER[4] = (228, 228, 222)
# ADE semantic classes of the ground raster values
GROUND_SEM = np.array([4, 1, 2, 3, 3, 3], np.uint8)
SKY_SEM = 7


class Boxes:
    """Arrays describing all boxes of the scene at one instant."""

    def __init__(self, centers, sizes, yaws, colors, sem, inst, material):
        self.centers = np.asarray(centers, np.float64).reshape(-1, 3)
        sizes = np.asarray(sizes, np.float64).reshape(-1, 3)              # (w, l, h)
        self.half = np.stack([sizes[:, 1], sizes[:, 0], sizes[:, 2]], 1) / 2.0  # local x, y, z
        self.yaws = np.asarray(yaws, np.float64).reshape(-1)
        self.colors = np.asarray(colors, np.float32).reshape(-1, 3)
        self.sem = np.asarray(sem, np.uint8).reshape(-1)
        self.inst = np.asarray(inst, np.int32).reshape(-1)
        self.material = np.asarray(material, np.int32).reshape(-1)

    def __len__(self):
        return len(self.yaws)

    def array(self):
        """(M, 7) ``[x, y, z, l, w, h, yaw]`` (gravity centres)."""
        return np.concatenate([self.centers, 2 * self.half, self.yaws[:, None]], 1)

    def corners(self, i):
        return box_corners(self.array()[i:i + 1])[0]


#: box edges over the corners of :func:`holodrive.utils.geometry.box_corners` (0-3 back, 4-7 front)
_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]


def _all_corners(boxes):
    """(M, 8, 3) corners of all boxes (mmdet3d order, see :func:`holodrive.utils.geometry.box_corners`)."""
    return box_corners(boxes.array())


def _cam_rect(corners_cam, K, w, h, near=0.05):
    """Pixel rectangle covering the projection of a box given its corners in the camera frame."""
    z = corners_cam[:, 2]
    if (z < near).all():
        return None
    pts = [corners_cam[z >= near]]
    for a, b in _EDGES:
        za, zb = z[a], z[b]
        if (za - near) * (zb - near) < 0:
            f = (near - za) / (zb - za)
            pts.append((corners_cam[a] + f * (corners_cam[b] - corners_cam[a]))[None])
    p = np.concatenate(pts, 0)
    u = K[0, 0] * p[:, 0] / p[:, 2] + K[0, 2]
    v = K[1, 1] * p[:, 1] / p[:, 2] + K[1, 2]
    c0, c1 = int(max(math.floor(u.min() + 0.5) - 1, 0)), int(min(math.ceil(u.max() + 0.5) + 1, w))
    r0, r1 = int(max(math.floor(v.min() + 0.5) - 1, 0)), int(min(math.ceil(v.max() + 0.5) + 1, h))
    if c1 <= c0 or r1 <= r0:
        return None
    return r0, r1, c0, c1


_RAY_CACHE = {}


def camera_rays(K, w, h):
    """Ray directions (3, h, w) in the camera frame (z = 1) through the pixel centres, and their norms."""
    key = (w, h) + tuple(np.round(np.asarray(K).ravel(), 9))
    if key not in _RAY_CACHE:
        if len(_RAY_CACHE) > 64:
            _RAY_CACHE.clear()
        u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        d = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)])
        _RAY_CACHE[key] = (d.astype(np.float32), np.linalg.norm(d, axis=0).astype(np.float32))
    return _RAY_CACHE[key]


_SKY_LOW = np.array([205, 218, 232], np.float32)
_SKY_HIGH = np.array([95, 145, 212], np.float32)


def _hull(pts):
    """Convex hull (counter-clockwise) of a few 2D points (monotone chain)."""
    pts = sorted(map(tuple, pts))
    lower, upper = [], []
    for seq, out in ((pts, lower), (pts[::-1], upper)):
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1]) -
                                     (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
    return lower[:-1] + upper[:-1]


def draw_shadows(img, layout, centers, sizes, yaws, sun):
    """Rasterise the ground shadows of boxes (sun direction ``sun``) into the PIL image ``img``
    aligned with the layout's ground raster (255 = shadow)."""
    draw = ImageDraw.Draw(img)
    x0, y0 = layout.origin
    k = -np.asarray(sun[:2], np.float64) / max(float(sun[2]), 0.2)
    centers = np.asarray(centers, np.float64).reshape(-1, 3)
    sizes = np.asarray(sizes, np.float64).reshape(-1, 3)
    feet = box_footprints(np.concatenate([centers, sizes[:, [1, 0, 2]], np.asarray(yaws, np.float64).reshape(-1, 1)], 1))
    for foot, cz, bh in zip(feet, centers[:, 2], sizes[:, 2]):
        top = cz + bh / 2
        pts = np.concatenate([foot, foot + k * top])
        draw.polygon([((x - x0) / L.RASTER_RES, (y - y0) / L.RASTER_RES) for x, y in _hull(pts)], fill=255)
    return img


def _ground(layout, o, dirs_flat, t):
    """Ground raster class of the rays ``dirs_flat`` hitting the ground at ``t``."""
    gx = o[0] + t * dirs_flat[:, 0]
    gy = o[1] + t * dirs_flat[:, 1]
    return gx, gy, layout.ground_class(gx, gy)


_SKY_CACHE = {}


def _sky(dz, nflat, R, K, w, h, low=_SKY_LOW, high=_SKY_HIGH):
    """Sky gradient (h * w, 3) uint8; depends only on the ray elevations (the ego stays level: cached)."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    key = (w, h) + tuple(np.round(np.asarray(K).ravel(), 6)) + tuple(np.round(R[2], 6)) + \
        tuple(low.tolist()) + tuple(high.tolist())
    if key not in _SKY_CACHE:
        if len(_SKY_CACHE) > 64:
            _SKY_CACHE.clear()
        f = np.clip(dz / nflat * 4.0, 0.0, 1.0)[:, None]
        _SKY_CACHE[key] = np.clip(((1 - f) * low + f * high).astype(np.float32), 0, 255).astype(np.uint8)
    return _SKY_CACHE[key]


def _cover(boxes, K, R, o, w, h):
    """Projected rectangles of the boxes: (h * w,) bool any box, (h * w,) int16 agent boxes covering
    each pixel (only rays inside some rectangle can hit a mesh)."""
    n_cover = np.zeros((h, w), np.int16)
    any_cover = np.zeros((h, w), bool)
    cam = (_all_corners(boxes) - o) @ R                      # (M, 8, 3) in the camera frame
    near = np.hypot(boxes.centers[:, 0] - o[0], boxes.centers[:, 1] - o[1]) <= 300.0
    for i in np.flatnonzero(near & (cam[:, :, 2] >= 0.05).any(1)):
        rect = _cam_rect(cam[i], K, w, h)
        if rect is not None:
            any_cover[rect[0]:rect[1], rect[2]:rect[3]] = True
            if boxes.inst[i] > 0:
                n_cover[rect[0]:rect[1], rect[2]:rect[3]] += 1
    return any_cover.reshape(-1), n_cover.reshape(-1)


def _haze(rgb, dist, haze_m, sky_low):
    """Distance haze of the colours ``rgb`` (N, 3) float32 at ray lengths ``dist`` (N,), as uint8."""
    haze = (1.0 - np.exp(-dist / haze_m))[:, None]
    return np.clip(rgb * (1 - haze) + haze * sky_low, 0, 255).astype(np.uint8)


def _ground_rgb(layout, o, dirs, nflat, t, sun, light, wet, shadow):
    """Colours (N, 3) float32 and ADE labels (N,) of the ground hits of rays ``dirs`` (N, 3) with
    norms ``nflat`` (N,) at ``t`` (N,)."""
    gx, gy, gcls = _ground(layout, o, dirs, t)
    col = np.floor(gx / L.RASTER_RES).astype(np.int64)
    row = np.floor(gy / L.RASTER_RES).astype(np.int64)
    noise = (((col * 73856093) ^ (row * 19349663)) & 255).astype(np.float32) / 255.0
    palette = _GROUND_COLORS if layout.rht else _GROUND_COLORS_WHITE_DIVIDER
    gfac = (0.9 + 0.2 * noise) * ((0.55 + 0.45 * float(sun[2])) * light)
    if wet:    # wet road: darker, with a specular sheen towards the light
        gfac = gfac * 0.62
    if shadow is not None:
        hh, ww = shadow.shape
        c2 = np.floor((gx - layout.origin[0]) / L.RASTER_RES).astype(np.int64)
        r2 = np.floor((gy - layout.origin[1]) / L.RASTER_RES).astype(np.int64)
        ok = np.flatnonzero((c2 >= 0) & (c2 < ww) & (r2 >= 0) & (r2 < hh))
        ok = ok[shadow[r2[ok], c2[ok]] > 0]
        gfac[ok] = gfac[ok] * 0.58
    rgb = palette[gcls] * gfac[:, None]
    if wet and len(t):
        d = dirs / nflat[:, None]
        refl = d[:, 0] * sun[0] + d[:, 1] * sun[1] - d[:, 2] * sun[2]
        rgb += (150.0 * light * np.clip(refl, 0.0, 1.0) ** 24)[:, None]
    return rgb, GROUND_SEM[gcls]


def render_camera(layout, boxes, scene, K, cam_rot, cam_trans, w, h, sun, shadow=None, env=None):
    """Render one camera. ``scene``: the :class:`InstantScene` of ``boxes``;
    ``cam_rot``/``cam_trans``: camera -> global; ``env``: optional :class:`.weather.Environment`
    (sky colours, light level, wet road, haze; ``sun`` is the light direction).

    ``shadow``: optional (H, W) ground shadow raster aligned with ``layout.raster``.
    Returns dict(rgb (h, w, 3) uint8, ids (h, w) int32 box index or -1, sem (h, w) uint8 ADE labels,
    counts (M,) pixels covered by each agent box's mesh ignoring occlusion (0 for scenery)).

    Pixels are handled as flat indices (n = h * w); the mesh hits (``mpx``) and the ground hits
    (``gpx``) are shaded as compact arrays and scattered into the sky image once.
    """
    R = np.asarray(cam_rot, np.float64)
    o = np.asarray(cam_trans, np.float64)
    dc, norm = camera_rays(K, w, h)
    dirs = np.einsum('ij,jn->ni', R.astype(np.float32), dc.reshape(3, -1), optimize=True)
    dirs = np.ascontiguousarray(dirs, np.float32)                     # (n, 3)
    dz = dirs[:, 2]
    nflat = norm.reshape(-1)
    with np.errstate(divide='ignore'):
        tg = np.where(dz < -1e-6, np.float32(-o[2]) / dz, np.float32(np.inf)).astype(np.float32)
    tg[tg * nflat > 500.0] = np.inf                                   # (n,) ground hit (inf = none)
    any_cover, n_cover = _cover(boxes, K, R, o, w, h)
    sub = np.flatnonzero(any_cover)
    hit, t, bid, part, nrm, tri = scene.cast_hits(o, dirs[sub])
    keep = np.flatnonzero(t < tg[sub[hit]])     # the mesh is nearer than the ground
    mpx = sub[hit[keep]]                        # (Nm,) pixels showing a mesh, ascending
    t, bid, part, nrm, tri = t[keep], bid[keep], part[keep], nrm[keep], tri[keep]
    n = h * w
    ids = np.full(n, -1, np.int32)
    ids[mpx] = bid
    on_mesh = np.zeros(n, bool)
    on_mesh[mpx] = True
    # coverage of the agent boxes ignoring occlusion (for visibility). A ray can only hit an
    # occluded agent if its first hit is a mesh inside that agent's projected rectangle; rays whose
    # first hit is an agent covered by a single rectangle (its own) count directly.
    nc = n_cover[mpx]
    direct = (boxes.inst[bid] > 0) & (nc == 1)
    counts = np.bincount(bid[direct], minlength=len(boxes)).astype(np.int64)
    ray_index = mpx[(nc > 0) & ~direct]
    if len(ray_index):
        counts += scene.coverage(o, dirs[ray_index], ray_index, len(boxes))
    # ------------------------------------------------------------- shading
    light = 1.0 if env is None else float(env.light)
    wet = env is not None and env.wet
    sky_low = _SKY_LOW if env is None else np.asarray(env.sky_low, np.float32)
    haze_m = 700.0 if env is None else float(env.haze_m)
    sky = _sky(dz, nflat, R, K, w, h) if env is None else _sky(dz, nflat, R, K, w, h, sky_low, env.sky_high)
    rgb = sky.copy()                                                  # (n, 3) uint8
    sem = np.full(n, SKY_SEM, np.uint8)
    gpx = np.flatnonzero(np.isfinite(tg) & ~on_mesh)                  # (Ng,) pixels showing the ground
    tsel = tg[gpx]
    nsel = nflat[gpx]
    g_rgb, sem[gpx] = _ground_rgb(layout, o, dirs[gpx], nsel, tsel, sun, light, wet, shadow)
    rgb[gpx] = _haze(g_rgb, tsel * nsel, haze_m, sky_low)
    if len(mpx):
        lam = np.clip(nrm @ np.asarray(sun, np.float32), 0.0, 1.0)
        base = _patterns(boxes, scene, bid, tri, o, t, dirs[mpx], nrm)
        shade = (0.42 + 0.58 * lam) * light
        if light < 0.99:      # lamps stay bright when the scene is dimmed
            lamp = (part == P_HEAD) | (part == P_TAIL)
            shade = np.where(lamp, np.maximum(shade, 1.0), shade)
        rgb[mpx] = _haze(base * shade[:, None], t * nflat[mpx], haze_m, sky_low)
        sem[mpx] = boxes.sem[bid]
    return dict(rgb=rgb.reshape(h, w, 3), ids=ids.reshape(h, w), sem=sem.reshape(h, w), counts=counts)


def _box_tables(boxes):
    """Per-box cos / sin of the yaw (M,) float64, float32 centres (M, 3) and half sizes (M, 3)."""
    if getattr(boxes, '_tables', None) is None:
        boxes._tables = (np.cos(boxes.yaws), np.sin(boxes.yaws), boxes.centers.astype(np.float32),
                         boxes.half.astype(np.float32))
    return boxes._tables


def _local(boxes, bid, p):
    """World points ``p`` (N, 3) float32 -> frames of boxes ``bid`` (N,): (N, 3) float32."""
    cos, sin, centers, _ = _box_tables(boxes)
    c, s = cos[bid], sin[bid]
    d = p - centers[bid]
    out = np.empty(d.shape, np.float32)
    out[:, 0] = c * d[:, 0] + s * d[:, 1]
    out[:, 1] = -s * d[:, 0] + c * d[:, 1]
    out[:, 2] = d[:, 2]
    return out


def _tri_tables(boxes, scene):
    """Per-triangle colour (part colour, or the box colour for bodies) and pattern flag."""
    if scene.tri_tables is None:
        part, tb = scene.tri_part, scene.tri_box
        body = part == P_BODY
        col = PART_COLORS[part]
        col[body] = boxes.colors[tb[body]]
        mat = boxes.material[tb]
        flag = body & ((mat == M_BUILDING) | (mat == M_CROWN) | (mat == M_BARRIER))
        scene.tri_tables = (col, flag)
    return scene.tri_tables


def _patterns(boxes, scene, bid, tri, o, t, dirs, nrm):
    """Colour (N, 3) float32 of each hit from its triangle ``tri`` (N,) (part colour or box colour),
    with per-class details (building windows, barrier stripes, foliage) from the hit point
    (``o`` + ``t`` (N,) * ``dirs`` (N, 3)) and the normal ``nrm`` (N, 3) in the frame of box ``bid`` (N,)."""
    col, flag = _tri_tables(boxes, scene)
    base = col[tri]
    sel = np.flatnonzero(flag[tri])
    if not len(sel):
        return base
    b = bid[sel]
    m = boxes.material[b]
    lp = _local(boxes, b, o.astype(np.float32) + t[sel, None] * dirs[sel])
    half = _box_tables(boxes)[3]
    # barriers: stripes along the box's y axis
    i = np.flatnonzero(m == M_BARRIER)
    ny = lp[i, 1] / half[b[i], 1]
    base[sel[i[(np.floor((ny + 1.0) * 4.0).astype(np.int64) % 2) == 1]]] = 240.0
    # buildings: window grid on the walls
    i = np.flatnonzero(m == M_BUILDING)
    i = i[np.abs(nrm[sel[i], 2]) < 0.5]
    if len(i):
        bi, li, v = b[i], lp[i], nrm[sel[i]]
        cos, sin = _box_tables(boxes)[:2]
        c, s = cos[bi], sin[bi]
        xface = np.abs(c * v[:, 0] + s * v[:, 1]) > np.abs(-s * v[:, 0] + c * v[:, 1])
        hb = half[bi]
        u = np.mod(np.where(xface, li[:, 1], li[:, 0]), 3.2)
        zb = li[:, 2] + hb[:, 2]
        zm = np.mod(zb, 3.4)
        nx = np.where(xface, li[:, 1] / hb[:, 1], li[:, 0] / hb[:, 0])
        win = (u > 0.9) & (u < 2.3) & (zm > 1.1) & (zm < 2.5) & (zb > 1.0) & (np.abs(nx) < 0.97)
        base[sel[i[win]]] = np.array([70, 88, 110], np.float32)
    # tree crowns: foliage pattern
    i = np.flatnonzero(m == M_CROWN)
    if len(i):
        base[sel[i]] *= (0.8 + 0.4 * (np.sin(lp[i, 0] * 5.1) * np.sin(lp[i, 2] * 4.3) > 0))[:, None]
    return base


# ------------------------------------------------------------------ LiDAR
_LIDAR_DIRS = None


def lidar_dirs():
    """Unit ray directions (3, 32, n_azimuth) in the LiDAR frame and the azimuth of each column."""
    global _LIDAR_DIRS
    if _LIDAR_DIRS is None:
        az = np.arange(LIDAR_AZIMUTH_STEPS) * (2 * np.pi / LIDAR_AZIMUTH_STEPS) - np.pi
        el = LIDAR_ELEVATIONS
        ce = np.cos(el)[:, None]
        d = np.stack([ce * np.cos(az)[None], ce * np.sin(az)[None], np.sin(el)[:, None] * np.ones_like(az)[None]])
        _LIDAR_DIRS = (d.astype(np.float32), az)
    return _LIDAR_DIRS


def render_lidar(layout, boxes, scene, lidar_rot, lidar_trans, rng, noise=0.012, dropout=0.01, wet=False):
    """One HDL-32E-like sweep of ``scene`` (the :class:`InstantScene` of ``boxes``). Returns points
    (N, 5) float32 in the LiDAR frame (x, y, z, intensity, ring) and the box index hit by each
    point (-1 = ground). ``wet``: a wet road returns less light (lower ground intensity)."""
    dl, az = lidar_dirs()
    R = np.asarray(lidar_rot, np.float64)
    o = np.asarray(lidar_trans, np.float64)
    nr, nc = dl.shape[1:]
    dirs = np.ascontiguousarray(np.einsum('ij,jn->ni', R.astype(np.float32), dl.reshape(3, -1), optimize=True),
                                np.float32)
    dz = dirs[:, 2]
    with np.errstate(divide='ignore'):
        tg = np.where(dz < -1e-6, np.float32(-o[2]) / dz, np.float32(np.inf)).astype(np.float32)
    t, bid_all, part_all, nrm, _ = scene.cast(o, dirs)
    on_mesh = (t < tg) & (t > 1e-3)
    depth = np.where(on_mesh, t, tg).reshape(nr, nc)
    ids = np.where(on_mesh, bid_all, -1).reshape(nr, nc)
    valid = (depth < LIDAR_RANGE) & (depth > 1.0)      # rays are unit length: t is the range
    valid &= rng.random(valid.shape) > dropout
    rr, cc = np.nonzero(valid)
    flat = rr * nc + cc
    r = depth[rr, cc] + rng.normal(0.0, noise, len(rr)).astype(np.float32)
    pts = dl[:, rr, cc].T * r[:, None]
    bid = ids[rr, cc]
    # intensity: reflectivity (class material for bodies, part otherwise) x incidence
    refl = np.zeros(len(rr), np.float32)
    bsel = bid >= 0
    part = part_all[flat[bsel]]
    refl[bsel] = np.where(part == P_BODY, _REFLECT[boxes.material[bid[bsel]]], PART_REFLECT[part])
    gsel = ~bsel
    if gsel.any():
        _, _, gcls = _ground(layout, o, dirs[flat[gsel]], r[gsel])
        refl[gsel] = _GROUND_REFLECT[gcls] * (0.55 if wet else 1.0)
    cosi = np.abs(dz[flat])
    cosi[bsel] = np.abs(np.einsum('ij,ij->i', nrm[flat[bsel]], dirs[flat[bsel]]))
    inten = np.clip(refl * (0.5 + 0.5 * cosi) + rng.normal(0, 2.0, len(rr)), 0, 255)
    out = np.empty((len(rr), 5), np.float32)
    out[:, :3] = pts
    out[:, 3] = inten
    out[:, 4] = rr
    return out, bid
