"""Per-class triangle meshes of agents and scenery, inside their annotated boxes.

Every mesh is built in the box frame (x forward = heading, y left, z up, origin at the
box centre) from a few primitives (hexahedra, prisms, frustums). Each triangle carries a
*part* id (body, glass, lights, wheels, skin, ...) that the renderer turns into a colour
and a LiDAR reflectivity. The shapes are asymmetric front / back (bonnet and windscreen,
cab and cargo, drawbar, head and feet, handlebar and rider) so that the heading is
observable by both the LiDAR and the cameras; the box stays the annotation.
"""
import math

import numpy as np

# parts (per-triangle material ids)
P_BODY, P_GLASS, P_TAIL, P_HEAD, P_WHEEL, P_SKIN, P_TROUSERS, P_WHITE, P_DARK, P_METAL, P_BLUE, P_RIDER = range(12)
#: fixed colours of the parts (P_BODY uses the object's own colour)
PART_COLORS = np.array([[0, 0, 0], [45, 55, 68], [200, 20, 20], [250, 245, 215], [25, 25, 25],
                        [214, 176, 146], [45, 45, 62], [240, 240, 240], [35, 35, 38], [120, 122, 128],
                        [30, 60, 220], [40, 50, 90]], np.float32)
#: LiDAR reflectivity of the parts (P_BODY: the class material's own value)
PART_REFLECT = np.array([0, 12, 160, 200, 8, 25, 20, 150, 15, 60, 120, 20], np.float32)

# hexahedron faces as quads over corners (bottom 0-3, top 4-7; corner order
# (-x,-y), (+x,-y), (+x,+y), (-x,+y)); face order: bottom, top, front (+x), back (-x), left (+y), right (-y)
_FACES = ((0, 1, 2, 3), (4, 5, 6, 7), (1, 2, 6, 5), (0, 3, 7, 4), (3, 2, 6, 7), (0, 1, 5, 4))


class MeshBuilder:
    """Accumulates triangles with a part id each; ``build()`` -> (V (n, 3), T (m, 3), part (m,))."""

    def __init__(self):
        self.v, self.t, self.p = [], [], []
        self.n = 0

    def _add(self, verts, tris, parts):
        self.v.append(np.asarray(verts, np.float64))
        self.t.append(np.asarray(tris, np.int64) + self.n)
        self.p.append(np.asarray(parts, np.int64))
        self.n += len(verts)

    def hexa(self, c8, parts=P_BODY):
        """Convex hexahedron from 8 corners; ``parts``: one id or 6 (bottom, top, front, back, left, right)."""
        parts = [parts] * 6 if np.isscalar(parts) else list(parts)
        tris, tp = [], []
        for f, part in zip(_FACES, parts):
            tris += [(f[0], f[1], f[2]), (f[0], f[2], f[3])]
            tp += [part, part]
        self._add(c8, tris, tp)

    def box(self, x0, x1, y0, y1, z0, z1, parts=P_BODY):
        self.hexa([(x0, y0, z0), (x1, y0, z0), (x1, y1, z0), (x0, y1, z0),
                   (x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)], parts)

    def slanted(self, xb, xt, yb, yt, z0, z1, parts=P_BODY):
        """Hexahedron with bottom x-range ``xb`` / half-width ``yb`` and top ``xt`` / ``yt``."""
        self.hexa([(xb[0], -yb, z0), (xb[1], -yb, z0), (xb[1], yb, z0), (xb[0], yb, z0),
                   (xt[0], -yt, z1), (xt[1], -yt, z1), (xt[1], yt, z1), (xt[0], yt, z1)], parts)

    def frustum(self, cx, cy, z0, z1, r0, r1, part=P_BODY, n=8, phase=math.pi / 8):
        """n-gon frustum (cone when ``r1`` is small) about a vertical axis."""
        a = np.arange(n) * 2 * math.pi / n + phase
        ring0 = np.stack([cx + r0 * np.cos(a), cy + r0 * np.sin(a), np.full(n, z0)], 1)
        ring1 = np.stack([cx + r1 * np.cos(a), cy + r1 * np.sin(a), np.full(n, z1)], 1)
        verts = np.concatenate([ring0, ring1])
        self._add_prism(verts, n, part)

    def _add_prism(self, verts, n, part):
        """Close two n-gon rings (``verts[:n]``, ``verts[n:]``) into a prism: sides + caps."""
        tris = []
        for i in range(n):
            j = (i + 1) % n
            tris += [(i, j, n + j), (i, n + j, n + i)]
        for i in range(1, n - 1):
            tris += [(0, i, i + 1), (n, n + i, n + i + 1)]
        self._add(verts, tris, [part] * len(tris))

    def wheel(self, cx, cz, r, y0, y1, part=P_WHEEL, n=8):
        """n-gon prism along y (a wheel)."""
        a = np.arange(n) * 2 * math.pi / n + math.pi / n
        xs, zs = cx + r * np.cos(a), cz + r * np.sin(a)
        verts = np.concatenate([np.stack([xs, np.full(n, y0), zs], 1), np.stack([xs, np.full(n, y1), zs], 1)])
        self._add_prism(verts, n, part)

    def build(self, h):
        v = np.concatenate(self.v)
        v[:, 2] -= h / 2.0           # bottom-origin -> box centre
        return v, np.concatenate(self.t), np.concatenate(self.p)


