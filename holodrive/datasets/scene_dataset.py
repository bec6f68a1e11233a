"""One nuScenes scene dataset for every model family.

:class:`NuScenesSceneDataset` is mmdet3d's ``NuScenesDataset`` (same info format, same
``parse_data_info`` / ``parse_ann_info``, so mmdet3d transforms, ``Pack3DDetInputs`` and
``NuScenesMetric`` work unchanged) with three changes:

1. **Streaming**: the info records stay in a memory-mapped ``.stream`` file next to
   the ``.pkl`` (:mod:`holodrive.datasets.streaming`) and are unpickled per item, so
   the dataset's Python heap does not grow with the number of scenes.
2. **Temporal neighbours**: ``adjacent_frames=(-1, 1)`` attaches the previous/next
   keyframes of the same scene with their transforms relative to the current frame
   (``results['adjacent_frames']``, loaded by the ``LoadAdjacentFrames`` transform).
3. **Scene context** for every consumer: ``data_root``, ``scene_token``,
   ``scene_name``, ``location``, ``frame_idx``, ``ego_velocity``... are in every item
   (from the info file), and the metainfo ``version`` follows the info file.

What an item contains is decided by the pipeline (see ``docs/data_pipeline.md``):
images + calibration (``LoadMultiViewImagesChecked``), LiDAR (``LoadPointsChecked``,
``LoadSweepsChecked``), boxes with velocities and instance ids
(``LoadSceneAnnotations3D``), BEV map / box layouts (``RasterizeMapBEV``,
``RasterizeBoxBEV``), sparse LiDAR depth per camera (``ProjectLidarDepth``).
"""
import copy
import os.path as osp
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
from mmdet3d.datasets import NuScenesDataset

from holodrive.registry import DATASETS
from .constants import CAMERA_NAMES
from .errors import InfoFileError
from .streaming import InfoStream, open_info_stream
from .transforms.builder import build_pipeline

#: Default ``data_prefix`` for a nuScenes root: where mmdet3d's relative paths live.
NUSCENES_DATA_PREFIX = dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP', img='',
                            **{cam: f'samples/{cam}' for cam in CAMERA_NAMES})

ADJACENT_POLICIES = ('clamp', 'drop')
#: ego trajectory horizons (keyframes) assumed for info files that do not state them
DEFAULT_FUT_STEPS, DEFAULT_PAST_STEPS = 6, 4


