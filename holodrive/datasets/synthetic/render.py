"""Vectorised ray casting of the scene (ground raster + oriented boxes) for cameras and LiDAR.

Both sensors are regular ray grids sharing one origin; every box is only tested against the
rays of the grid rectangle that can see it (clipped projection for cameras, azimuth interval
for the spinning LiDAR). Depth-correct occlusion comes from a per-ray nearest-hit buffer.
"""
import math

import numpy as np
from PIL import ImageDraw

from . import layout as L
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

    def corners(self, i):
        c, s = math.cos(self.yaws[i]), math.sin(self.yaws[i])
        hx, hy, hz = self.half[i]
        sx = np.array([1, 1, 1, 1, -1, -1, -1, -1]) * hx
        sy = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * hy
        sz = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * hz
        return np.stack([c * sx - s * sy, s * sx + c * sy, sz], 1) + self.centers[i]


_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]


def _hit_boxes(origin, dirs, boxes, idx, rects, depth, ids, face, local, counts=None):
    """Slab test of boxes ``idx`` against the rays ``dirs`` (3, H, W) inside each box's
    rectangle ``(r0, r1, c0, c1)`` (``c0`` may be an array of column indices); updates the
    nearest-hit buffers ``depth``/``ids``/``face`` and ``local`` (3, H, W) hit points."""
    for i, (r0, r1, c0, c1) in zip(idx, rects):
        cols = isinstance(c0, np.ndarray)
        if r1 <= r0 or (not cols and c1 <= c0):
            continue
        if cols:
            dx, dy, dz = (dirs[k, r0:r1][:, c0] for k in range(3))
            sub_depth = depth[r0:r1][:, c0]
        else:
            dx, dy, dz = (dirs[k, r0:r1, c0:c1] for k in range(3))
            sub_depth = depth[r0:r1, c0:c1]
        c, s = math.cos(boxes.yaws[i]), math.sin(boxes.yaws[i])
        o = origin - boxes.centers[i]
        ol = (c * o[0] + s * o[1], -s * o[0] + c * o[1], o[2])
        dl = (c * dx + s * dy, -s * dx + c * dy, dz)
        h = boxes.half[i]
        tn = tf = None
        tmins = []
        for k in range(3):
            d = dl[k]
            inv = 1.0 / np.where(np.abs(d) < 1e-9, np.float32(1e-9), d)
            ta = (-h[k] - ol[k]) * inv
            tb = (h[k] - ol[k]) * inv
            lo = np.minimum(ta, tb)
            hi = np.maximum(ta, tb)
            tmins.append(lo)
            tn = lo if tn is None else np.maximum(tn, lo)
            tf = hi if tf is None else np.minimum(tf, hi)
        hit = (tn <= tf) & (tn > 1e-3)
        if counts is not None:
            counts[i] += int(np.count_nonzero(hit))
        upd = hit & (tn < sub_depth)
        if not upd.any():
            continue
        rr, cc = np.nonzero(upd)
        t_u = tn[rr, cc]
        axis = np.where(tmins[0][rr, cc] == t_u, 0, np.where(tmins[1][rr, cc] == t_u, 1, 2))
        dsel = np.stack([dl[0][rr, cc], dl[1][rr, cc], dl[2][rr, cc]])
        sign = np.take_along_axis(dsel, axis[None], 0)[0] < 0     # face normal points against the ray
        rr = rr + r0
        cc = c0[cc] if cols else cc + c0
        depth[rr, cc] = t_u
        ids[rr, cc] = i
        face[rr, cc] = (axis * 2 + sign).astype(np.int8)
        for k in range(3):
            local[k, rr, cc] = ol[k] + t_u * dsel[k]


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
    for (cx, cy, cz), (bw, bl, bh), yaw in zip(centers, sizes, yaws):
        c, s = math.cos(yaw), math.sin(yaw)
        lx = np.array([1, -1, -1, 1]) * bl / 2
        ly = np.array([1, 1, -1, -1]) * bw / 2
        fx, fy = cx + c * lx - s * ly, cy + s * lx + c * ly
        top = cz + bh / 2
        pts = np.concatenate([np.stack([fx, fy], 1), np.stack([fx + k[0] * top, fy + k[1] * top], 1)])
        draw.polygon([((x - x0) / L.RASTER_RES, (y - y0) / L.RASTER_RES) for x, y in _hull(pts)], fill=255)
    return img


