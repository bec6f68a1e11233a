"""Road layout of one scene: roads with lanes, parking strips, sidewalks, crossings,
intersections, buildings/walls/trees, and the ground-class raster used by the renderers.

All coordinates are in the global (= map) frame, in metres.
"""
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw
from shapely.geometry import Polygon
from shapely.ops import unary_union

from .paths import Path

# ground classes of the raster
G_TERRAIN, G_ROAD, G_SIDEWALK, G_MARK, G_DIVIDER, G_CROSSWALK = range(6)
RASTER_RES = 0.1  # metres per raster cell (same as the nuScenes semantic prior)


@dataclass
class Road:
    name: str
    path: Path
    lanes_left: int
    lanes_right: int
    lane_width: float
    park_left: float
    park_right: float
    sidewalk: float
    forward_side: int          # +1: traffic on the left of the path moves forward (left-hand traffic)
    cuts: list = field(default_factory=list)   # (sa, sb) intervals covered by intersections
    is_t_stub: bool = False

    def lanes(self, side):
        return self.lanes_left if side > 0 else self.lanes_right

    def park(self, side):
        return self.park_left if side > 0 else self.park_right

    def edge(self, side):
        """Distance from the centreline to the kerb on ``side`` (+1 left, -1 right)."""
        return self.lanes(side) * self.lane_width + self.park(side)

    def half_width(self):
        return max(self.edge(1), self.edge(-1))

    def lane_lateral(self, side, i):
        return side * (i + 0.5) * self.lane_width

    def free_intervals(self, margin=0.0):
        """Arclength intervals outside the intersections (shrunk by ``margin``)."""
        out, a = [], 0.0
        for ca, cb in sorted(self.cuts):
            if ca - margin > a:
                out.append((a, ca - margin))
            a = cb + margin
        if self.length - a > 0:
            out.append((a, self.length))
        return [(x, y) for x, y in out if y - x > 1.0]

    @property
    def length(self):
        return self.path.length


@dataclass
class Lane:
    road: Road
    side: int
    index: int                 # 0 = next to the road divider
    lateral: float             # offset from the road centreline
    path: Path                 # in the direction of travel
    forward: bool              # travel direction equals the road path direction

    def to_travel_s(self, s_road):
        """Road arclength -> arclength along this lane's path (approximate for curves)."""
        s_road = np.asarray(s_road, dtype=np.float64)
        frac = s_road / self.road.length
        return (frac if self.forward else 1.0 - frac) * self.path.length


@dataclass
class Crossing:
    road: Road                 # the road it crosses
    s: float                   # arclength on that road
    width: float
    at_intersection: bool
    path: Path = None          # across the road, from the right kerb to the left kerb (+ sidewalks)


@dataclass
class Layout:
    kind: str
    center: tuple
    size: float
    rht: bool
    roads: list
    lanes: list
    crossings: list
    intersections: list        # dicts: main, cross, s_main, s_cross, polygon
    scenery: list              # dicts: center, size(w,l,h), yaw, kind, color, sem
    drivable: object           # shapely geometry
    walkway: object
    raster: np.ndarray         # (H, W) uint8 ground classes
    origin: tuple              # raster origin (x0, y0)
    stop_lines: list           # (road, s, side) for stopped cross traffic

    def ground_class(self, x, y):
        col = np.floor((x - self.origin[0]) / RASTER_RES).astype(np.int64)
        row = np.floor((y - self.origin[1]) / RASTER_RES).astype(np.int64)
        h, w = self.raster.shape
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        out = np.zeros(np.shape(x), np.uint8)
        out[inside] = self.raster[row[inside], col[inside]]
        return out


def _lane_objects(road):
    lanes = []
    for side in (1, -1):
        fwd = side == road.forward_side
        for i in range(road.lanes(side)):
            lat = road.lane_lateral(side, i)
            p = road.path.offset(lat)
            lanes.append(Lane(road, side, i, lat, p if fwd else p.reversed(), fwd))
    return lanes


def _road_params(rng, forward_side, main):
    choices = [(2, 2), (2, 2), (2, 1), (1, 2), (3, 3), (3, 2)] if main else [(1, 1), (1, 1), (2, 2)]
    ll, lr = choices[rng.integers(len(choices))]
    return dict(lanes_left=int(ll), lanes_right=int(lr), lane_width=float(rng.uniform(3.3, 3.7)),
                park_left=float(2.4 if rng.random() < (0.6 if main else 0.3) else 0.0),
                park_right=float(2.4 if rng.random() < (0.7 if main else 0.3) else 0.0),
                sidewalk=float(rng.uniform(3.0, 4.5)), forward_side=forward_side)


