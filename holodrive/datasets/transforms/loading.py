"""mmdet3d's loaders with input checks (and one fix), so bad data fails with one clear error.

- :class:`LoadPointsChecked` = ``LoadPointsFromFile`` + missing / truncated / non-finite
  checks.
- :class:`LoadSweepsChecked` = ``LoadPointsFromMultiSweeps`` + the same checks, and the
  exact sweep -> key-frame transform (mmdet3d 1.4.0 adds ``R^T t`` instead of ``t``
  when it applies ``lidar2sensor``; the error grows with the ego rotation between
  sweep and keyframe).
- :class:`LoadMultiViewImagesChecked` = ``LoadMultiViewImageFromFiles`` (6 views by
  default) + missing / undecodable / wrong-size checks.
- :class:`LoadSceneAnnotations3D` = ``LoadAnnotations3D`` + per-box track ids
  (``gt_instance_ids``), optionally instance tokens; falls back to ``eval_ann_info``
  in test mode so layouts can be drawn at inference time.
"""
import io
from typing import Optional

import mmcv
import numpy as np
from mmdet3d.datasets.transforms import (LoadAnnotations3D,
                                         LoadMultiViewImageFromFiles,
                                         LoadPointsFromFile,
                                         LoadPointsFromMultiSweeps)
from mmengine.fileio import exists, get
from PIL import Image

from holodrive.registry import TRANSFORMS
from ..errors import CorruptSampleError, MissingSampleError

_LIDAR_FIX = ('re-extract or regenerate this file, or rebuild the info files without '
              'its sample (tools/create_data.py)')
_IMAGE_FIX = ('re-extract or regenerate this image, or rebuild the info files without '
              'its sample (tools/create_data.py)')


def read_points_checked(path: str, load_dim: int, backend_args: Optional[dict] = None,
                        min_points: int = 1) -> np.ndarray:
    """Read a ``.pcd.bin`` (float32 x ``load_dim`` per point) or ``.npy`` point file.

    Returns:
        np.ndarray: flat float32 array (``N * load_dim`` values).

    Raises:
        MissingSampleError: the file does not exist.
        CorruptSampleError: the size is not a whole number of points, there are
            fewer than ``min_points`` points, or a value is NaN / inf.
    """
    try:
        buf = get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise MissingSampleError('LiDAR file not found', path, _LIDAR_FIX) from None
    if str(path).endswith('.npy'):
        try:
            points = np.load(io.BytesIO(buf)).astype(np.float32).reshape(-1)
        except ValueError as e:
            raise CorruptSampleError(f'LiDAR .npy file is unreadable ({e})', path,
                                     _LIDAR_FIX) from None
    else:
        point_bytes = 4 * load_dim
        if len(buf) % point_bytes:
            raise CorruptSampleError(
                f'LiDAR file has {len(buf)} bytes, not a multiple of {point_bytes} '
                f'({load_dim} float32 per point): truncated or not a nuScenes .pcd.bin',
                path, _LIDAR_FIX)
        points = np.frombuffer(buf, dtype=np.float32)
    if points.size % load_dim:
        raise CorruptSampleError(f'LiDAR array of {points.size} values does not split '
                                 f'into points of {load_dim} values', path, _LIDAR_FIX)
    if points.size // load_dim < min_points:
        raise CorruptSampleError(f'LiDAR file holds {points.size // load_dim} points '
                                 f'(expected at least {min_points})', path, _LIDAR_FIX)
    finite = np.isfinite(points)
    if not finite.all():
        bad = int((~finite.reshape(-1, load_dim).all(axis=1)).sum())
        raise CorruptSampleError(f'LiDAR file has {bad} point(s) with NaN/inf values',
                                 path, _LIDAR_FIX)
    return points


