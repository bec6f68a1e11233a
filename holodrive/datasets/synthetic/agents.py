"""Agents of a scene: the ego vehicle, traffic, parked vehicles, pedestrians, cyclists,
construction zones, bus stops and street furniture, as continuous-time tracks.

Every agent has a pose at any time ``t`` (seconds from the scene's first keyframe),
so keyframes, LiDAR sweeps and camera frames all see one consistent world.
"""
import math
from dataclasses import dataclass

import numpy as np

from .placement import StripAllocator, blocked_intervals, minus_intervals, remove_overlaps

# nuScenes-like mean sizes (w, l, h) and relative jitter
SIZES = {
    'vehicle.car': ((1.95, 4.62, 1.73), 0.08),
    'vehicle.truck': ((2.5, 6.9, 2.85), 0.10),
    'vehicle.bus.rigid': ((2.95, 11.2, 3.45), 0.05),
    'vehicle.trailer': ((2.85, 12.0, 3.85), 0.10),
    'vehicle.construction': ((2.75, 6.4, 3.1), 0.10),
    'vehicle.emergency.police': ((1.95, 4.9, 1.65), 0.04),
    'human.pedestrian.adult': ((0.67, 0.73, 1.77), 0.08),
    'human.pedestrian.child': ((0.5, 0.5, 1.25), 0.10),
    'human.pedestrian.construction_worker': ((0.7, 0.74, 1.78), 0.06),
    'human.pedestrian.police_officer': ((0.7, 0.72, 1.8), 0.05),
    'vehicle.motorcycle': ((0.78, 2.1, 1.48), 0.08),
    'vehicle.bicycle': ((0.6, 1.72, 1.3), 0.08),
    'movable_object.trafficcone': ((0.41, 0.41, 1.05), 0.08),
    'movable_object.barrier': ((2.5, 0.5, 0.98), 0.06),
    'movable_object.pushable_pullable': ((0.62, 0.7, 1.1), 0.08),
}
_CAR_COLORS = [(235, 235, 235), (30, 30, 35), (165, 170, 175), (150, 25, 30), (35, 65, 140),
               (90, 95, 100), (200, 200, 190), (30, 90, 60), (120, 80, 40), (230, 200, 40)]
_CLOTHES = [(40, 50, 90), (150, 40, 40), (60, 60, 60), (200, 200, 200), (40, 110, 70),
            (180, 140, 60), (90, 50, 110), (20, 20, 20)]
TRAFFIC_CLASSES = ('vehicle.car', 'vehicle.truck', 'vehicle.bus.rigid', 'vehicle.motorcycle',
                   'vehicle.construction', 'vehicle.emergency.police')


class Profile:
    """Speed ramping linearly from ``v0`` (before ``t0``) to ``v1`` (after ``t1``)."""

    def __init__(self, v0, v1=None, t0=0.0, t1=1.0):
        self.v0, self.v1 = float(v0), float(v0 if v1 is None else v1)
        self.t0, self.t1 = float(t0), float(max(t1, t0 + 1e-3))

    def v(self, t):
        f = np.clip((np.asarray(t, dtype=np.float64) - self.t0) / (self.t1 - self.t0), 0.0, 1.0)
        return self.v0 + (self.v1 - self.v0) * f

    def _a(self, t):
        t = np.asarray(t, dtype=np.float64)
        d = self.t1 - self.t0
        u = np.clip(t - self.t0, None, d)
        early = self.v0 * u + np.where(u > 0, (self.v1 - self.v0) * u * u / (2 * d), 0.0)
        return early + self.v1 * np.maximum(t - self.t1, 0.0)

    def s(self, t):
        """Distance travelled since t = 0."""
        return self._a(t) - self._a(0.0)


