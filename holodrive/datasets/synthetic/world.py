"""``generate_world``: a procedurally generated driving world written as a nuScenes release."""
import datetime
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
from nuscenes.utils import splits as nusc_splits
from tqdm import tqdm

from ...utils.io import atomic_open
from .geometry import TokenGen
from .map_expansion import MAP_DIMS, MapExpansionWriter, write_semantic_prior
from .nuscenes_writer import TableWriter, vocabulary
from .scene import WORLD_FORMAT_VERSION, SceneSpec, simulate_scene  # noqa: F401 (re-exported)

MINI_TRAIN = ('scene-0061', 'scene-0553', 'scene-0655', 'scene-0757', 'scene-0796', 'scene-1077',
              'scene-1094', 'scene-1100')
MINI_VAL = ('scene-0103', 'scene-0916')
#: Location order used for scenes (round robin, smaller canvases first)
LOCATIONS = ('singapore-onenorth', 'boston-seaport', 'singapore-hollandvillage', 'singapore-queenstown')


@dataclass
class WorldSummary:
    version: str
    root: str
    scene_names: list
    split: dict                      # split name -> list of scene names
    num_samples: int
    num_annotations: int
    elapsed: float                   # seconds
    num_sample_data: int = 0
    num_instances: int = 0
    camera_seconds: float = 0.0      # time spent rendering + encoding camera images
    lidar_seconds: float = 0.0       # time spent on LiDAR sweeps (keyframe scans are counted in scene setup)
    camera_images: int = 0
    lidar_sweeps: int = 0
    locations: dict = field(default_factory=dict)   # location -> scene names


def scene_names_for(num_scenes, rng):
    """Official nuScenes scene names and split assignment."""
    if num_scenes <= 10:
        n_val = 1 if num_scenes <= 5 else 2
        n_val = min(n_val, num_scenes)
        val = list(MINI_VAL[:n_val])
        train = list(MINI_TRAIN[:num_scenes - n_val])
        names = [None] * num_scenes
        # interleave: keep the first scene a val scene so tiny worlds always have one of each
        order = val + train
        for i in range(num_scenes):
            names[i] = order[i]
        return 'v1.0-mini', names, {'mini_train': train, 'mini_val': val}
    n_val = max(2, int(round(num_scenes * 0.2)))
    if n_val > len(nusc_splits.val) or num_scenes - n_val > len(nusc_splits.train):
        raise ValueError(f'too many scenes: {num_scenes}')
    val = sorted(rng.choice(nusc_splits.val, n_val, replace=False).tolist())
    train = sorted(rng.choice(nusc_splits.train, num_scenes - n_val, replace=False).tolist())
    names = sorted(val + train)
    return 'v1.0-trainval', names, {'train': train, 'val': val}