def make_layout(rng, center, size, rht, kind=None):
    """Random layout of ``kind`` ('straight', 'curve', 'intersection', 't_junction')."""
    kinds = ['straight', 'curve', 'intersection', 't_junction']
    kind = kind or kinds[rng.choice(4, p=[0.2, 0.3, 0.3, 0.2])]
    cx, cy = center
    fs = -1 if rht else 1
    length = size - 16.0
    yaw0 = float(rng.uniform(-math.pi, math.pi))
    if kind == 'curve':
        radius = float(rng.uniform(45.0, 110.0))
        ang = float(rng.uniform(0.5, 1.4)) * (1 if rng.random() < 0.5 else -1)
        arc = abs(ang) * radius
        a = float(rng.uniform(0.25, 0.75)) * (length - arc)
        prims = [(a, 0.0), (arc, ang / arc), (length - arc - a, 0.0)]
    else:
        prims = [(length, 0.0)]
    p0 = Path((0.0, 0.0, yaw0), prims)
    mx, my, _ = p0.pose_at(p0.length / 2)
    mparams = _road_params(rng, fs, True)
    if mparams['park_left'] == 0 and mparams['park_right'] == 0:   # the main road always has a kerb strip
        mparams['park_left' if fs > 0 else 'park_right'] = 2.4
    main = Road('main', Path((cx - float(mx), cy - float(my), yaw0), prims), **mparams)
    roads, intersections, crossings = [main], [], []
    if kind in ('intersection', 't_junction'):
        s_m = main.length / 2 + float(rng.uniform(-25.0, 25.0))
        x, y, t = (float(v) for v in main.path.pose_at(s_m))
        cross_len = size - 16.0
        params = _road_params(rng, fs, False)
        cyaw = t + math.pi / 2
        if kind == 'intersection':
            start = (x - math.cos(cyaw) * cross_len / 2, y - math.sin(cyaw) * cross_len / 2, cyaw)
            cross = Road('cross', Path(start, [(cross_len, 0.0)]), **params)
            s_c = cross_len / 2
        else:
            side = 1 if rng.random() < 0.5 else -1
            cyaw = t + side * math.pi / 2
            cross = Road('cross', Path((x, y, cyaw), [(cross_len / 2, 0.0)]), is_t_stub=True, **params)
            s_c = 0.0
        hw_c, hw_m = cross.half_width(), main.half_width()
        main.cuts.append((s_m - hw_c, s_m + hw_c))
        cross.cuts.append((s_c - hw_m, s_c + hw_m))
        roads.append(cross)
        intersections.append(dict(main=main, cross=cross, s_main=s_m, s_cross=s_c,
                                  polygon=Polygon(main.path.strip(-main.edge(-1), main.edge(1),
                                                                  s_m - hw_c, s_m + hw_c, 0.5))))
        for road, s0, other in ((main, s_m, cross), (cross, s_c, main)):
            off = other.half_width() + 2.5
            for sgn in (-1, 1):
                s = s0 + sgn * off
                if 0 < s < road.length and not (road is main and cross.is_t_stub and False):
                    crossings.append(Crossing(road, s, 3.0, True))
    else:
        # mid-block zebra crossings along the main road
        for sgn in (-1, 1):
            s = main.length / 2 + sgn * float(rng.uniform(15, 35))
            crossings.append(Crossing(main, s, float(rng.uniform(3.0, 4.0)), False))
    for c in crossings:
        r = c.road
        x, y, t = (float(v) for v in r.path.pose_at(c.s))
        d0, d1 = r.edge(-1) + r.sidewalk * 0.5, r.edge(1) + r.sidewalk * 0.5
        nx, ny = -math.sin(t), math.cos(t)
        c.path = Path((x - nx * d0, y - ny * d0, t + math.pi / 2), [(d0 + d1, 0.0)])
    lanes = [ln for r in roads for ln in _lane_objects(r)]
    drivable = unary_union([Polygon(r.path.strip(-r.edge(-1), r.edge(1), 0, None, 1.0)) for r in roads])
    side_strips = []
    for r in roads:
        side_strips.append(Polygon(r.path.strip(r.edge(1), r.edge(1) + r.sidewalk, 0, None, 1.0)))
        side_strips.append(Polygon(r.path.strip(-r.edge(-1) - r.sidewalk, -r.edge(-1), 0, None, 1.0)))
    walkway = unary_union(side_strips).difference(drivable)
    keepout = unary_union([drivable, walkway]).buffer(0.4)
    stop_lines = []
    for ix in intersections:
        cr, m = ix['cross'], ix['main']
        for sgn in (-1, 1):
            s = ix['s_cross'] + sgn * (m.half_width() + 2.5 + 1.5 + 1.0)
            if 0 < s < cr.length:
                # traffic approaching the intersection at this arm
                side = cr.forward_side if sgn < 0 else -cr.forward_side
                stop_lines.append((cr, s, side))
    scenery = _scenery(rng, roads, keepout)
    layout = Layout(kind, (cx, cy), size, rht, roads, lanes, crossings, intersections, scenery,
                    drivable, walkway, None, (cx - size / 2, cy - size / 2), stop_lines)
    layout.raster = _raster(layout)
    return layout


# ------------------------------------------------------------------ scenery
_BUILDING_COLORS = [(176, 160, 140), (150, 150, 158), (190, 180, 160), (120, 110, 100),
                    (200, 200, 205), (160, 120, 95), (140, 150, 160), (210, 190, 150)]


