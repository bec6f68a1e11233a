"""nuScenes map-expansion JSON (``maps/expansion/<location>.json``) and the semantic-prior
PNG (``maps/<token>.png``, 0.1 m/pixel like nuScenes) built from the scene layouts.

Geometry of each scene is appended to per-location temporary JSON-lines files, so the
writer's memory does not grow with the number of scenes.
"""
import json
import os
import struct
import zlib

import numpy as np
from shapely.geometry import Polygon

from ...utils.io import write_json_lines
from . import layout as L

#: canvas sizes (x, y) in metres of the four nuScenes maps (as in the devkit)
MAP_DIMS = {'singapore-onenorth': (1585.6, 2025.0), 'singapore-hollandvillage': (2808.3, 2922.9),
            'singapore-queenstown': (3228.6, 3687.1), 'boston-seaport': (2979.5, 2118.1)}
LIST_LAYERS = ('polygon', 'line', 'node', 'drivable_area', 'road_segment', 'road_block', 'lane',
               'ped_crossing', 'walkway', 'stop_line', 'carpark_area', 'road_divider', 'lane_divider',
               'traffic_light', 'lane_connector')
DICT_LAYERS = ('arcline_path_3', 'connectivity')


class _Builder:
    def __init__(self, tokens):
        self.t = tokens
        self.layers = {k: [] for k in LIST_LAYERS}
        self.dicts = {k: {} for k in DICT_LAYERS}

    def nodes(self, coords):
        toks = []
        for x, y in coords:
            tok = self.t()
            self.layers['node'].append(dict(token=tok, x=float(x), y=float(y)))
            toks.append(tok)
        return toks

    def polygon(self, coords_or_poly):
        poly = coords_or_poly if isinstance(coords_or_poly, Polygon) else Polygon(coords_or_poly)
        poly = poly.buffer(0) if not poly.is_valid else poly
        if poly.geom_type != 'Polygon':
            poly = max(poly.geoms, key=lambda g: g.area)
        ext = list(poly.exterior.coords)[:-1]
        holes = [dict(node_tokens=self.nodes(list(h.coords)[:-1])) for h in poly.interiors]
        tok = self.t()
        self.layers['polygon'].append(dict(token=tok, exterior_node_tokens=self.nodes(ext), holes=holes))
        return tok

    def line(self, coords):
        tok = self.t()
        nodes = self.nodes(coords)
        self.layers['line'].append(dict(token=tok, node_tokens=nodes))
        return tok, nodes

    def add(self, layer, **rec):
        rec = dict(token=self.t(), **rec)
        self.layers[layer].append(rec)
        return rec['token']


def _parts(geom):
    return [g for g in getattr(geom, 'geoms', [geom]) if not g.is_empty and g.area > 0.5]