def render_camera(layout, boxes, K, cam_rot, cam_trans, w, h, sun, shadow=None):
    """Render one camera. ``cam_rot``/``cam_trans``: camera -> global.

    ``shadow``: optional (H, W) ground shadow raster aligned with ``layout.raster``.
    Returns dict(rgb (h, w, 3) uint8, ids (h, w) int32 box index or -1, sem (h, w) uint8 ADE labels,
    counts (M,) pixels covered by each box ignoring occlusion).
    """
    R = np.asarray(cam_rot, np.float64)
    o = np.asarray(cam_trans, np.float64)
    dc, norm = camera_rays(K, w, h)
    Rf = R.astype(np.float32)
    dirs = np.einsum('ij,jhw->ihw', Rf, dc, optimize=True)
    depth = np.full((h, w), np.inf, np.float32)
    ids = np.full((h, w), -1, np.int32)
    face = np.zeros((h, w), np.int8)
    local = np.zeros((3, h, w), np.float32)
    # ground plane z = 0 (t is the camera-frame depth because dc has z = 1)
    dz = dirs[2]
    with np.errstate(divide='ignore'):
        tg = np.where(dz < -1e-6, np.float32(-o[2]) / dz, np.float32(np.inf))
    tg[tg * norm > 500.0] = np.inf
    gmask = np.isfinite(tg)
    depth[gmask] = tg[gmask]
    # boxes
    counts = np.zeros(len(boxes), np.int64)
    idx, rects = [], []
    for i in range(len(boxes)):
        rel = boxes.centers[i] - o
        zc = rel @ R[:, 2]
        rad = float(np.linalg.norm(boxes.half[i]))
        if zc < -rad or np.hypot(rel[0], rel[1]) > 300.0:
            continue
        rect = _cam_rect((boxes.corners(i) - o) @ R, K, w, h)
        if rect is not None:
            idx.append(i)
            rects.append(rect)
    _hit_boxes(o.astype(np.float32), dirs, boxes, idx, rects, depth, ids, face, local, counts)
    # ------------------------------------------------------------- shading
    sem = np.full((h, w), SKY_SEM, np.uint8)
    f = np.clip(dz / norm * 4.0, 0.0, 1.0)[..., None]
    rgb = (1 - f) * _SKY_LOW + f * _SKY_HIGH
    gsel = gmask & (ids < 0)
    tsel = tg[gsel]
    gx = o[0] + tsel * dirs[0][gsel]
    gy = o[1] + tsel * dirs[1][gsel]
    gcls = layout.ground_class(gx, gy)
    col = np.floor(gx / L.RASTER_RES).astype(np.int64)
    row = np.floor(gy / L.RASTER_RES).astype(np.int64)
    noise = (((col * 73856093) ^ (row * 19349663)) & 255).astype(np.float32) / 255.0
    palette = _GROUND_COLORS if layout.rht else _GROUND_COLORS_WHITE_DIVIDER
    gshade = 0.55 + 0.45 * float(sun[2])
    gfac = (0.9 + 0.2 * noise) * gshade
    if shadow is not None:
        hh, ww = shadow.shape
        c2 = np.floor((gx - layout.origin[0]) / L.RASTER_RES).astype(np.int64)
        r2 = np.floor((gy - layout.origin[1]) / L.RASTER_RES).astype(np.int64)
        ok = (c2 >= 0) & (c2 < ww) & (r2 >= 0) & (r2 < hh)
        dark = np.zeros(len(gx), bool)
        dark[ok] = shadow[r2[ok], c2[ok]] > 0
        gfac = np.where(dark, gfac * 0.58, gfac)
    rgb[gsel] = palette[gcls] * gfac[:, None]
    sem[gsel] = GROUND_SEM[gcls]
    bsel = ids >= 0
    if bsel.any():
        bid = ids[bsel]
        fc = face[bsel]
        lp = local[:, bsel].T
        axis = fc // 2
        sgn = np.where(fc % 2 == 1, 1.0, -1.0).astype(np.float32)
        yaw = boxes.yaws[bid].astype(np.float32)
        nlx = np.where(axis == 0, sgn, 0.0)
        nly = np.where(axis == 1, sgn, 0.0)
        nlz = np.where(axis == 2, sgn, 0.0)
        cy, sy = np.cos(yaw), np.sin(yaw)
        lam = np.clip((cy * nlx - sy * nly) * sun[0] + (sy * nlx + cy * nly) * sun[1] + nlz * sun[2], 0.0, 1.0)
        base = _patterns(boxes, bid, axis, lp)
        rgb[bsel] = base * (0.42 + 0.58 * lam)[:, None]
        sem[bsel] = boxes.sem[bid]
    # distance haze
    hit = np.isfinite(depth)
    dist = depth[hit] * norm[hit]
    haze = (1.0 - np.exp(-dist / 700.0))[:, None]
    rgb[hit] = rgb[hit] * (1 - haze) + haze * _SKY_LOW
    return dict(rgb=np.clip(rgb, 0, 255).astype(np.uint8), ids=ids, sem=sem, counts=counts)


