"""An object-level BEV map of the visible objects the driving-QA questions are about.

:class:`RasterizeSceneObjectsBEV` rasterises :func:`~holodrive.datasets.drive_qa.scene_objects`
of the keyframe (the same objects, with the same visibility / radius filters, that
``tools/create_data.py drive_qa`` asked about) into ``results['bev_objects']``, float32
``(C, H, W)`` in the **ego frame** (x forward, y left; the grid convention of
:mod:`.bev`: ``[c, i, j]`` is the cell centred at ``x = x_min + (j + 0.5) * res``,
``y = y_min + (i + 0.5) * res``). Channels: one per detection class, then one per closed-set
status (``STATUS_ANSWERS`` order); each object adds 1 at the cell of its BEV centre to its
class channel and (when it has one) its status channel, so a cell holds counts.

Fed to the driving-QA head through a ``VisualAdapter`` (``DriveQAModel(features=...)``), it
is an *oracle* scene representation built from the annotations: the upper bound of what a
BEV perception model could hand the language head, used to tell the head's reading of
visual tokens apart from the quality of the features (``docs/drive_qa.md``). A detector's
BEV feature map takes its place through the same adapter.
"""
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from holodrive.registry import TRANSFORMS
from ..constants import DETECTION_CLASSES
from .bev import BEVGrid


def _visible_objects(results: dict, classes: Sequence[str], owner: str) -> list:
    """The record's visible ``SceneObject`` s; a one-line KeyError naming the sample without
    ``instances`` / ``images``."""
    from ..drive_qa.scene import scene_objects
    for key in ('instances', 'images'):
        if key not in results:
            raise KeyError(f'{owner}: sample {results.get("token", "?")} has no {key!r}: use '
                           'the info records of tools/create_data.py with DriveQADataset '
                           '(modality use_camera=True)')
    return scene_objects(results, classes=classes)


@TRANSFORMS.register_module()
class RasterizeSceneObjectsBEV(BaseTransform):
    """Visible objects -> ``results['bev_objects']`` (module docstring).

    Args:
        x_range, y_range, resolution: the ego-frame grid in metres (default 64 x 64 cells of
            1.25 m covering the 40 m question radius).
        classes: class channels, index = ``bbox_label_3d``.
    Adds ``bev_objects`` ``(len(classes) + 7, H, W)`` float32 and ``bev_objects_grid``.
    """

    def __init__(self, x_range=(-40.0, 40.0), y_range=(-40.0, 40.0), resolution: float = 1.25,
                 classes: Sequence[str] = DETECTION_CLASSES):
        from ..drive_qa.templates import STATUS_ANSWERS
        self.grid = BEVGrid(x_range, y_range, resolution)
        self.classes = tuple(classes)
        self.statuses = tuple(STATUS_ANSWERS)

    @property
    def num_channels(self) -> int:
        return len(self.classes) + len(self.statuses)

    def transform(self, results: dict) -> dict:
        out = np.zeros((self.num_channels,) + self.grid.shape, dtype=np.float32)
        height, width = self.grid.shape
        for obj in _visible_objects(results, self.classes, type(self).__name__):
            col, row = np.floor(self.grid.to_pixel(np.asarray(obj.xy)) + 0.5).astype(int)
            if not (0 <= row < height and 0 <= col < width):
                continue
            out[self.classes.index(obj.name), row, col] += 1.0
            if obj.status is not None:
                out[len(self.classes) + self.statuses.index(obj.status), row, col] += 1.0
        results['bev_objects'] = out
        results['bev_objects_grid'] = self.grid
        return results

    def __repr__(self):
        return f'{type(self).__name__}(grid={self.grid}, classes={len(self.classes)})'


@TRANSFORMS.register_module()
class SceneObjectTokens(BaseTransform):
    """Visible objects -> one feature vector each: ``results['object_tokens']`` ``(C, 1, N)``.

    The object-level alternative to :class:`RasterizeSceneObjectsBEV`: the same objects, one
    column per object (nearest first, at most ``max_objects``; the rest of the N columns are
    zero), fed to the driving-QA head as a ``1 x N`` map through its ``VisualAdapter`` (fold 1),
    so each object becomes one visual token. Channels per object, in order: class one-hot
    (``len(classes)``), closed-set status one-hot (7, all zero without a status), ego sector
    one-hot (``SECTORS``: front / left / back / right), ``x / radius``, ``y / radius``,
    ``distance / radius`` (ego frame, metres / metres) and 1 (present). A detector's boxes
    (class, status from its velocity / attribute, BEV centre) fill the same layout.

    Args:
        max_objects: N, the number of token slots. Objects beyond it (the farthest) are dropped
            and counted in ``results['object_tokens_dropped']``.
        radius: the normaliser of the coordinates (the question radius, 40 m).
        classes: class channels, index = ``bbox_label_3d``.
    """

    def __init__(self, max_objects: int = 48, radius: float = 40.0,
                 classes: Sequence[str] = DETECTION_CLASSES):
        from ..drive_qa.scene import SECTORS
        from ..drive_qa.templates import STATUS_ANSWERS
        if int(max_objects) < 1:
            raise ValueError(f'SceneObjectTokens: max_objects={max_objects!r} must be >= 1')
        self.max_objects = int(max_objects)
        self.radius = float(radius)
        self.classes = tuple(classes)
        self.statuses = tuple(STATUS_ANSWERS)
        self.sectors = tuple(SECTORS)

    @property
    def num_channels(self) -> int:
        return len(self.classes) + len(self.statuses) + len(self.sectors) + 4

    def transform(self, results: dict) -> dict:
        objects = sorted(_visible_objects(results, self.classes, type(self).__name__),
                         key=lambda o: o.distance)
        out = np.zeros((self.num_channels, 1, self.max_objects), dtype=np.float32)
        n_cls, n_st = len(self.classes), len(self.statuses)
        base = n_cls + n_st + len(self.sectors)
        for slot, obj in enumerate(objects[:self.max_objects]):
            out[self.classes.index(obj.name), 0, slot] = 1.0
            if obj.status is not None:
                out[n_cls + self.statuses.index(obj.status), 0, slot] = 1.0
            out[n_cls + n_st + self.sectors.index(obj.sector), 0, slot] = 1.0
            out[base:base + 4, 0, slot] = (obj.xy[0] / self.radius, obj.xy[1] / self.radius,
                                           obj.distance / self.radius, 1.0)
        results['object_tokens'] = out
        results['object_tokens_dropped'] = max(0, len(objects) - self.max_objects)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(max_objects={self.max_objects}, '
                f'radius={self.radius}, classes={len(self.classes)})')