def scene_map_records(layout, tokens):
    """Map-expansion records of one scene layout: (list layers, dict layers)."""
    b = _Builder(tokens)
    da = b.add('drivable_area', polygon_tokens=[b.polygon(p) for p in _parts(layout.drivable)])
    for p in _parts(layout.walkway):
        b.add('walkway', polygon_token=b.polygon(p))
    seg_of = {}
    for ix in layout.intersections:
        ix['segment'] = b.add('road_segment', polygon_token=b.polygon(ix['polygon']), is_intersection=True,
                              drivable_area_token=da)
    lane_tokens = {}   # (road, side, index, interval) -> token
    for r in layout.roads:
        for a, bb in r.free_intervals():
            seg = b.add('road_segment', polygon_token=b.polygon(r.path.strip(-r.edge(-1), r.edge(1), a, bb, 1.0)),
                        is_intersection=False, drivable_area_token=da)
            seg_of[(id(r), a, bb)] = seg
            line_tok, _ = b.line(r.path.sample(a, bb, 2.0))
            b.add('road_divider', line_token=line_tok, road_segment_token=seg)
            for side in (1, -1):
                fwd = side == r.forward_side
                lo, hi = sorted((0.0, side * r.edge(side)))
                e0, _ = b.line([tuple(p) for p in r.path.sample(a, a, 1.0, lo)[:1]] +
                               [tuple(p) for p in r.path.sample(a, a, 1.0, hi)[:1]])
                e1, _ = b.line([tuple(p) for p in r.path.sample(bb, bb, 1.0, lo)[:1]] +
                               [tuple(p) for p in r.path.sample(bb, bb, 1.0, hi)[:1]])
                blk = b.add('road_block', polygon_token=b.polygon(r.path.strip(lo, hi, a, bb, 1.0)),
                            from_edge_line_token=e0 if fwd else e1, to_edge_line_token=e1 if fwd else e0,
                            road_segment_token=seg)
                for rr, s, sd in layout.stop_lines:
                    if rr is r and sd == side and a <= s <= bb:
                        b.add('stop_line', polygon_token=b.polygon(r.path.strip(lo, hi, s - 0.2, s + 0.2, 0.5)),
                              stop_line_type='STOP_SIGN', ped_crossing_tokens=[], traffic_light_tokens=[],
                              road_block_token=blk)
                dividers = {}
                for i in range(1, r.lanes(side)):
                    lat = side * i * r.lane_width
                    tok, nodes = b.line(r.path.sample(a, bb, 2.0, lat))
                    b.add('lane_divider', line_token=tok, lane_divider_segments=[
                        dict(node_token=n, segment_type='DOUBLE_DASHED_WHITE') for n in nodes])
                    dividers[i] = nodes
                for i in range(r.lanes(side)):
                    lat0, lat1 = sorted((side * i * r.lane_width, side * (i + 1) * r.lane_width))
                    # divider on the left / right of the lane in its direction of travel
                    inner, outer = dividers.get(i, []), dividers.get(i + 1, [])
                    left_is_outer = (side > 0) == fwd
                    segs = lambda ns: [dict(node_token=n, segment_type='DOUBLE_DASHED_WHITE') for n in ns]  # noqa
                    lt = b.add('lane', polygon_token=b.polygon(r.path.strip(lat0, lat1, a, bb, 1.0)), lane_type='CAR',
                               from_edge_line_token=e0 if fwd else e1, to_edge_line_token=e1 if fwd else e0,
                               left_lane_divider_segments=segs(outer if left_is_outer else inner),
                               right_lane_divider_segments=segs(inner if left_is_outer else outer))
                    lane_tokens[(id(r), side, i, a)] = (lt, a, bb)
                    lane_path = r.path.offset(r.lane_lateral(side, i))
                    if not fwd:
                        lane_path = lane_path.reversed()
                    b.dicts['arcline_path_3'][lt] = _arclines(r, lane_path, side, i, a, bb, fwd)
    # lane connectors through intersections
    conn = {tok: dict(incoming=[], outgoing=[]) for tok, _, _ in lane_tokens.values()}
    for r in layout.roads:
        for ca, cb in r.cuts:
            if ca <= 0 or cb >= r.length:
                continue
            for side in (1, -1):
                fwd = side == r.forward_side
                for i in range(r.lanes(side)):
                    lat0, lat1 = sorted((side * i * r.lane_width, side * (i + 1) * r.lane_width))
                    ct = b.add('lane_connector', polygon_token=b.polygon(r.path.strip(lat0, lat1, ca, cb, 1.0)))
                    lane_path = r.path.offset(r.lane_lateral(side, i))
                    if not fwd:
                        lane_path = lane_path.reversed()
                    b.dicts['arcline_path_3'][ct] = _arclines(r, lane_path, side, i, ca, cb, fwd)
                    before = [v[0] for k, v in lane_tokens.items()
                              if k[0] == id(r) and k[1] == side and k[2] == i and abs(v[2] - ca) < 1e-6]
                    after = [v[0] for k, v in lane_tokens.items()
                             if k[0] == id(r) and k[1] == side and k[2] == i and abs(v[1] - cb) < 1e-6]
                    inc, out = (before, after) if fwd else (after, before)
                    conn[ct] = dict(incoming=inc, outgoing=out)
                    for tk in inc:
                        conn[tk]['outgoing'].append(ct)
                    for tk in out:
                        conn[tk]['incoming'].append(ct)
    b.dicts['connectivity'] = conn
    for c in layout.crossings:
        r = c.road
        seg = next((v for (rid, a, bb), v in seg_of.items() if rid == id(r) and a <= c.s <= bb), None)
        if seg is None:
            seg = layout.intersections[0]['segment'] if layout.intersections else None
        b.add('ped_crossing', polygon_token=b.polygon(
            r.path.strip(-r.edge(-1), r.edge(1), c.s - c.width / 2, c.s + c.width / 2, 0.5)),
            road_segment_token=seg)
    return b.layers, b.dicts


def _arclines(road, lane_path, side, i, a, b, fwd):
    """Arcline records of a lane over the road arclength interval ``[a, b]``."""
    lat = road.lane_lateral(side, i)
    pts = np.stack([np.array(road.path.point_at(a, lat)), np.array(road.path.point_at(b, lat))])
    s, _ = lane_path.project(pts, step=0.25)
    s0, s1 = sorted(float(v) for v in s)
    return lane_path.arclines(max(s0, 0.0), min(s1, lane_path.length))


