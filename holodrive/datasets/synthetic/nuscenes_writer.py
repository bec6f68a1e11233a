"""Streaming writer of the 13 nuScenes tables and the fixed vocabulary tables."""
import os

from ...utils.io import write_json_lines

#: The 23 nuScenes categories with their (lidarseg) index.
CATEGORIES = [
    ('animal', 1), ('human.pedestrian.adult', 2), ('human.pedestrian.child', 3),
    ('human.pedestrian.construction_worker', 4), ('human.pedestrian.personal_mobility', 5),
    ('human.pedestrian.police_officer', 6), ('human.pedestrian.stroller', 7),
    ('human.pedestrian.wheelchair', 8), ('movable_object.barrier', 9), ('movable_object.debris', 10),
    ('movable_object.pushable_pullable', 11), ('movable_object.trafficcone', 12),
    ('static_object.bicycle_rack', 13), ('vehicle.bicycle', 14), ('vehicle.bus.bendy', 15),
    ('vehicle.bus.rigid', 16), ('vehicle.car', 17), ('vehicle.construction', 18),
    ('vehicle.emergency.ambulance', 19), ('vehicle.emergency.police', 20), ('vehicle.motorcycle', 21),
    ('vehicle.trailer', 22), ('vehicle.truck', 23)]
ATTRIBUTES = [
    ('vehicle.moving', 'Vehicle is moving.'), ('vehicle.stopped', 'Vehicle, with a driver/rider in/on it, '
                                                                  'is currently stationary but has an intent to move.'),
    ('vehicle.parked', 'Vehicle is stationary (usually for longer duration) with no immediate intent to move.'),
    ('cycle.with_rider', 'There is a rider on the bicycle or motorcycle.'),
    ('cycle.without_rider', 'There is NO rider on the bicycle or motorcycle.'),
    ('pedestrian.sitting_lying_down', 'The human is sitting or lying down.'),
    ('pedestrian.standing', 'The human is standing.'),
    ('pedestrian.moving', 'The human is moving.')]
VISIBILITY = [('1', 'v0-40', 'visibility of whole object is between 0 and 40%'),
              ('2', 'v40-60', 'visibility of whole object is between 40 and 60%'),
              ('3', 'v60-80', 'visibility of whole object is between 60 and 80%'),
              ('4', 'v80-100', 'visibility of whole object is between 80 and 100%')]
#: nuScenes category -> detection class (as in the devkit's eval mapping)
DETECTION_MAPPING = {
    'vehicle.car': 'car', 'vehicle.truck': 'truck', 'vehicle.bus.rigid': 'bus', 'vehicle.bus.bendy': 'bus',
    'vehicle.trailer': 'trailer', 'vehicle.construction': 'construction_vehicle',
    'human.pedestrian.adult': 'pedestrian', 'human.pedestrian.child': 'pedestrian',
    'human.pedestrian.construction_worker': 'pedestrian', 'human.pedestrian.police_officer': 'pedestrian',
    'vehicle.motorcycle': 'motorcycle', 'vehicle.bicycle': 'bicycle',
    'movable_object.trafficcone': 'traffic_cone', 'movable_object.barrier': 'barrier'}
TABLES = ('category', 'attribute', 'visibility', 'instance', 'sensor', 'calibrated_sensor', 'ego_pose',
          'log', 'scene', 'sample', 'sample_data', 'sample_annotation', 'map')


def vocabulary(tokens):
    """category, attribute, visibility and sensor tables; ``tokens`` is a TokenGen."""
    from ..constants import CAMERA_NAMES, LIDAR_NAME
    cats = [dict(token=tokens(), name=n, description=n.replace('.', ' ').replace('_', ' '), index=i)
            for n, i in CATEGORIES]
    attrs = [dict(token=tokens(), name=n, description=d) for n, d in ATTRIBUTES]
    vis = [dict(token=t, level=lv, description=d) for t, lv, d in VISIBILITY]
    sensors = [dict(token=tokens(), channel=ch, modality='camera') for ch in CAMERA_NAMES]
    sensors.append(dict(token=tokens(), channel=LIDAR_NAME, modality='lidar'))
    return dict(category=cats, attribute=attrs, visibility=vis, sensor=sensors)


class TableWriter:
    """Appends records table by table to temporary JSON-lines files, then assembles the
    final ``<table>.json`` arrays by streaming (memory does not grow with the world)."""

    def __init__(self, table_dir):
        self.dir = table_dir
        os.makedirs(table_dir, exist_ok=True)
        self._files = {t: open(os.path.join(table_dir, f'.{t}.jsonl.tmp'), 'w') for t in TABLES}
        self.counts = {t: 0 for t in TABLES}

    def add(self, table, records):
        fh = self._files[table]
        self.counts[table] += write_json_lines(fh, records)

    def close(self):
        for t, fh in self._files.items():
            fh.close()
            tmp = os.path.join(self.dir, f'.{t}.jsonl.tmp')
            with open(tmp) as src, open(os.path.join(self.dir, f'{t}.json'), 'w') as dst:
                dst.write('[')
                first = True
                for line in src:
                    dst.write('\n' if first else ',\n')
                    dst.write(line.rstrip('\n'))
                    first = False
                dst.write('\n]\n')
            os.remove(tmp)