@DATASETS.register_module()
class NuScenesSceneDataset(NuScenesDataset):
    """nuScenes keyframes for detection, world models and driving QA.

    Args:
        data_root (str): nuScenes root (the folder with ``samples/``, ``sweeps/``,
            ``maps/`` and the info ``.pkl`` files).
        ann_file (str): mmdet3d v2 info file, e.g. ``'nuscenes_infos_train.pkl'``.
        pipeline (list[dict | callable]): transforms.
        modality (dict): ``use_lidar`` / ``use_camera``; both default to True here.
        data_prefix (dict, optional): folders of the relative file names; defaults to
            :data:`NUSCENES_DATA_PREFIX`. Missing camera / sweep keys are filled in.
        adjacent_frames (Sequence[int]): frame offsets to attach, e.g. ``(-1, 1)``;
            0 is not allowed. Empty: none (the default).
        adjacent_policy (str): what to do past a scene boundary:
            ``'clamp'`` -- use the farthest reachable frame in that direction (the
            current frame itself at the very first / last frame) and mark the entry
            ``valid=False``; the item always has ``len(adjacent_frames)`` entries in
            the configured order. ``'drop'`` -- leave unreachable offsets out.
        stream_cache_dir (str, optional): where to put the ``.stream`` cache (default:
            next to the ``.pkl``).
        **kwargs: everything ``NuScenesDataset`` takes (``load_type``,
            ``box_type_3d``, ``filter_empty_gt``, ``test_mode``, ``with_velocity``,
            ``use_valid_flag``, ``metainfo``, ``indices``, ``backend_args`` ...).
    """

    def __init__(self,
                 data_root: str,
                 ann_file: str,
                 pipeline: List[Union[dict, Callable]] = [],
                 modality: Optional[dict] = None,
                 data_prefix: Optional[dict] = None,
                 adjacent_frames: Sequence[int] = (),
                 adjacent_policy: str = 'clamp',
                 stream_cache_dir: Optional[str] = None,
                 **kwargs) -> None:
        prefix = dict(NUSCENES_DATA_PREFIX)
        prefix.update(data_prefix or {})
        # a config that gives img='' but no per-camera keys still finds the images
        for cam in CAMERA_NAMES:
            if data_prefix and cam not in data_prefix and data_prefix.get('img'):
                prefix[cam] = data_prefix['img']
        self.adjacent_frames = tuple(int(k) for k in adjacent_frames)
        if 0 in self.adjacent_frames:
            raise ValueError('adjacent_frames must not contain 0 (the current frame)')
        if adjacent_policy not in ADJACENT_POLICIES:
            raise ValueError(f'adjacent_policy must be one of {ADJACENT_POLICIES}, '
                             f'got {adjacent_policy!r}')
        self.adjacent_policy = adjacent_policy
        self.stream_cache_dir = stream_cache_dir
        self._stream: Optional[InfoStream] = None
        self._rows: Optional[np.ndarray] = None
        self._user_metainfo = dict(kwargs.get('metainfo') or {})
        if kwargs.get('load_type') == 'mv_image_based':
            raise ValueError("load_type='mv_image_based' yields 6 items per record, "
                             "which streaming does not support; use mmdet3d's "
                             'NuScenesDataset for it')
        # build in holodrive's scope so our transforms resolve without a default scope
        pipeline = build_pipeline(pipeline)
        super().__init__(data_root=data_root, ann_file=ann_file, pipeline=pipeline,
                         modality=modality or dict(use_lidar=True, use_camera=True),
                         data_prefix=prefix, **kwargs)

    # ----------------------------------------------------------------- loading
    def full_init(self) -> None:
        """Open the memory-mapped records instead of loading the info list."""
        if self._fully_initialized:
            return
        self._stream = open_info_stream(self.ann_file, cache_dir=self.stream_cache_dir)
        file_meta = self._stream.metainfo
        for k, v in file_meta.items():
            self._metainfo.setdefault(k, v)
        # rows of the records in the info file; None = all of them, in order (no
        # per-record array: the heap stays constant in the number of records)
        self._rows = None if self._indices is None else \
            self._select_rows(None, self._indices)
        for label, count in self._stream.label_counts.items():
            mapped = self.label_mapping.get(int(label), -1)
            if mapped != -1:
                self.num_ins_per_cat[mapped] += int(count)
        self._after_load(file_meta)
        self._fully_initialized = True

    def _after_load(self, file_meta: dict) -> None:
        # mmdet3d keeps METAINFO['version'] ('v1.0-trainval') even for mini infos,
        # which makes NuScenesMetric evaluate the wrong split; follow the file.
        if 'version' not in self._user_metainfo and 'version' in file_meta:
            self._metainfo['version'] = file_meta['version']

    def _select_rows(self, rows: Optional[np.ndarray], indices) -> np.ndarray:
        if rows is None:
            rows = np.arange(len(self._stream), dtype=np.int64)
        if isinstance(indices, int):
            return rows[:indices] if indices >= 0 else rows[indices:]
        return rows[np.asarray(list(indices), dtype=np.int64)]

    def _check_init(self):
        if not self._fully_initialized:
            self.full_init()

    def __len__(self) -> int:
        self._check_init()
        return len(self._stream) if self._rows is None else len(self._rows)

    def _raw_record(self, row: int) -> dict:
        try:
            return self._stream[int(row)]
        except Exception as e:
            raise InfoFileError(f'cannot read record {row} ({type(e).__name__}: {e})',
                                self._stream.path,
                                'delete the .stream file; it is rebuilt from the .pkl') \
                from None

    def _parsed(self, raw: dict, with_ann: bool = False) -> dict:
        """``parse_data_info`` without double-counting instances per category."""
        counts = list(self.num_ins_per_cat)
        raw.setdefault('data_root', self.data_root)
        info = self.parse_data_info(raw)
        if with_ann and 'ann_info' not in info:
            info['ann_info'] = self.parse_ann_info(info)
        self.num_ins_per_cat[:] = counts
        return info

    def parse_data_info(self, info: dict):
        """mmdet3d's ``parse_data_info`` plus the ego trajectory as numpy arrays
        (``ego_fut_traj`` (F, 2), ``ego_fut_valid`` (F,), ``ego_fut_yaw`` (F,),
        ``ego_past_traj`` (P, 2), ``ego_past_valid`` (P,); zeros and ``valid=False``
        for info files written without them) and absolute ``cam_sweeps`` paths."""
        info = super().parse_data_info(info)
        fut = int(self.metainfo.get('ego_fut_steps', DEFAULT_FUT_STEPS))
        past = int(self.metainfo.get('ego_past_steps', DEFAULT_PAST_STEPS))
        for key, shape, dtype in (
                ('ego_fut_traj', (fut, 2), np.float32), ('ego_fut_valid', (fut,), bool),
                ('ego_fut_yaw', (fut,), np.float32), ('ego_past_traj', (past, 2), np.float32),
                ('ego_past_valid', (past,), bool)):
            value = info.get(key)
            info[key] = np.zeros(shape, dtype) if value is None else \
                np.asarray(value, dtype=dtype).reshape(shape)
        for sweeps in info.get('cam_sweeps', {}).values():
            for sweep in sweeps:
                sweep['img_path'] = osp.join(self.data_root, sweep['img_path'])
        return info

    def get_data_info(self, idx: int) -> dict:
        """The parsed info of item ``idx`` (plus ``adjacent_frames`` if configured).

        ``sample_idx`` is the row of the record in the info file, which is what
        ``NuScenesMetric`` indexes with (equal to ``idx`` without ``indices``).
        """
        self._check_init()
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f'index {idx} out of range for {n} items')
        idx %= n
        row = idx if self._rows is None else int(self._rows[idx])
        info = self._parsed(self._raw_record(row))
        info['sample_idx'] = row
        if self.adjacent_frames:
            info['adjacent_frames'] = self._adjacent(row, info)
        return info

    # ----------------------------------------------------------------- temporal
    def _neighbour_row(self, row: int, offset: int):
        """(row reached, steps actually taken) walking ``offset`` keyframes."""
        links = self._stream.prev_index if offset < 0 else self._stream.next_index
        steps = 0
        while steps < abs(offset) and links[row] >= 0:
            row = int(links[row])
            steps += 1
        return row, steps * (1 if offset > 0 else -1)

    def _row_info(self, row: int) -> dict:
        return self._parsed(self._raw_record(row), with_ann=True)

    def _adjacent(self, row: int, info: dict) -> List[dict]:
        """Neighbour keyframes with transforms relative to the current frame.

        Each entry: ``offset`` (requested), ``actual_offset`` (reached), ``valid``
        (reached == requested), ``info`` (the neighbour's parsed info, always with
        ``ann_info``), ``adj2cur_lidar`` / ``cur2adj_lidar`` (4x4, neighbour LiDAR
        frame <-> current LiDAR frame), ``adj2cur_ego`` (4x4) and ``time_delta``
        (s, neighbour minus current).
        """
        cur_lidar2global = _lidar2global(info)
        cur_ego2global = np.asarray(info['ego2global'])
        out = []
        for offset in self.adjacent_frames:
            adj_row, actual = self._neighbour_row(row, offset)
            if actual != offset and self.adjacent_policy == 'drop':
                continue
            adj = self._row_info(adj_row)
            adj['sample_idx'] = adj_row
            adj2cur = np.linalg.inv(cur_lidar2global) @ _lidar2global(adj)
            out.append(dict(
                offset=offset, actual_offset=actual, valid=actual == offset, info=adj,
                adj2cur_lidar=adj2cur, cur2adj_lidar=np.linalg.inv(adj2cur),
                adj2cur_ego=np.linalg.inv(cur_ego2global) @ np.asarray(adj['ego2global']),
                time_delta=float(adj['timestamp'] - info['timestamp'])))
        return out

    # ----------------------------------------------------------------- subsets
    def get_subset_(self, indices) -> None:
        self._check_init()
        self._rows = self._select_rows(self._rows, indices)

    def get_subset(self, indices) -> 'NuScenesSceneDataset':
        self._check_init()
        sub = copy.copy(self)
        sub._metainfo = copy.deepcopy(self._metainfo)
        sub.num_ins_per_cat = list(self.num_ins_per_cat)
        sub._rows = self._select_rows(self._rows, indices)
        return sub

    def __repr__(self) -> str:
        n = len(self) if self._fully_initialized else '?'
        path = self._stream.path if self._stream else None
        return (f'{type(self).__name__}(ann_file={self.ann_file!r}, len={n}, '
                f'stream={path!r}, adjacent_frames={self.adjacent_frames})')


def _lidar2global(info: dict) -> np.ndarray:
    return np.asarray(info['ego2global']) @ np.asarray(info['lidar_points']['lidar2ego'])