def _regions(region):
    """Non-overlapping square cells (centres) per location, in a fixed order."""
    cells = {}
    for loc, (w, h) in MAP_DIMS.items():
        nx, ny = int((w - 20) // region), int((h - 20) // region)
        cells[loc] = [(10 + (i + 0.5) * region, 10 + (j + 0.5) * region) for j in range(ny) for i in range(nx)]
    return cells


def _set_ray_threads(n):
    from . import raycast
    raycast.NTHREADS = n


def generate_world(root_path, num_scenes=2, seed=0, samples_per_scene=20, image_size=(800, 450),
                   lidar_sweeps_per_sample=9, camera_sweeps_per_sample=0, export_2d=True, progress=True,
                   save_aux=True, num_workers=1):
    """Generate a synthetic driving world as a nuScenes release under ``root_path``.

    Args:
        root_path: output folder (``<root>/<version>/``, ``samples/``, ``sweeps/``, ``maps/``,
            ``coco/``, ``ade/``, ``synthetic_aux/``).
        num_scenes: up to 10 -> ``v1.0-mini`` (official mini names), more -> ``v1.0-trainval``.
        seed: everything (tokens included) is derived from it; same seed, same bytes.
        samples_per_scene: annotated keyframes per scene (2 Hz).
        image_size: (width, height) of the six cameras; intrinsics scale with it.
        lidar_sweeps_per_sample: LiDAR sweeps between keyframes (9 -> 20 Hz like nuScenes).
        camera_sweeps_per_sample: camera sweeps between keyframes (0 = keyframes only).
        export_2d: also write COCO (``coco/``) and ADE20K-layout (``ade/``) exports.
        progress: show a tqdm bar.
        save_aux: write per-pixel instance masks and scene descriptions under ``synthetic_aux/``.
        num_workers: scenes simulated in parallel processes (results are merged in scene order,
            so the output does not depend on it).
    """
    t_start = time.perf_counter()
    root = os.path.abspath(str(root_path))
    os.makedirs(root, exist_ok=True)
    if num_scenes < 1 or samples_per_scene < 1:
        raise ValueError('num_scenes and samples_per_scene must be >= 1')
    rng = np.random.default_rng([seed, 0])
    version, names, split = scene_names_for(num_scenes, rng)
    val_names = set(split.get('mini_val', split.get('val')))
    tokens = TokenGen(seed, 0, 0)
    vocab = vocabulary(tokens)
    from ..constants import CAMERA_NAMES, LIDAR_NAME
    for kind in ('samples', 'sweeps'):
        for ch in list(CAMERA_NAMES) + [LIDAR_NAME]:
            os.makedirs(os.path.join(root, kind, ch), exist_ok=True)
    tables = TableWriter(os.path.join(root, version))
    for t in ('category', 'attribute', 'visibility', 'sensor'):
        tables.add(t, vocab[t])
    maps = MapExpansionWriter(root)
    exporter = None
    if export_2d:
        from .export_2d import Export2D
        exporter = Export2D(root)
    duration = (samples_per_scene - 1) * 0.5 + 0.5
    region = float(max(240.0, 11.0 * duration + 150.0))
    region = float(np.ceil(region / 10.0) * 10.0)
    cells = _regions(region)
    cell_rngs = {loc: np.random.default_rng([seed, 7, i]).permutation(len(c)) for i, (loc, c) in
                 enumerate(sorted(cells.items()))}
    used = {loc: 0 for loc in cells}
    specs = []
    for i, name in enumerate(names):
        loc = LOCATIONS[i % len(LOCATIONS)]
        if used[loc] >= len(cells[loc]):
            free = [lc for lc in LOCATIONS if used[lc] < len(cells[lc])]
            if not free:
                raise ValueError(f'{num_scenes} scenes do not fit the four maps at {samples_per_scene} samples each')
            loc = free[0]
        center = cells[loc][cell_rngs[loc][used[loc]]]
        used[loc] += 1
        tz = '-0400' if loc == 'boston-seaport' else '+0800'
        tzinfo = datetime.timezone(datetime.timedelta(hours=-4 if loc == 'boston-seaport' else 8))
        # local time of the log (its name), an aware datetime: the epoch does not depend on the machine's TZ
        date = datetime.datetime(2018, 7, 1, tzinfo=tzinfo) + datetime.timedelta(days=int(i // 4), hours=int(rng.integers(0, 10)),
                                                                  minutes=int(rng.integers(0, 60)),
                                                                  seconds=int(rng.integers(0, 60)))
        log_name = ('n008-' if loc == 'boston-seaport' else 'n015-') + date.strftime('%Y-%m-%d-%H-%M-%S') + tz
        start_us = int(date.timestamp() * 1e6) + int(rng.integers(0, 999999))
        specs.append(SceneSpec(root, seed, i, name, loc, center, region, samples_per_scene, tuple(image_size),
                               lidar_sweeps_per_sample, camera_sweeps_per_sample, export_2d,
                               'val' if name in val_names else 'train', start_us, log_name, vocab, save_aux))
    log_by_loc, tiles = {}, {}
    num_samples = num_ann = num_sd = num_inst = 0
    stats = dict(camera_s=0.0, lidar_s=0.0, camera_images=0, lidar_sweeps=0)
    pool = None
    if num_workers > 1 and len(specs) > 1:
        import multiprocessing as mp
        procs = min(num_workers, len(specs))
        # Embree threads per process: the processes already fill the cores (results do not depend on it)
        pool = mp.get_context('fork').Pool(procs, _set_ray_threads, (max(1, (os.cpu_count() or 1) // procs),))
        results = pool.imap(simulate_scene, specs, chunksize=1)
    else:
        results = map(simulate_scene, specs)
    bar = tqdm(zip(specs, results), total=len(specs), desc='synthetic world', unit='scene', disable=not progress)
    for spec, res in bar:
        for t, recs in res['tables'].items():
            tables.add(t, recs)
        maps.add(res['location'], *res['map'])
        log_by_loc.setdefault(res['location'], []).append(res['log_token'])
        tiles.setdefault(res['location'], []).append(res['tile'])
        if exporter is not None:
            exporter.add(spec.split2d, res['coco'])
        num_samples += len(res['tables']['sample'])
        num_ann += len(res['tables']['sample_annotation'])
        num_sd += len(res['tables']['sample_data'])
        num_inst += len(res['tables']['instance'])
        for k in stats:
            stats[k] += res['stats'][k]
    if pool is not None:
        pool.close()
        pool.join()
    # map records + semantic priors
    map_recs = []
    for loc in LOCATIONS:
        if loc not in log_by_loc:
            continue
        mtok = tokens()
        fname = f'maps/{mtok}.png'
        write_semantic_prior(os.path.join(root, fname), loc, tiles[loc])
        map_recs.append(dict(token=mtok, log_tokens=log_by_loc[loc], category='semantic_prior', filename=fname))
        for f, *_ in tiles[loc]:
            os.remove(f)
    tables.add('map', map_recs)
    tables.close()
    maps.close()
    try:
        os.rmdir(os.path.join(root, 'maps', '.tiles'))
    except OSError:
        pass
    if exporter is not None:
        exporter.close()
    if save_aux:
        os.makedirs(os.path.join(root, 'synthetic_aux'), exist_ok=True)
        with atomic_open(os.path.join(root, 'synthetic_aux', 'world.json'), 'w') as fh:
            json.dump(dict(format_version=WORLD_FORMAT_VERSION, version=version, seed=seed, num_scenes=num_scenes,
                           samples_per_scene=samples_per_scene, image_size=list(image_size),
                           lidar_sweeps_per_sample=lidar_sweeps_per_sample,
                           camera_sweeps_per_sample=camera_sweeps_per_sample), fh, sort_keys=True)
    locs = {}
    for s in specs:
        locs.setdefault(s.location, []).append(s.name)
    return WorldSummary(version=version, root=root, scene_names=list(names), split=split, num_samples=num_samples,
                        num_annotations=num_ann, elapsed=time.perf_counter() - t_start, num_sample_data=num_sd,
                        num_instances=num_inst, camera_seconds=stats['camera_s'], lidar_seconds=stats['lidar_s'],
                        camera_images=stats['camera_images'], lidar_sweeps=stats['lidar_sweeps'], locations=locs)