def _patterns(boxes, bid, axis, lp):
    """Per-class surface details from the local hit point ``lp`` (metres, box frame)."""
    base = boxes.colors[bid].copy()
    mat = boxes.material[bid]
    half = boxes.half[bid].astype(np.float32)
    n = lp / half                      # normalised coordinates in [-1, 1]
    side = axis < 2
    glass = np.array([45, 55, 68], np.float32)
    # vehicles: windows on the upper part, dark wheels at the bottom
    car = (mat == M_CAR) & side & (n[:, 2] > 0.2) & (np.abs(n[:, 0]) < 0.8)
    bus = (mat == M_BUS) & side & (n[:, 2] > -0.05) & (n[:, 2] < 0.6) & (np.abs(n[:, 0]) < 0.93)
    truck = (mat == M_TRUCK) & side & (n[:, 2] > 0.25) & (n[:, 0] > 0.6)
    # front / rear screens on the end faces, tail lights at the back
    end = axis == 0
    screen = end & (n[:, 2] > 0.25) & (np.abs(n[:, 1]) < 0.8) & ((mat == M_CAR) | (mat == M_BUS) |
                                                                 ((mat == M_TRUCK) & (n[:, 0] > 0)))
    base[car | bus | truck | screen] = glass
    tail = end & (n[:, 0] < 0) & (n[:, 2] > -0.35) & (n[:, 2] < -0.05) & (np.abs(n[:, 1]) > 0.6) & \
        ((mat == M_CAR) | (mat == M_BUS) | (mat == M_TRUCK))
    base[tail] = np.array([200, 20, 20], np.float32)
    veh = (mat == M_CAR) | (mat == M_TRUCK) | (mat == M_BUS) | (mat == M_CYCLE)
    wheel = veh & (axis == 1) & (n[:, 2] < -0.55) & (np.abs(np.abs(n[:, 0]) - 0.62) < 0.16)
    base[wheel] = 25.0
    # pedestrians: head, trousers
    ped = mat == M_PED
    base[ped & (n[:, 2] > 0.72)] = np.array([214, 176, 146], np.float32)
    base[ped & (n[:, 2] < -0.05)] = np.array([45, 45, 62], np.float32)
    # cones: white band, black foot; barriers: red/white stripes
    base[(mat == M_CONE) & (n[:, 2] > 0.05) & (n[:, 2] < 0.35)] = 240.0
    base[(mat == M_CONE) & (n[:, 2] < -0.85)] = 30.0
    stripe = (np.floor((n[:, 1] + 1.0) * 4.0).astype(np.int64) % 2) == 1
    base[(mat == M_BARRIER) & stripe & (n[:, 2] > -0.6)] = 240.0
    # buildings: window grid
    bw = (mat == M_BUILDING) & side
    u = np.where(axis == 0, lp[:, 1], lp[:, 0])
    win = bw & (np.mod(u, 3.2) > 0.9) & (np.mod(u, 3.2) < 2.3) & \
        (np.mod(lp[:, 2] + half[:, 2], 3.4) > 1.1) & (np.mod(lp[:, 2] + half[:, 2], 3.4) < 2.5) & \
        (lp[:, 2] + half[:, 2] > 1.0) & (np.abs(np.where(axis == 0, n[:, 1], n[:, 0])) < 0.97)
    base[win] = np.array([70, 88, 110], np.float32)
    crown = mat == M_CROWN
    base[crown] *= (0.8 + 0.4 * (np.sin(lp[crown, 0] * 5.1) * np.sin(lp[crown, 2] * 4.3) > 0))[:, None]
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