def _car(m, l, w, h, police=False):
    hl, hw = l / 2, w / 2 * 0.985
    r = min(0.19 * h, 0.2 * l)
    for x in (0.31 * l, -0.31 * l):
        for y0, y1 in ((hw - 0.22 * w, hw), (-hw, -hw + 0.22 * w)):
            m.wheel(x, r, r * 0.98, y0, y1)
    f, b = hl - 0.02, -hl + 0.02
    # lower body: bonnet lower at the front (0.48 h) than the boot (0.55 h)
    m.hexa([(b, -hw, 0.18 * h), (f, -hw, 0.18 * h), (f, hw, 0.18 * h), (b, hw, 0.18 * h),
            (b, -hw, 0.55 * h), (f, -hw, 0.47 * h), (f, hw, 0.47 * h), (b, hw, 0.55 * h)])
    # cabin set back, slanted windscreen (front), steeper rear window
    top = 0.93 * h if police else 0.985 * h
    m.slanted((-0.40 * l, 0.20 * l), (-0.33 * l, -0.04 * l), hw * 0.97, hw * 0.8, 0.53 * h, top,
              (P_BODY, P_BODY, P_GLASS, P_GLASS, P_GLASS, P_GLASS))
    m.box(f, hl, 0.55 * hw, 0.9 * hw, 0.36 * h, 0.44 * h, P_HEAD)
    m.box(f, hl, -0.9 * hw, -0.55 * hw, 0.36 * h, 0.44 * h, P_HEAD)
    m.box(-hl, b, 0.6 * hw, 0.95 * hw, 0.42 * h, 0.51 * h, P_TAIL)
    m.box(-hl, b, -0.95 * hw, -0.6 * hw, 0.42 * h, 0.51 * h, P_TAIL)
    if police:
        m.box(-0.24 * l, -0.14 * l, -0.5 * hw, 0.5 * hw, top, 0.99 * h, P_BLUE)