@dataclass
class Agent:
    category: str
    size: tuple
    color: tuple
    path: object = None        # Path followed (None = static)
    s0: float = 0.0            # arclength at t = 0
    profile: Profile = None
    lateral: float = 0.0
    yaw_offset: float = 0.0
    pose: tuple = None         # (x, y, yaw) of a static agent
    clamp: bool = False        # stop at the ends of the path instead of leaving the scene
    parked: bool = False
    sitting: bool = False
    rider: bool = True
    is_ego: bool = False

    def state(self, t):
        """Arrays x, y, yaw, speed, exists at times ``t``."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        if self.path is None:
            x, y, yaw = self.pose
            one = np.ones_like(t)
            return x * one, y * one, yaw * one, 0.0 * one, one > 0
        s = self.s0 + self.profile.s(t)
        v = self.profile.v(t)
        if self.clamp:
            out = (s <= 0.0) | (s >= self.path.length)
            v = np.where(out, 0.0, v)
            s = np.clip(s, 0.0, self.path.length)
            exists = np.ones_like(t, dtype=bool)
        else:
            exists = (s >= 0.0) & (s <= self.path.length)
        x, y, yaw = self.path.pose_at(s)
        x, y = x - np.sin(yaw) * self.lateral, y + np.cos(yaw) * self.lateral
        return x, y, yaw + self.yaw_offset, v, exists

    def attribute(self, speed):
        c = self.category
        if c.startswith('human.pedestrian'):
            if self.sitting:
                return 'pedestrian.sitting_lying_down'
            return 'pedestrian.moving' if speed > 0.2 else 'pedestrian.standing'
        if c in ('vehicle.bicycle', 'vehicle.motorcycle'):
            return 'cycle.with_rider' if self.rider else 'cycle.without_rider'
        if c.startswith('vehicle.'):
            if self.parked:
                return 'vehicle.parked'
            return 'vehicle.moving' if speed > 0.2 else 'vehicle.stopped'
        return None


def sample_size(rng, category):
    (w, l, h), j = SIZES[category]
    f = 1.0 + rng.uniform(-j, j, 3)
    return (float(w * f[0]), float(l * f[1]), float(h * f[2]))


def sample_color(rng, category):
    if category in ('vehicle.car', 'vehicle.emergency.police'):
        return _CAR_COLORS[rng.integers(len(_CAR_COLORS))]
    if category.startswith('human'):
        return _CLOTHES[rng.integers(len(_CLOTHES))]
    table = {'vehicle.truck': [(240, 240, 240), (200, 90, 30), (60, 90, 150), (180, 30, 30)],
             'vehicle.bus.rigid': [(200, 40, 40), (240, 240, 240), (40, 120, 200), (250, 180, 20)],
             'vehicle.trailer': [(220, 220, 225), (150, 150, 150), (90, 110, 140)],
             'vehicle.construction': [(245, 190, 20), (240, 140, 20)],
             'vehicle.motorcycle': [(30, 30, 30), (170, 20, 20), (20, 60, 160)],
             'vehicle.bicycle': [(20, 120, 60), (200, 30, 30), (30, 30, 30), (230, 230, 230)],
             'movable_object.trafficcone': [(250, 110, 20)],
             'movable_object.barrier': [(210, 30, 30)],
             'movable_object.pushable_pullable': [(40, 90, 50), (60, 60, 70)]}[category]
    return table[rng.integers(len(table))]


def make_agents(rng, layout, times, t_keys, density=1.0):
    """Ego (first element) and the other agents, overlap-free over ``times``."""
    main = layout.roads[0]
    t_min, t_max = float(np.min(times)), float(np.max(times))
    # ---------------------------------------------------------------- ego
    ego_lanes = [ln for ln in layout.lanes if ln.road is main]
    ego_lane = ego_lanes[rng.integers(len(ego_lanes))]
    mode = rng.choice(3, p=[0.6, 0.25, 0.15])
    if mode == 0:
        prof = Profile(rng.uniform(4.0, 11.0))
    elif mode == 1:      # pulling away
        prof = Profile(0.0, rng.uniform(5.0, 10.0), rng.uniform(0.0, 2.0), rng.uniform(4.0, 8.0))
    else:                # slowing down
        prof = Profile(rng.uniform(7.0, 11.0), rng.uniform(2.0, 5.0), rng.uniform(0.0, 3.0), rng.uniform(4.0, 8.0))
    mid = 0.5 * (prof.s(t_min) + prof.s(t_max))
    ego_s0 = ego_lane.path.length / 2 - mid + rng.uniform(-8, 8)
    ego = Agent('ego', (1.73, 4.08, 1.56), (0, 0, 0), ego_lane.path, ego_s0, prof, is_ego=True)
    ego_x, ego_y, _, _, _ = ego.state([0.0])
    ego_s_road, _ = main.path.project(np.array([[ego_x[0], ego_y[0]]]))
    ego_s_road = float(ego_s_road[0])
    agents = [ego]

    def add(category, **kw):
        a = Agent(category, sample_size(rng, category), sample_color(rng, category), **kw)
        agents.append(a)
        return a

    # ------------------------------------------------ kerb-side strips of all roads
    strips = {}
    for r in layout.roads:
        for side in (1, -1):
            free = minus_intervals([(4.0, r.length - 4.0)], blocked_intervals(layout, r, 3.0))
            strips[(id(r), side)] = StripAllocator(free)

    # The mandatory set: every detection class close to the ego's path. Items of a group are
    # placed one after the other starting near the ego, ``direction`` +1 / -1 along the road.
    def place_near(road, sd, category, s_want, gap, lateral_in, direction=1, **kw):
        size = sample_size(rng, category)
        along = size[0] if kw.get('yaw_extra') else size[1]
        s = strips[(id(road), sd)].take(s_want + direction * (along / 2 + gap), along, gap)
        if s is None:
            return None
        x, y, t = (float(v) for v in road.path.pose_at(s))
        lat = sd * lateral_in(size)
        facing = 0.0 if sd == road.forward_side else math.pi
        yaw_extra = kw.pop('yaw_extra', 0.0)
        kw.setdefault('parked', True)
        a = Agent(category, size, sample_color(rng, category), pose=(
            x - math.sin(t) * lat, y + math.cos(t) * lat, t + facing + yaw_extra), **kw)
        agents.append(a)
        return s + direction * along / 2

    park_sides = [sd for sd in (1, -1) if main.park(sd) > 0]
    side = park_sides[rng.integers(len(park_sides))]
    other = -side if main.park(-side) > 0 else side
    ahead = 1 if ego_lane.forward else -1

    def in_strip(sd):
        return lambda size: main.edge(sd) - size[0] / 2 - 0.15

    def at_line(sd, along_is_w=False):
        return lambda size: main.edge(sd) - main.park(sd) + 0.35 + (size[1] if along_is_w else size[0]) / 2

    # construction zone ahead of the ego: barrier, cones, construction vehicle (+ worker), cones,
    # barriers, then a bus at a stop
    s_cur = ego_s_road + ahead * rng.uniform(-6.0, 4.0)
    zone = [('movable_object.barrier', 0.3, at_line(side, True), dict(yaw_extra=math.pi / 2))]
    zone += [('movable_object.trafficcone', 1.0, at_line(side), {})] * int(rng.integers(2, 4))
    zone += [('vehicle.construction', 0.8, in_strip(side), dict(parked=bool(rng.random() < 0.5)))]
    zone += [('movable_object.trafficcone', 1.0, at_line(side), {})] * int(rng.integers(2, 4))
    zone += [('movable_object.barrier', 0.2, at_line(side, True), dict(yaw_extra=math.pi / 2))] * 2
    zone += [('vehicle.bus.rigid', 2.0, in_strip(side), dict(parked=False))]
    for cat, gap, lat_fn, kw in zone:
        nxt = place_near(main, side, cat, s_cur, gap, lat_fn, ahead, **dict(kw))
        if nxt is None:
            continue
        if cat == 'vehicle.construction':
            x, y, t = (float(v) for v in main.path.pose_at(nxt - ahead * 3.0))
            lat = side * (main.edge(side) + 0.9)
            add('human.pedestrian.construction_worker',
                pose=(x - math.sin(t) * lat, y + math.cos(t) * lat, t + rng.uniform(-math.pi, math.pi)))
        s_cur = nxt
    # behind the ego (other kerb when there is one): a parked truck + trailer, motorcycle, car
    back = -ahead
    s_o = ego_s_road + back * (rng.uniform(2.0, 10.0) if other != side else 8.0)
    for cat, kw in (('vehicle.motorcycle', dict(rider=False)), ('vehicle.truck', {}), ('vehicle.trailer', {}),
                    ('vehicle.car', {})):
        s_o = place_near(main, other, cat, s_o, 1.5, in_strip(other), back, **kw) or s_o
    # people around the ego: construction workers, walkers, standing, bicycles parked on the kerb
    walk_sides = [(main, 1), (main, -1)] + [(r, sd) for r in layout.roads[1:] for sd in (1, -1)]
    _sidewalk_life(rng, layout, add, agents, walk_sides, ego_s_road, t_min, t_max, density)
    # ------------------------------------------------------- moving traffic
    for ln in layout.lanes:
        _lane_traffic(rng, layout, ln, ego, agents, add, t_min, t_max, density)
    # --------------------------------------------- more parked cars along the strips
    for r in layout.roads:
        for sd in (1, -1):
            if r.park(sd) <= 0:
                continue
            for _ in range(int(14 * density)):
                cat = 'vehicle.car' if rng.random() < 0.85 else (
                    'vehicle.truck' if rng.random() < 0.5 else 'vehicle.motorcycle')
                size = sample_size(rng, cat)
                s = strips[(id(r), sd)].take(float(rng.uniform(0, r.length)), size[1], float(rng.uniform(0.8, 3.0)),
                                             search=20.0)
                if s is None:
                    continue
                x, y, t = (float(v) for v in r.path.pose_at(s))
                lat = sd * (r.edge(sd) - size[0] / 2 - 0.15)
                facing = 0.0 if sd == r.forward_side else math.pi
                agents.append(Agent(cat, size, sample_color(rng, cat), pose=(
                    x - math.sin(t) * lat, y + math.cos(t) * lat, t + facing), parked=True,
                    rider=cat != 'vehicle.motorcycle'))
    # crossing pedestrians at intersections (cross-road arms; main road has green)
    for c in layout.crossings:
        if not c.at_intersection or c.road is main:
            continue
        for _ in range(int(rng.integers(1, 4))):
            fwd = rng.random() < 0.5
            path = c.path if fwd else c.path.reversed()
            v = rng.uniform(1.0, 1.6)
            add('human.pedestrian.adult', path=path, s0=float(rng.uniform(-3.0, path.length * 0.7)),
                profile=Profile(v), lateral=float(rng.uniform(-c.width / 2 + 0.5, c.width / 2 - 0.5)),
                clamp=True)
    return remove_overlaps(agents, times)


def _sidewalk_life(rng, layout, add, agents, sides, ego_s, t_min, t_max, density):
    main = layout.roads[0]
    for road, side in sides:
        near = road is main
        free = minus_intervals([(3.0, road.length - 3.0)], [(a - 1.0, b + 1.0) for a, b in road.cuts])
        sw, edge = road.sidewalk, road.edge(side)
        n_walk = int(rng.integers(4, 9) * density) + (3 if near else 0)
        for k in range(n_walk):
            a, b = free[rng.integers(len(free))]
            lat = side * (edge + float(rng.uniform(1.9, sw - 0.45)))
            fwd = rng.random() < 0.5
            path = road.path.offset(lat)
            path = path if fwd else path.reversed()
            a_p, b_p = (a, b) if fwd else (road.length - b, road.length - a)
            cat = 'human.pedestrian.adult' if rng.random() < 0.85 else 'human.pedestrian.child'
            if rng.random() < 0.75:
                v = float(rng.uniform(0.9, 1.7))
                prof = Profile(v)
            else:
                v = 0.0
                prof = Profile(0.0)
            span = v * (t_max - t_min)
            if b_p - a_p < span + 2.0:
                continue
            if near and k < 3:
                target = ego_s if fwd else road.length - ego_s
                lo = max(a_p + 1.0 - v * t_min, target - 25.0)
                hi = min(b_p - 1.0 - v * t_max, target + 25.0)
            else:
                lo, hi = a_p + 1.0 - v * t_min, b_p - 1.0 - v * t_max
            if hi <= lo:
                continue
            add(cat, path=path, s0=float(rng.uniform(lo, hi)), profile=prof)
        # sitting / standing people at the building side of the sidewalk
        for _ in range(int(rng.integers(0, 3))):
            a, b = free[rng.integers(len(free))]
            s = float(rng.uniform(a, b))
            x, y, t = (float(v) for v in road.path.pose_at(s))
            lat = side * (edge + sw - 0.45)
            add('human.pedestrian.adult', pose=(x - math.sin(t) * lat, y + math.cos(t) * lat,
                                                t + rng.uniform(-math.pi, math.pi)),
                sitting=rng.random() < 0.5)
        # cyclists on the kerb-side part of the sidewalk
        for k in range(int(rng.integers(0, 3)) + (1 if near else 0)):
            a, b = free[rng.integers(len(free))]
            v = float(rng.uniform(2.5, 5.0))
            lat = side * (edge + 1.3)
            fwd = rng.random() < 0.5
            path = road.path.offset(lat)
            path = path if fwd else path.reversed()
            a_p, b_p = (a, b) if fwd else (road.length - b, road.length - a)
            lo, hi = a_p + 2.0 - v * t_min, b_p - 2.0 - v * t_max
            if near and k == 0:
                target = ego_s if fwd else road.length - ego_s
                lo, hi = max(lo, target - 20.0), min(hi, target + 20.0)
            if hi > lo:
                add('vehicle.bicycle', path=path, s0=float(rng.uniform(lo, hi)), profile=Profile(v))
        # parked bicycles and bins on the kerb
        for k in range(int(rng.integers(1, 4))):
            a, b = free[rng.integers(len(free))]
            s = float(rng.uniform(a, b))
            if near and k == 0:
                s = float(np.clip(ego_s + rng.uniform(-15, 15), a, b))
            x, y, t = (float(v) for v in road.path.pose_at(s))
            cat = 'vehicle.bicycle' if rng.random() < 0.6 else 'movable_object.pushable_pullable'
            lat = side * (edge + 0.55)
            add(cat, pose=(x - math.sin(t) * lat, y + math.cos(t) * lat, t + (math.pi if rng.random() < .5 else 0)),
                rider=False, parked=True)


def _lane_traffic(rng, layout, lane, ego, agents, add, t_min, t_max, density):
    """A platoon: all vehicles of a lane share one speed profile (no collisions in a lane)."""
    road = lane.road
    stopped_arm = None
    for r, s, side in layout.stop_lines:
        if r is road and side == lane.side:
            stopped_arm = s
    if lane.path is ego.path:
        prof = ego.profile
    elif stopped_arm is not None:
        prof = Profile(0.0)
    else:
        u = rng.random()
        if u < 0.7:
            prof = Profile(rng.uniform(4.0, 12.0))
        elif u < 0.85:
            prof = Profile(0.0, rng.uniform(4.0, 9.0), rng.uniform(-1, 3), rng.uniform(4, 8))
        else:
            prof = Profile(rng.uniform(6.0, 11.0), 0.0, rng.uniform(0, 4), rng.uniform(5, 9))
    L = lane.path.length
    if stopped_arm is not None:
        # queue behind the stop line of the cross road
        s_stop = lane.to_travel_s(stopped_arm)
        s_list = []
        s = float(s_stop - 1.0)
        for _ in range(int(rng.integers(1, 6) * density)):
            cat = _traffic_category(rng)
            size = sample_size(rng, cat)
            s -= size[1] / 2
            if s - size[1] / 2 < 0:
                break
            s_list.append((s, cat, size))
            s -= size[1] / 2 + float(rng.uniform(1.5, 4.0))
    else:
        s_list = []
        s_lo, s_hi = -prof.s(t_max) - 30.0, L - prof.s(t_min) + 30.0
        departing = road.cuts and lane.path is not ego.path and road is not layout.roads[0]
        if departing:   # leaving the intersection: start beyond the crossings
            cut_end = max(lane.to_travel_s(c) for cut in road.cuts for c in cut)
            s_lo = max(s_lo, cut_end + 12.0 - prof.s(t_min))
        s = s_lo + float(rng.uniform(0, 20))
        while s < s_hi:
            cat = _traffic_category(rng)
            size = sample_size(rng, cat)
            s += size[1] / 2
            s_list.append((s, cat, size))
            tow = cat == 'vehicle.truck' and rng.random() < 0.3
            s += size[1] / 2 + float(rng.uniform(6.0, 30.0) / density)
            if tow:
                tsize = sample_size(rng, 'vehicle.trailer')
                s_list.append((s_list[-1][0] - size[1] / 2 - 0.4 - tsize[1] / 2, 'vehicle.trailer', tsize))
    for s, cat, size in s_list:
        if lane.path is ego.path and abs(s - ego.s0 - 1.4) < size[1] / 2 + 2.04 + 4.0:
            continue
        if size[0] > road.lane_width - 0.3:
            continue
        lat = float(rng.uniform(-0.2, 0.2))
        a = Agent(cat, size, sample_color(rng, cat), path=lane.path, s0=s, profile=prof, lateral=lat,
                  rider=True)
        agents.append(a)


def _traffic_category(rng):
    p = np.array([0.72, 0.1, 0.05, 0.07, 0.02, 0.04])
    return TRAFFIC_CLASSES[rng.choice(len(TRAFFIC_CLASSES), p=p / p.sum())]
