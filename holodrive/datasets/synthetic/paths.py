"""Planar paths made of straight and circular-arc primitives.

A :class:`Path` starts at a pose ``(x, y, yaw)`` and is a list of primitives
``(length, curvature)`` (curvature 0 = straight, > 0 = turning left). Positions are
closed form, lateral offsets and reversal are exact, and each primitive maps onto
one nuScenes map-expansion ``arcline_path_3`` record.
"""
import math

import numpy as np

_EPS = 1e-9


class Path:

    def __init__(self, start, prims):
        self.start = tuple(float(v) for v in start)
        self.prims = [(float(length), float(k)) for length, k in prims if length > 1e-6]
        starts, x, y, yaw = [], *self.start
        for length, k in self.prims:
            starts.append((x, y, yaw))
            x, y, yaw = _advance(x, y, yaw, k, length)
        self.end = (x, y, yaw)
        self._starts = np.array(starts, dtype=np.float64).reshape(-1, 3)
        self._lengths = np.array([p[0] for p in self.prims], dtype=np.float64)
        self._curv = np.array([p[1] for p in self.prims], dtype=np.float64)
        self._cum = np.concatenate([[0.0], np.cumsum(self._lengths)])
        self.length = float(self._cum[-1])

    # ------------------------------------------------------------------ queries
    def pose_at(self, s):
        """Pose(s) at arclength ``s`` (clamped to the path): arrays x, y, yaw."""
        s = np.clip(np.asarray(s, dtype=np.float64), 0.0, self.length)
        i = np.clip(np.searchsorted(self._cum, s, side='right') - 1, 0, len(self.prims) - 1)
        u = s - self._cum[i]
        x0, y0, t0 = self._starts[i, 0], self._starts[i, 1], self._starts[i, 2]
        k = self._curv[i]
        straight = np.abs(k) < _EPS
        ks = np.where(straight, 1.0, k)
        t = t0 + k * u
        x = np.where(straight, x0 + u * np.cos(t0), x0 + (np.sin(t) - np.sin(t0)) / ks)
        y = np.where(straight, y0 + u * np.sin(t0), y0 - (np.cos(t) - np.cos(t0)) / ks)
        return x, y, t

    def point_at(self, s, lateral=0.0):
        """(x, y) at arclength ``s`` shifted ``lateral`` metres to the left."""
        x, y, t = self.pose_at(s)
        return x - np.sin(t) * lateral, y + np.cos(t) * lateral

    def sample(self, sa=0.0, sb=None, step=1.0, lateral=0.0):
        """(N, 2) points from ``sa`` to ``sb`` at most ``step`` apart (both ends included)."""
        sb = self.length if sb is None else sb
        n = max(int(math.ceil(abs(sb - sa) / step)), 1) + 1
        x, y = self.point_at(np.linspace(sa, sb, n), lateral)
        return np.stack([x, y], axis=1)

    def strip(self, d0, d1, sa=0.0, sb=None, step=1.0):
        """Polygon (N, 2) of the band between lateral offsets ``d0 < d1`` over ``[sa, sb]``."""
        a = self.sample(sa, sb, step, d0)
        b = self.sample(sa, sb, step, d1)
        return np.concatenate([a, b[::-1]], axis=0)

    def project(self, xy, step=0.5):
        """Arclength and signed lateral offset of points (N, 2) (nearest dense sample)."""
        pts = self.sample(0.0, self.length, step)
        ss = np.linspace(0.0, self.length, len(pts))
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        d2 = ((xy[:, None, :] - pts[None]) ** 2).sum(-1)
        j = d2.argmin(1)
        _, _, t = self.pose_at(ss[j])
        rel = xy - pts[j]
        lat = -np.sin(t) * rel[:, 0] + np.cos(t) * rel[:, 1]
        lon = np.cos(t) * rel[:, 0] + np.sin(t) * rel[:, 1]
        return ss[j] + lon, lat

    # ---------------------------------------------------------- constructions
    def offset(self, d):
        """The parallel path ``d`` metres to the left (exact for arcs)."""
        x, y, t = self.start
        prims = []
        for length, k in self.prims:
            f = 1.0 - k * d
            if f <= 0.05:
                raise ValueError('offset larger than the curve radius')
            prims.append((length * f, k / f))
        return Path((x - math.sin(t) * d, y + math.cos(t) * d, t), prims)

    def reversed(self):
        x, y, t = self.end
        return Path((x, y, t + math.pi), [(length, -k) for length, k in self.prims[::-1]])

    def sub(self, sa, sb):
        """The part of the path between arclengths ``sa < sb``."""
        x, y, t = (float(v) for v in self.pose_at(sa))
        prims = []
        for (length, k), c0 in zip(self.prims, self._cum[:-1]):
            a, b = max(sa, c0), min(sb, c0 + length)
            if b > a + 1e-6:
                prims.append((b - a, k))
        return Path((x, y, t), prims)

    def arclines(self, sa=0.0, sb=None):
        """nuScenes ``arcline_path_3`` records of ``[sa, sb]``."""
        sub = self.sub(sa, self.length if sb is None else sb)
        out, (x, y, t) = [], sub.start
        for length, k in sub.prims:
            x1, y1, t1 = _advance(x, y, t, k, length)
            if abs(k) < _EPS:
                shape, radius, seg = 'LSL', 999.0, [0.0, length, 0.0]
            else:
                shape, radius, seg = ('LSL' if k > 0 else 'RSR'), 1.0 / abs(k), [length, 0.0, 0.0]
            out.append({'start_pose': [x, y, _wrap(t)], 'end_pose': [x1, y1, _wrap(t1)],
                        'shape': shape, 'radius': radius, 'segment_length': seg})
            x, y, t = x1, y1, t1
        return out


def _wrap(a):
    return (a + math.pi) % (2 * math.pi) - math.pi


def _advance(x, y, yaw, k, length):
    if abs(k) < _EPS:
        return x + length * math.cos(yaw), y + length * math.sin(yaw), yaw
    t = yaw + k * length
    return x + (math.sin(t) - math.sin(yaw)) / k, y - (math.cos(t) - math.cos(yaw)) / k, t