def _truck(m, l, w, h, construction=False):
    hl, hw = l / 2, w / 2 * 0.985
    r = min(0.17 * h, 0.09 * l)
    axles = (0.36 * l, -0.22 * l, -0.36 * l)
    for x in axles:
        m.wheel(x, r, r * 0.98, hw - 0.2 * w, hw)
        m.wheel(x, r, r * 0.98, -hw, -hw + 0.2 * w)
    m.box(-hl + 0.02, hl - 0.02, -0.35 * hw, 0.35 * hw, 0.14 * h, 0.24 * h, P_DARK)       # chassis
    # cab at the front: lower part + upper part with the windscreen, lower than the cargo body
    cab0 = 0.27 * l
    m.box(cab0, hl - 0.02, -hw, hw, 0.2 * h, 0.55 * h)
    m.slanted((cab0, hl - 0.03), (cab0, hl - 0.12 * l * 0.3), hw, hw * 0.95, 0.55 * h, 0.84 * h,
              (P_BODY, P_BODY, P_GLASS, P_BODY, P_GLASS, P_GLASS))
    m.box(hl - 0.02, hl, 0.6 * hw, 0.9 * hw, 0.3 * h, 0.36 * h, P_HEAD)
    m.box(hl - 0.02, hl, -0.9 * hw, -0.6 * hw, 0.3 * h, 0.36 * h, P_HEAD)
    if construction:   # dump body sloping up towards the back + an arm over the cab
        m.hexa([(-hl + 0.02, -hw, 0.26 * h), (cab0 - 0.08, -hw, 0.26 * h), (cab0 - 0.08, hw, 0.26 * h),
                (-hl + 0.02, hw, 0.26 * h), (-hl + 0.02, -hw, h * 0.99), (cab0 - 0.08, -hw, 0.7 * h),
                (cab0 - 0.08, hw, 0.7 * h), (-hl + 0.02, hw, h * 0.99)], P_BODY)
        m.box(cab0 - 0.1, hl - 0.2 * l * 0.3, -0.1 * hw, 0.1 * hw, 0.86 * h, 0.93 * h, P_METAL)
    else:
        m.box(-hl + 0.02, cab0 - 0.08, -hw, hw, 0.24 * h, 0.99 * h, P_WHITE)              # cargo body
    m.box(-hl, -hl + 0.02, 0.6 * hw, 0.9 * hw, 0.18 * h, 0.24 * h, P_TAIL)
    m.box(-hl, -hl + 0.02, -0.9 * hw, -0.6 * hw, 0.18 * h, 0.24 * h, P_TAIL)


def _bus(m, l, w, h):
    hl, hw = l / 2, w / 2 * 0.985
    r = min(0.15 * h, 0.05 * l)
    for x in (0.3 * l, -0.25 * l):
        m.wheel(x, r, r * 0.98, hw - 0.15 * w, hw)
        m.wheel(x, r, r * 0.98, -hw, -hw + 0.15 * w)
    f, b = hl - 0.03, -hl + 0.02
    # lower body with a bumper step at the front; upper body whose windscreen leans back
    m.box(b, f, -hw + 0.02, hw - 0.02, 0.1 * h, 0.42 * h)
    m.slanted((b, f - 0.01 * l), (b, f - 0.06 * l), hw - 0.02, hw - 0.04, 0.42 * h, 0.88 * h,
              (P_BODY, P_BODY, P_GLASS, P_BODY, P_BODY, P_BODY))
    # roof equipment (air conditioning / engine hump) over the back third only
    m.box(-0.47 * l, -0.12 * l, -0.7 * hw, 0.7 * hw, 0.88 * h, 0.99 * h, P_METAL)
    for s in (1, -1):
        ys = sorted((s * (hw - 0.04), s * hw))
        m.box(-0.45 * l, 0.38 * l, ys[0], ys[1], 0.56 * h, 0.84 * h, P_GLASS)          # side windows
    m.box(f, hl, 0.6 * hw, 0.9 * hw, 0.16 * h, 0.22 * h, P_HEAD)
    m.box(f, hl, -0.9 * hw, -0.6 * hw, 0.16 * h, 0.22 * h, P_HEAD)
    m.box(f, hl, -0.92 * hw, 0.92 * hw, 0.3 * h, 0.42 * h, P_GLASS)                    # low front window
    m.box(-hl, b, 0.7 * hw, 0.95 * hw, 0.2 * h, 0.4 * h, P_TAIL)
    m.box(-hl, b, -0.95 * hw, -0.7 * hw, 0.2 * h, 0.4 * h, P_TAIL)