class MapExpansionWriter:
    """Accumulates scene geometry per location in temporary files; ``close`` writes the JSONs."""

    def __init__(self, root):
        self.dir = os.path.join(root, 'maps', 'expansion')
        os.makedirs(self.dir, exist_ok=True)
        self.files = {}

    def _fh(self, loc, layer):
        key = (loc, layer)
        if key not in self.files:
            self.files[key] = open(os.path.join(self.dir, f'.{loc}.{layer}.tmp'), 'w')
        return self.files[key]

    def add(self, location, layers, dicts):
        for k, recs in layers.items():
            fh = self._fh(location, k)
            write_json_lines(fh, recs)
        for k, d in dicts.items():
            fh = self._fh(location, k)
            for key, v in d.items():
                fh.write(json.dumps(key) + ': ' + json.dumps(v) + '\n')

    def close(self):
        locs = sorted({loc for loc, _ in self.files})
        for fh in self.files.values():
            fh.close()
        for loc in locs:
            with open(os.path.join(self.dir, f'{loc}.json'), 'w') as out:
                out.write('{"version": "1.3", "canvas_edge": %s' % json.dumps(list(MAP_DIMS[loc])))
                for layer in LIST_LAYERS + DICT_LAYERS:
                    is_dict = layer in DICT_LAYERS
                    out.write(',\n"%s": %s' % (layer, '{' if is_dict else '['))
                    tmp = os.path.join(self.dir, f'.{loc}.{layer}.tmp')
                    if os.path.exists(tmp):
                        with open(tmp) as src:
                            for j, line in enumerate(src):
                                out.write(('\n' if j == 0 else ',\n') + line.rstrip('\n'))
                        os.remove(tmp)
                    out.write('}' if is_dict else ']')
                out.write('\n}\n')
        return locs


# ----------------------------------------------------------------- semantic prior
def drivable_tile(layout):
    """Bit-packed drivable mask of the scene region at 0.1 m, rows from north (max y) to south."""
    drv = np.isin(layout.raster, (L.G_ROAD, L.G_MARK, L.G_DIVIDER, L.G_CROSSWALK))[::-1]
    return np.packbits(drv, axis=1), drv.shape


def write_semantic_prior(path, location, tiles):
    """Stream a grayscale PNG (0 / 255) covering the whole map canvas at 0.1 m per pixel.

    ``tiles``: list of (tile_file, origin_x, origin_y, (h, w)) with origins in metres; a tile's
    first row is its northern edge.
    """
    w_m, h_m = MAP_DIMS[location]
    W, H = int(round(w_m / L.RASTER_RES)), int(round(h_m / L.RASTER_RES))
    placed = []
    for f, ox, oy, (th, tw) in tiles:
        c0 = int(round(ox / L.RASTER_RES))
        r0 = H - int(round(oy / L.RASTER_RES)) - th   # northern edge row
        placed.append((f, r0, c0, th, tw))
    # Raw deflate segments ended by a full flush are independent, so the (identical) compressed
    # bytes of an all-zero band are computed once and repeated; Adler-32 of zeros is closed form.
    band = 512
    with open(path, 'wb') as fh:
        fh.write(b'\x89PNG\r\n\x1a\n')
        _chunk(fh, b'IHDR', struct.pack('>IIBBBBB', W, H, 8, 0, 0, 0, 0))
        _chunk(fh, b'IDAT', b'\x78\x01')
        zero_cache = {}
        a_sum, b_sum = 1, 0
        for y0 in range(0, H, band):
            y1 = min(y0 + band, H)
            nbytes = (y1 - y0) * (W + 1)
            hits = [p for p in placed if p[1] < y1 and p[1] + p[3] > y0]
            if not hits:
                if nbytes not in zero_cache:
                    c = zlib.compressobj(6, zlib.DEFLATED, -15)
                    zero_cache[nbytes] = c.compress(bytes(nbytes)) + c.flush(zlib.Z_FULL_FLUSH)
                data = zero_cache[nbytes]
                b_sum = (b_sum + nbytes * a_sum) % 65521
            else:
                buf = np.zeros((y1 - y0, W + 1), np.uint8)
                for f, r0, c0, th, tw in hits:
                    tile = np.unpackbits(np.load(f), axis=1)[:, :tw]
                    a, b = max(y0, r0), min(y1, r0 + th)
                    ca, cb = max(c0, 0), min(c0 + tw, W)
                    sub = tile[a - r0:b - r0, ca - c0:cb - c0]
                    view = buf[a - y0:b - y0, 1 + ca:1 + cb]
                    view[sub > 0] = 255
                raw = buf.tobytes()
                c = zlib.compressobj(6, zlib.DEFLATED, -15)
                data = c.compress(raw) + c.flush(zlib.Z_FULL_FLUSH)
                ad = zlib.adler32(raw)   # combine Adler-32 of this band with the running value
                a2, b2 = ad & 0xffff, ad >> 16
                b_sum = (b_sum + b2 + (a_sum - 1) * nbytes) % 65521
                a_sum = (a_sum + a2 - 1) % 65521
            _chunk(fh, b'IDAT', data)
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        tail = c.flush(zlib.Z_FINISH)
        _chunk(fh, b'IDAT', tail + struct.pack('>I', (b_sum << 16) | a_sum))
        _chunk(fh, b'IEND', b'')


def _chunk(fh, kind, data):
    fh.write(struct.pack('>I', len(data)))
    fh.write(kind)
    fh.write(data)
    fh.write(struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