def _rect(cx, cy, length, width, yaw):
    c, s = math.cos(yaw), math.sin(yaw)
    pts = [(sx * length / 2, sy * width / 2) for sx, sy in ((1, 1), (-1, 1), (-1, -1), (1, -1))]
    return Polygon([(cx + c * a - s * b, cy + s * a + c * b) for a, b in pts])


def _scenery(rng, roads, keepout):
    items, occupied = [], []

    def place(kind, cx, cy, z0, w, length, h, yaw, color, sem):
        poly = _rect(cx, cy, length, w, yaw)
        if poly.intersects(keepout) or any(poly.intersects(o) for o in occupied):
            return False
        occupied.append(poly.buffer(0.3))
        items.append(dict(center=(cx, cy, z0 + h / 2), size=(w, length, h), yaw=yaw, kind=kind,
                          color=color, sem=sem))
        return True

    for r in roads:
        for side in (1, -1):
            s = float(rng.uniform(0, 6))
            while s < r.length:
                bl = float(rng.uniform(8, 30))
                bd = float(rng.uniform(8, 16))
                setback = float(rng.uniform(0.5, 5.0))
                u = rng.random()
                sc = s + bl / 2
                x, y, t = (float(v) for v in r.path.pose_at(min(sc, r.length)))
                base = r.edge(side) + r.sidewalk
                if u < 0.15:   # wall along the sidewalk
                    lat = side * (base + 0.5)
                    place('wall', x - math.sin(t) * lat, y + math.cos(t) * lat, 0.0, 0.3, bl,
                          float(rng.uniform(1.2, 2.5)), t, (185, 175, 165), 'building')
                elif u < 0.9:
                    h = float(rng.uniform(5, 22) if rng.random() < 0.8 else rng.uniform(22, 45))
                    lat = side * (base + setback + bd / 2)
                    color = _BUILDING_COLORS[rng.integers(len(_BUILDING_COLORS))]
                    place('building', x - math.sin(t) * lat, y + math.cos(t) * lat, 0.0, bd, bl, h, t,
                          color, 'building')
                if setback > 2.2 and rng.random() < 0.5:  # tree between sidewalk and building
                    lat = side * (base + 1.0)
                    tx, ty = x - math.sin(t) * lat, y + math.cos(t) * lat
                    th = float(rng.uniform(2.0, 3.5))
                    if place('trunk', tx, ty, 0.0, 0.35, 0.35, th, t, (90, 70, 50), 'vegetation'):
                        items.append(dict(center=(tx, ty, th + 1.6), size=(3.0, 3.0, 3.2), yaw=t,
                                          kind='crown', color=(60, 110, 55), sem='vegetation'))
                s += bl + float(rng.uniform(1.0, 8.0))
    return items


# ------------------------------------------------------------------ raster
def _raster(layout):
    n = int(round(layout.size / RASTER_RES))
    img = Image.new('L', (n, n), G_TERRAIN)
    draw = ImageDraw.Draw(img)
    x0, y0 = layout.origin

    def poly(coords, value):
        pts = [((x - x0) / RASTER_RES, (y - y0) / RASTER_RES) for x, y in np.asarray(coords)]
        if len(pts) >= 3:
            draw.polygon(pts, fill=value)

    def geom(g, value):
        for p in getattr(g, 'geoms', [g]):
            if not p.is_empty:
                poly(p.exterior.coords, value)

    geom(layout.walkway, G_SIDEWALK)
    geom(layout.drivable, G_ROAD)
    for r in layout.roads:
        for a, b in r.free_intervals():
            for side in (1, -1):
                n_l = r.lanes(side)
                for i in range(1, n_l):       # dashed lane dividers
                    lat = side * i * r.lane_width
                    s = a + 1.0
                    while s < b - 1.0:
                        poly(r.path.strip(lat - 0.075, lat + 0.075, s, min(s + 3.0, b), 1.0), G_MARK)
                        s += 9.0
                if r.park(side) > 0:          # solid edge line of the parking strip
                    lat = side * n_l * r.lane_width
                    poly(r.path.strip(lat - 0.075, lat + 0.075, a, b, 1.0), G_MARK)
            for lat in (-0.12, 0.12):         # double solid road divider
                poly(r.path.strip(lat - 0.06, lat + 0.06, a, b, 1.0), G_DIVIDER)
    for c in layout.crossings:                 # zebra stripes (along the road direction)
        r = c.road
        d = -r.edge(-1) + 0.3
        while d < r.edge(1) - 0.3:
            poly(r.path.strip(d, min(d + 0.5, r.edge(1) - 0.3), c.s - c.width / 2, c.s + c.width / 2, 0.5),
                 G_CROSSWALK)
            d += 1.0
    for road, s, side in layout.stop_lines:
        lat0 = 0.0 if side > 0 else -road.edge(-1)
        lat1 = road.edge(1) if side > 0 else 0.0
        poly(road.path.strip(lat0, lat1, s - 0.2, s + 0.2, 0.5), G_MARK)
    return np.asarray(img)