def _trailer(m, l, w, h):
    hl, hw = l / 2, w / 2 * 0.985
    r = min(0.12 * h, 0.04 * l)
    for x in (-0.38 * l, -0.28 * l):
        m.wheel(x, r, r * 0.98, hw - 0.2 * w, hw)
        m.wheel(x, r, r * 0.98, -hw, -hw + 0.2 * w)
    front = 0.38 * l
    m.box(-hl + 0.02, front, -hw, hw, 0.3 * h, 0.99 * h)                               # box body
    m.box(front, hl, -0.05 * w, 0.05 * w, 0.3 * h, 0.36 * h, P_METAL)                  # drawbar / hitch
    m.box(hl - 0.15, hl, -0.09 * w, 0.09 * w, 0.28 * h, 0.38 * h, P_DARK)
    for y in (0.6 * hw, -0.6 * hw):                                                   # landing legs
        m.box(front - 0.6, front - 0.45, y - 0.05, y + 0.05, 0.0, 0.3 * h, P_METAL)
    m.box(-hl, -hl + 0.02, 0.7 * hw, 0.95 * hw, 0.3 * h, 0.36 * h, P_TAIL)
    m.box(-hl, -hl + 0.02, -0.95 * hw, -0.7 * hw, 0.3 * h, 0.36 * h, P_TAIL)


def _pedestrian(m, l, w, h):
    hl, hw = l / 2 * 0.98, w / 2 * 0.98
    m.box(0.05 * hl, 0.75 * hl, 0.08 * hw, 0.34 * hw, 0.0, 0.06 * h, P_DARK)          # feet pointing forward
    m.box(-0.25 * hl, 0.45 * hl, -0.34 * hw, -0.08 * hw, 0.0, 0.06 * h, P_DARK)
    m.box(-0.2 * hl, 0.25 * hl, 0.06 * hw, 0.36 * hw, 0.06 * h, 0.48 * h, P_TROUSERS)  # legs
    m.box(-0.3 * hl, 0.15 * hl, -0.36 * hw, -0.06 * hw, 0.06 * h, 0.48 * h, P_TROUSERS)
    m.slanted((-0.3 * hl, 0.3 * hl), (-0.3 * hl, 0.26 * hl), 0.4 * hw, 0.55 * hw, 0.48 * h, 0.81 * h)  # torso
    m.box(-0.98 * hl, -0.3 * hl, -0.38 * hw, 0.38 * hw, 0.5 * h, 0.8 * h, P_DARK)    # backpack at the back
    for s in (1, -1):                                                                 # arms
        ys = sorted((s * 0.56 * hw, s * 0.8 * hw))
        m.box(-0.12 * hl, 0.18 * hl, ys[0], ys[1], 0.45 * h, 0.8 * h)
    m.box(-0.16 * hl, 0.3 * hl, -0.24 * hw, 0.24 * hw, 0.82 * h, 0.99 * h, P_SKIN)    # head
    m.box(0.3 * hl, 0.5 * hl, -0.1 * hw, 0.1 * hw, 0.88 * h, 0.93 * h, P_SKIN)        # nose / cap peak


