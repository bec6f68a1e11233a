"""Placement helpers for agents: kerb-strip allocation, interval arithmetic and the
overlap filter that keeps every agent's footprint disjoint from the others' at all times."""
import math

import numpy as np

from .geometry import obb_overlap


class StripAllocator:
    """Places objects along a band (parking strip / kerb) of one road side, as close as
    possible to a desired arclength, inside the free intervals and without overlaps."""

    def __init__(self, intervals):
        self.intervals = list(intervals)
        self.used = []
        self.last_end = None

    def take(self, s_want, length, gap, search=60.0):
        for m in range(int(search / 0.5) + 1):
            for c in ((s_want + m * 0.5, s_want - m * 0.5) if m else (s_want,)):
                a, b = c - length / 2, c + length / 2
                if not any(ia <= a - gap and b + gap <= ib for ia, ib in self.intervals):
                    continue
                if any(a - gap < ub and b + gap > ua for ua, ub in self.used):
                    continue
                self.used.append((a, b))
                self.last_end = b
                return c
        return None


def blocked_intervals(layout, road, margin):
    """Road arclength intervals to keep free of parked objects (intersections, crossings)."""
    out = [(a - margin, b + margin) for a, b in road.cuts]
    out += [(c.s - c.width / 2 - margin, c.s + c.width / 2 + margin) for c in layout.crossings if c.road is road]
    out += [(s - 8.0, s + margin) for r, s, _ in layout.stop_lines if r is road]
    return out


def minus_intervals(intervals, blocked):
    out = list(intervals)
    for ba, bb in blocked:
        nxt = []
        for a, b in out:
            if bb <= a or ba >= b:
                nxt.append((a, b))
            else:
                if ba > a:
                    nxt.append((a, ba))
                if bb < b:
                    nxt.append((bb, b))
        out = nxt
    return [(a, b) for a, b in out if b - a > 1.0]


def remove_overlaps(agents, times, margin=0.15):
    """Greedy: drop any agent whose footprint overlaps an earlier agent's at a sampled time."""
    n, nt = len(agents), len(times)
    fps = np.full((n, nt, 4, 2), np.nan)
    sx = np.array([1, -1, -1, 1], np.float64)
    sy = np.array([1, 1, -1, -1], np.float64)
    for i, a in enumerate(agents):
        x, y, yaw, _, ex = a.state(times)
        w, l, _ = a.size
        shift = 1.4 if a.is_ego else 0.0  # ego pose is the rear axle
        c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        cx, cy = (x + shift * c[:, 0])[:, None], (y + shift * s[:, 0])[:, None]
        px = cx + c * sx * l / 2 - s * sy * w / 2
        py = cy + s * sx * l / 2 + c * sy * w / 2
        f = np.stack([px, py], -1)
        f[~ex] = np.nan
        fps[i] = f
    centers = fps.mean(axis=2)
    radius = np.array([math.hypot(a.size[0], a.size[1]) / 2 for a in agents])
    keep = []
    for i in range(n):
        ok = True
        if keep:
            kk = np.array(keep)
            d = np.hypot(centers[kk, :, 0] - centers[i, None, :, 0], centers[kk, :, 1] - centers[i, None, :, 1])
            with np.errstate(invalid='ignore'):
                close = d < (radius[kk] + radius[i] + margin)[:, None]
            for ki, j in zip(*np.nonzero(close)):
                if obb_overlap(fps[i, j], fps[kk[ki], j], margin):
                    ok = False
                    break
        if ok:
            keep.append(i)
    return [agents[i] for i in keep]