def render_lidar(layout, boxes, lidar_rot, lidar_trans, rng, noise=0.012, dropout=0.01):
    """One HDL-32E-like sweep. Returns points (N, 5) float32 in the LiDAR frame
    (x, y, z, intensity, ring) and the box index hit by each point (-1 = ground)."""
    dl, az = lidar_dirs()
    R = np.asarray(lidar_rot, np.float64)
    o = np.asarray(lidar_trans, np.float64)
    dirs = np.einsum('ij,jhw->ihw', R.astype(np.float32), dl, optimize=True)
    nr, nc = dl.shape[1:]
    depth = np.full((nr, nc), np.inf, np.float32)
    ids = np.full((nr, nc), -1, np.int32)
    face = np.zeros((nr, nc), np.int8)
    local = np.zeros((3, nr, nc), np.float32)
    dz = dirs[2]
    with np.errstate(divide='ignore'):
        depth[:] = np.where(dz < -1e-6, np.float32(-o[2]) / dz, np.float32(np.inf))
    idx, rects = [], []
    step = 2 * np.pi / nc
    el = LIDAR_ELEVATIONS
    el_margin = (el[1] - el[0]) + 0.01
    for i in range(len(boxes)):
        rel = boxes.centers[i] - o
        hx, hy, hz = boxes.half[i]
        c, s = math.cos(boxes.yaws[i]), math.sin(boxes.yaws[i])
        lx, ly = -(c * rel[0] + s * rel[1]), -(-s * rel[0] + c * rel[1])   # sensor in the box frame
        d_min = math.hypot(max(abs(lx) - hx, 0.0), max(abs(ly) - hy, 0.0))
        if d_min > LIDAR_RANGE:
            continue
        cl = (boxes.corners(i) - o) @ R          # corners in the LiDAR frame
        d_max = float(np.hypot(cl[:, 0], cl[:, 1]).max())
        # conservative elevation interval (the sensor is nearly level)
        zlo, zhi = rel[2] - hz, rel[2] + hz
        e_hi = math.atan2(zhi, d_min if zhi > 0 else d_max)
        e_lo = math.atan2(zlo, d_min if zlo < 0 else d_max)
        r0 = int(np.searchsorted(el, e_lo - el_margin))
        r1 = int(np.searchsorted(el, e_hi + el_margin))
        if r1 <= r0:
            continue
        a = np.arctan2(cl[:, 1], cl[:, 0])
        a0 = math.atan2(rel @ R[:, 1], rel @ R[:, 0])
        relang = (a - a0 + np.pi) % (2 * np.pi) - np.pi
        if d_min <= 0.0 or relang.max() - relang.min() > np.pi:
            spans = [(0, nc)]
        else:
            c0 = int(math.floor((a0 + relang.min() + np.pi) / step)) - 1
            c1 = int(math.ceil((a0 + relang.max() + np.pi) / step)) + 2
            if c0 < 0:
                spans = [(c0 + nc, nc), (0, c1)]
            elif c1 > nc:
                spans = [(c0, nc), (0, c1 - nc)]
            else:
                spans = [(c0, c1)]
        for c0, c1 in spans:
            idx.append(i)
            rects.append((r0, r1, max(c0, 0), min(c1, nc)))
    _hit_boxes(o.astype(np.float32), dirs, boxes, idx, rects, depth, ids, face, local)
    valid = (depth < LIDAR_RANGE) & (depth > 1.0)      # rays are unit length: t is the range
    valid &= rng.random(valid.shape) > dropout
    rr, cc = np.nonzero(valid)
    r = depth[rr, cc] + rng.normal(0.0, noise, len(rr)).astype(np.float32)
    pts = dl[:, rr, cc].T * r[:, None]
    bid = ids[rr, cc]
    # intensity: reflectivity x incidence
    refl = np.zeros(len(rr), np.float32)
    bsel = bid >= 0
    refl[bsel] = _REFLECT[boxes.material[bid[bsel]]]
    gsel = ~bsel
    wz = dirs[2, rr, cc]
    if gsel.any():
        gx = o[0] + r[gsel] * dirs[0, rr[gsel], cc[gsel]]
        gy = o[1] + r[gsel] * dirs[1, rr[gsel], cc[gsel]]
        refl[gsel] = _GROUND_REFLECT[layout.ground_class(gx, gy)]
    cosi = np.where(gsel, np.abs(wz), 0.7)
    inten = np.clip(refl * (0.5 + 0.5 * cosi) + rng.normal(0, 2.0, len(rr)), 0, 255)
    out = np.empty((len(rr), 5), np.float32)
    out[:, :3] = pts
    out[:, 3] = inten
    out[:, 4] = rr
    return out, bid