def _cycle(m, l, w, h, motor, rider):
    hl, hw = l / 2 * 0.98, w / 2 * 0.98
    r = min(0.27 * h, 0.19 * l) if not motor else min(0.24 * h, 0.17 * l)
    xf, xb = hl - r, -hl + r
    tw = 0.1 * hw if not motor else 0.25 * hw
    m.wheel(xf, r, r * 0.98, -tw, tw)
    m.wheel(xb, r, r * 0.98, -tw, tw)
    m.box(xb, xf, -0.06 * hw, 0.06 * hw, r * 0.9, r * 1.3, P_METAL)                   # frame / wheel line
    m.box(xf - 0.06, xf + 0.02, -0.06 * hw, 0.06 * hw, r, 0.7 * h, P_METAL)            # fork + steering column
    m.box(xf - 0.08, xf, -0.75 * hw, 0.75 * hw, 0.66 * h, 0.71 * h, P_DARK)            # handlebar (front)
    m.box(-0.3 * hl, -0.05 * hl, -0.2 * hw, 0.2 * hw, 0.52 * h, 0.57 * h, P_DARK)      # saddle
    if motor:
        m.box(-0.35 * hl, 0.45 * hl, -0.45 * hw, 0.45 * hw, 0.28 * h, 0.55 * h)        # tank / engine
        m.slanted((0.45 * hl, xf), (0.4 * hl, 0.6 * hl), 0.5 * hw, 0.35 * hw, 0.4 * h, 0.85 * h,
                  (P_BODY, P_BODY, P_BODY, P_BODY, P_BODY, P_BODY))                     # front fairing
        m.box(0.4 * hl, 0.55 * hl, -0.3 * hw, 0.3 * hw, 0.85 * h, 0.97 * h, P_GLASS)    # windscreen
        m.box(xf + 0.02, xf + 0.06, -0.2 * hw, 0.2 * hw, 0.55 * h, 0.62 * h, P_HEAD)
        m.box(-hl, -hl + 0.04, -0.2 * hw, 0.2 * hw, 0.45 * h, 0.5 * h, P_TAIL)
    else:
        m.box(-0.35 * hl, -0.2 * hl, -0.05 * hw, 0.05 * hw, r * 1.3, 0.52 * h, P_BODY)  # seat tube
        m.box(xf - 0.1, hl, -0.55 * hw, 0.55 * hw, 0.5 * h, 0.68 * h, P_DARK)          # front basket
        m.box(xb - 0.2, xb + 0.12, -0.35 * hw, 0.35 * hw, 0.4 * h, 0.44 * h, P_METAL)  # low rear rack
    if rider:     # leaning towards the handlebar, head over the front half
        m.slanted((-0.35 * hl, -0.02 * hl), (-0.1 * hl, 0.22 * hl), 0.45 * hw, 0.55 * hw, 0.57 * h, 0.84 * h,
                  P_RIDER)
        m.box(-0.25 * hl, 0.1 * hl, 0.2 * hw, 0.45 * hw, 0.3 * h, 0.58 * h, P_TROUSERS)
        m.box(-0.25 * hl, 0.1 * hl, -0.45 * hw, -0.2 * hw, 0.3 * h, 0.58 * h, P_TROUSERS)
        m.box(0.0, 0.26 * hl, -0.3 * hw, 0.3 * hw, 0.85 * h, 0.99 * h, P_SKIN if not motor else P_DARK)


def _cone(m, l, w, h):
    a = min(l, w) / 2 * 0.98
    m.box(-a, a, -a, a, 0.0, 0.05 * h, P_DARK)                                         # square foot
    r0, r1 = 0.8 * a, 0.12 * a
    rz = lambda z: r0 + (r1 - r0) * (z - 0.05) / 0.95  # noqa: E731
    for z0, z1, part in ((0.05, 0.5, P_BODY), (0.5, 0.7, P_WHITE), (0.7, 0.99, P_BODY)):
        m.frustum(0.0, 0.0, z0 * h, z1 * h, rz(z0), rz(z1), part)


def _barrier(m, l, w, h):
    hl, hw = l / 2 * 0.98, w / 2 * 0.98
    m.box(-0.16 * hl, 0.16 * hl, -hw, hw, 0.55 * h, 0.99 * h)                          # plank (striped)
    for y in (0.75 * hw, -0.75 * hw):
        m.box(-0.1 * hl, 0.1 * hl, y - 0.04, y + 0.04, 0.06 * h, 0.55 * h, P_METAL)       # legs
        m.box(-hl, hl, y - 0.06, y + 0.06, 0.0, 0.06 * h, P_DARK)                         # feet