@TRANSFORMS.register_module()
class LoadPointsChecked(LoadPointsFromFile):
    """``LoadPointsFromFile`` that raises :class:`CorruptSampleError` /
    :class:`MissingSampleError` naming the file. Defaults suit nuScenes
    (``coord_type='LIDAR', load_dim=5, use_dim=5``).

    Args:
        min_points (int): fewer points than this is an error. Defaults to 1.
        **kwargs: ``LoadPointsFromFile`` arguments.
    """

    def __init__(self, coord_type: str = 'LIDAR', load_dim: int = 5, use_dim=5,
                 min_points: int = 1, **kwargs):
        super().__init__(coord_type=coord_type, load_dim=load_dim, use_dim=use_dim,
                         **kwargs)
        self.min_points = min_points

    def _load_points(self, pts_filename: str) -> np.ndarray:
        return read_points_checked(pts_filename, self.load_dim, self.backend_args,
                                   self.min_points)


@TRANSFORMS.register_module()
class LoadSweepsChecked(LoadPointsFromMultiSweeps):
    """``LoadPointsFromMultiSweeps`` with file checks and the exact sweep transform.

    Each sweep's points are moved into the key-frame LiDAR frame with
    ``sensor2lidar = inv(lidar2sensor)`` (``p' = R p + t``). Column 4 of the result
    is the time lag in seconds (0 for the keyframe), as in mmdet3d. A record with
    no (or an empty) ``lidar_sweeps`` list is padded with copies of the keyframe
    when ``pad_empty_sweeps`` is set.

    Args:
        sweeps_num, load_dim, use_dim, backend_args, pad_empty_sweeps,
        remove_close, test_mode: as ``LoadPointsFromMultiSweeps``.
        min_points (int): fewer points in a sweep file is an error. Defaults to 1.
    """

    def __init__(self, *args, min_points: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_points = min_points

    def _load_points(self, pts_filename: str) -> np.ndarray:
        return read_points_checked(pts_filename, self.load_dim, self.backend_args,
                                   self.min_points)

    def _choose(self, num: int) -> np.ndarray:
        if num <= self.sweeps_num:
            return np.arange(num)
        if self.test_mode:
            return np.arange(self.sweeps_num)
        return np.random.choice(num, self.sweeps_num, replace=False)

    def transform(self, results: dict) -> dict:
        points = results['points']
        points.tensor[:, 4] = 0
        key = points.tensor.numpy()
        parts = [key]
        sweeps = results.get('lidar_sweeps') or []
        if not sweeps and self.pad_empty_sweeps:
            pad = self._remove_close(key) if self.remove_close else key
            parts += [pad] * self.sweeps_num
        for idx in self._choose(len(sweeps)):
            sweep = sweeps[idx]
            path = sweep['lidar_points']['lidar_path']
            sweep_pts = np.copy(self._load_points(path)).reshape(-1, self.load_dim)
            if self.remove_close:
                sweep_pts = self._remove_close(sweep_pts)
            if 'sensor2lidar' in sweep:
                sensor2lidar = np.asarray(sweep['sensor2lidar'], dtype=np.float64)
            else:
                sensor2lidar = np.linalg.inv(
                    np.asarray(sweep['lidar_points']['lidar2sensor'], dtype=np.float64))
            xyz = sweep_pts[:, :3].astype(np.float64)
            sweep_pts[:, :3] = xyz @ sensor2lidar[:3, :3].T + sensor2lidar[:3, 3]
            sweep_pts[:, 4] = results['timestamp'] - sweep['timestamp']
            parts.append(sweep_pts[:, :key.shape[1]])
        # one concatenation in numpy, one tensor copy
        points = points.new_point(np.concatenate(parts, axis=0))
        results['points'] = points[:, self.use_dim]
        return results


@TRANSFORMS.register_module()
class LoadMultiViewImagesChecked(LoadMultiViewImageFromFiles):
    """``LoadMultiViewImageFromFiles`` with file checks (6 nuScenes views by default).

    Checks that every ``results['images'][cam]['img_path']`` exists, decodes and,
    when the info records the image size, has that size (a resized image would
    silently break ``cam2img``; mmdet3d would pad it to the largest view). The size
    check reads the image header (``check_size=False`` skips it).

    ``source_size=(W, H)`` (optional) is the camera resolution the config was made for: a
    world of another resolution is one :class:`~holodrive.engine.config_check.ConfigError`
    line (otherwise ``MultiViewImageAug`` would silently pad a small image with black).
    """

    def __init__(self, num_views: int = 6, check_size: bool = True,
                 source_size: Optional[tuple] = None, **kwargs):
        super().__init__(num_views=num_views, **kwargs)
        self.check_size = check_size
        self.source_size = None if source_size is None else \
            (int(source_size[0]), int(source_size[1]))

    def _check_source_size(self, results: dict, cam: str, width: int, height: int) -> None:
        if self.source_size is not None and (width, height) != self.source_size:
            from holodrive.engine.config_check import ConfigError
            w, h = self.source_size
            raise ConfigError(
                f'LoadMultiViewImagesChecked: {cam} of sample {results.get("token", "?")!r} '
                f'is {width}x{height}, the config expects {w}x{h} camera images '
                f'(source_size); make the world with tools/create_data.py synthetic '
                f'--image-size {w} {h}, or use a config for this resolution')

    def transform(self, results: dict) -> dict:
        for cam, item in results['images'].items():
            path = item['img_path']
            if not exists(path, backend_args=self.backend_args):
                raise MissingSampleError('camera image not found', path, _IMAGE_FIX)
            if self.check_size and item.get('height') and item.get('width'):
                # header only; must happen before the parent pads views to one size
                buf = get(path, backend_args=self.backend_args)
                try:
                    with Image.open(io.BytesIO(buf)) as im:
                        width, height = im.size
                except (OSError, ValueError, SyntaxError):
                    raise CorruptSampleError('camera image cannot be decoded (truncated or '
                                             'not an image)', path, _IMAGE_FIX) from None
                if (height, width) != (item['height'], item['width']):
                    raise CorruptSampleError(
                        f'camera image is {width}x{height} but the info file says '
                        f"{item['width']}x{item['height']} (cam2img would be wrong)",
                        path, _IMAGE_FIX)
            if self.source_size is not None and item.get('height') and item.get('width'):
                self._check_source_size(results, cam, int(item['width']), int(item['height']))
        try:
            results = super().transform(results)
        except Exception:
            self._diagnose(results)
            raise
        if self.source_size is not None:
            for cam, img in zip(results['images'], results['img']):
                self._check_source_size(results, cam, img.shape[1], img.shape[0])
        return results

    def _diagnose(self, results: dict) -> None:
        for item in results['images'].values():
            img = mmcv.imfrombytes(get(item['img_path'], backend_args=self.backend_args),
                                   flag=self.color_type)
            if img is None:
                raise CorruptSampleError('camera image cannot be decoded (truncated or '
                                         'not an image)', item['img_path'], _IMAGE_FIX)


@TRANSFORMS.register_module()
class LoadSceneAnnotations3D(LoadAnnotations3D):
    """``LoadAnnotations3D`` that also loads track ids (and optionally tokens).

    Added keys: ``gt_instance_ids`` (int64, one per box, stable along a track: the
    row of the instance in nuScenes' ``instance.json``; -1 if the info lacks it),
    ``gt_instance_tokens`` (str array) when ``with_instance_token``.
    In test mode (no ``ann_info``) the boxes come from ``eval_ann_info``.
    Filter boxes afterwards with ``FilterSceneInstances`` (mmdet3d's
    ``ObjectRangeFilter``/``ObjectNameFilter`` do not filter the extra keys).
    """

    def __init__(self, with_instance_id: bool = True, with_instance_token: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.with_instance_id = with_instance_id
        self.with_instance_token = with_instance_token

    def transform(self, results: dict) -> dict:
        if 'ann_info' not in results and 'eval_ann_info' in results:
            results['ann_info'] = results['eval_ann_info']
        results = super().transform(results)
        ann = results['ann_info']
        n = len(ann['gt_labels_3d'])
        if self.with_instance_id:
            ids = ann.get('instance_id')
            results['gt_instance_ids'] = np.full(n, -1, np.int64) if ids is None \
                else np.asarray(ids, dtype=np.int64)
        if self.with_instance_token:
            tokens = ann.get('instance_token')
            results['gt_instance_tokens'] = np.array([''] * n) if tokens is None \
                else np.asarray(tokens)
        return results
