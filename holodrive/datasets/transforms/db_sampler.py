"""``SceneDataBaseSampler``: mmdet3d's ``DataBaseSampler`` reading our JSON GT database.

mmdet3d's sampler unpickles its index (``mmengine.load(..., file_format='pkl')``); ours
reads the JSON index written by :mod:`holodrive.datasets.gt_database` and then behaves
like the parent (same ``prepare`` filters, class groups, collision test and point loading),
so ``ObjectSample`` uses it unchanged. One difference: the parent cycles through a shuffled
list per class, state that lives in the dataset object and is lost on a resume (and reset
each epoch in non-persistent workers); ours draws each frame's objects afresh from numpy's
global generator (distinct within a frame), which the seed hooks make a function of the
seed and the step, so a resumed run pastes what an uninterrupted one would::

    dict(type='ObjectSample', db_sampler=dict(type='SceneDataBaseSampler', ...))
"""
import json
import os.path as osp

import numpy as np
from mmdet3d.datasets.transforms.dbsampler import DataBaseSampler
from mmengine.logging import MMLogger

from holodrive.registry import TRANSFORMS

from ..errors import HoloDriveDataError

_HINT = 'run: python tools/create_data.py gt-database --config CONFIG (the training config)'


class GTDatabaseError(HoloDriveDataError):
    """The GT database index is missing, malformed or from another class list."""


def read_db_infos(info_path: str, classes=None) -> dict:
    """``{class: [record, ...]}`` from a JSON GT-database index, boxes as float32 arrays."""
    if not osp.isfile(info_path):
        raise GTDatabaseError('GT database index not found', info_path, _HINT)
    try:
        with open(info_path) as f:
            content = json.load(f)
        db = content['classes']
        for records in db.values():
            for rec in records:
                rec['box3d_lidar'] = np.asarray(rec['box3d_lidar'], dtype=np.float32)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise GTDatabaseError(f'GT database index is not a HoloDrive JSON index ({err})',
                              info_path, _HINT) from None
    missing = [c for c in (classes or ()) if c not in db]
    if missing:
        raise GTDatabaseError(f'GT database index has no entry for classes {missing}',
                              info_path, _HINT)
    return db


class _DrawDistinct:
    """``sample(num)``: ``num`` distinct records drawn with ``np.random`` (no state)."""

    def __init__(self, records: list):
        self.records = records

    def sample(self, num: int) -> list:
        idx = np.random.choice(len(self.records), size=min(num, len(self.records)),
                               replace=False)
        return [self.records[i] for i in idx]


@TRANSFORMS.register_module()
class SceneDataBaseSampler(DataBaseSampler):
    """Class-balanced GT-paste sampler over a JSON database (see module docstring).

    Args: as mmdet3d's ``DataBaseSampler``; ``info_path`` is the JSON index.
    """

    def __init__(self, info_path: str, data_root: str, rate: float, prepare: dict,
                 sample_groups: dict, classes=None,
                 points_loader: dict = dict(type='LoadPointsChecked', coord_type='LIDAR',
                                            load_dim=5, use_dim=5),
                 backend_args=None) -> None:
        # The parent's __init__ unpickles ``info_path``; the rest of it is restated here.
        self.data_root = data_root
        self.info_path = info_path
        self.rate = rate
        self.prepare = prepare
        self.classes = classes
        self.cat2label = {name: i for i, name in enumerate(classes)}
        self.label2cat = {i: name for i, name in enumerate(classes)}
        self.points_loader = TRANSFORMS.build(points_loader)
        self.backend_args = backend_args
        unknown = [c for c in sample_groups if c not in self.cat2label]
        if unknown:
            raise ValueError(f'db_sampler.sample_groups: classes {unknown} are not in '
                             f'db_sampler.classes {list(classes)}')

        db_infos = read_db_infos(info_path, classes=list(sample_groups))
        for prep_func, val in prepare.items():
            db_infos = getattr(self, prep_func)(db_infos, val)
        logger = MMLogger.get_current_instance()
        logger.info('GT database after filtering: ' + ', '.join(
            f'{k} {len(v)}' for k, v in db_infos.items()))
        empty = [c for c in sample_groups if not db_infos.get(c)]
        if empty:  # a small world may lack a class: sample the others
            logger.warning(f'{info_path}: no usable GT-database boxes of {empty}; '
                           'they are not pasted')
            sample_groups = {c: n for c, n in sample_groups.items() if c not in empty}
        self.db_infos = db_infos
        self.group_db_infos = db_infos
        self.sample_groups = [{name: int(num)} for name, num in sample_groups.items()]
        self.sample_classes = list(sample_groups)
        self.sample_max_nums = [int(num) for num in sample_groups.values()]
        self.sampler_dict = {k: _DrawDistinct(v) for k, v in db_infos.items() if v}

    def sample_class_v2(self, name: str, num: int, gt_bboxes: np.ndarray) -> list:
        """The parent's draw and BEV collision test, plus a guard it lacks: its test
        misses boxes that coincide exactly (edges on edges), which a static object seen
        from a stopped ego gives in every frame, so an object would be pasted onto itself.
        Candidates whose BEV centre is within 5 cm of a box already in the frame (or of
        one accepted before) are dropped."""
        accepted = []
        centres = [b[:2] for b in gt_bboxes]
        for rec in super().sample_class_v2(name, num, gt_bboxes):
            c = rec['box3d_lidar'][:2]
            if centres and np.min(np.linalg.norm(np.asarray(centres) - c, axis=1)) < 0.05:
                continue
            accepted.append(rec)
            centres.append(c)
        return accepted