def _bin(m, l, w, h):
    hl, hw = l / 2 * 0.98, w / 2 * 0.98
    m.slanted((-0.85 * hl, 0.85 * hl), (-0.95 * hl, 0.95 * hl), 0.85 * hw, 0.95 * hw, 0.07 * h, 0.9 * h)
    m.slanted((-0.95 * hl, hl), (-0.95 * hl, 0.9 * hl), hw, hw, 0.9 * h, 0.99 * h, P_DARK)  # lid, hinge at back
    m.wheel(-0.8 * hl, 0.07 * h, 0.07 * h, 0.5 * hw, 0.9 * hw)
    m.wheel(-0.8 * hl, 0.07 * h, 0.07 * h, -0.9 * hw, -0.5 * hw)


def _building(m, l, w, h):
    m.box(-l / 2, l / 2, -w / 2, w / 2, 0.0, h)


def _trunk(m, l, w, h):
    m.frustum(0.0, 0.0, 0.0, h, min(l, w) / 2 * 0.98, min(l, w) / 2 * 0.85)


def _crown(m, l, w, h):
    r = min(l, w) / 2 * 0.99
    m.frustum(0.0, 0.0, 0.0, 0.35 * h, 0.55 * r, r)
    m.frustum(0.0, 0.0, 0.35 * h, h, r, 0.35 * r)


#: category / scenery kind -> shape
SHAPES = {'vehicle.car': 'car', 'vehicle.emergency.police': 'police', 'vehicle.truck': 'truck',
          'vehicle.construction': 'construction', 'vehicle.bus.rigid': 'bus', 'vehicle.trailer': 'trailer',
          'vehicle.bicycle': 'bicycle', 'vehicle.motorcycle': 'motorcycle',
          'movable_object.trafficcone': 'cone', 'movable_object.barrier': 'barrier',
          'movable_object.pushable_pullable': 'bin', 'building': 'building', 'wall': 'building',
          'trunk': 'trunk', 'crown': 'crown'}


def shape_of(category):
    return SHAPES.get(category, 'pedestrian' if category.startswith('human') else 'car')


def make_mesh(shape, size_wlh, rider=False):
    """Triangle mesh of ``shape`` in its box frame (box centre origin); size is ``(w, l, h)``.

    Returns ``(V (n, 3) float64, T (m, 3) int64, part (m,) int64)``.
    """
    w, l, h = (float(v) for v in size_wlh)
    m = MeshBuilder()
    if shape in ('car', 'police'):
        _car(m, l, w, h, shape == 'police')
    elif shape in ('truck', 'construction'):
        _truck(m, l, w, h, shape == 'construction')
    elif shape == 'bus':
        _bus(m, l, w, h)
    elif shape == 'trailer':
        _trailer(m, l, w, h)
    elif shape == 'pedestrian':
        _pedestrian(m, l, w, h)
    elif shape in ('bicycle', 'motorcycle'):
        _cycle(m, l, w, h, shape == 'motorcycle', rider)
    else:
        {'cone': _cone, 'barrier': _barrier, 'bin': _bin, 'building': _building, 'trunk': _trunk,
         'crown': _crown}[shape](m, l, w, h)
    return m.build(h)


def place(verts, center, yaw):
    """Box-frame vertices -> world frame (rotation about z by ``yaw``, then ``center``)."""
    c, s = math.cos(yaw), math.sin(yaw)
    out = np.empty_like(verts)
    out[:, 0] = c * verts[:, 0] - s * verts[:, 1] + center[0]
    out[:, 1] = s * verts[:, 0] + c * verts[:, 1] + center[1]
    out[:, 2] = verts[:, 2] + center[2]
    return out
