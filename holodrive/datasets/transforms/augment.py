"""Augmentations that keep camera and LiDAR geometry right.

Every transform that moves the scene records it as a matrix, never as implicit state:

- ``lidar_aug_matrix`` (4x4): original LiDAR frame -> augmented LiDAR frame, composed by
  the 3D augmentations (:class:`GlobalRotScaleTrans`, :class:`RandomFlip3D`);
- ``img_aug_matrix`` (per view, 4x4 acting on ``(u*d, v*d, d, 1)``): original pixels ->
  augmented pixels, composed by :class:`MultiViewImageAug` (resize, crop, flip, rotate).

and the per-view matrices are kept consistent with both (all lists of 4x4 float64, one per
view, in the order of ``results['images']``):

- ``cam2img``: the recorded intrinsics (padded to 4x4), never changed;
- ``lidar2cam`` = recorded ``lidar2cam @ inv(lidar_aug_matrix)``; ``cam2lidar`` its inverse;
- ``lidar2img`` = ``img_aug_matrix @ cam2img @ lidar2cam``: maps *augmented* points into the
  *augmented* images.

Derived targets (BEV rasters, depth maps, per-camera layout images) read these matrices, so
place them after the augmentations; an augmentation that finds one already computed raises.
In the ``holodrive`` scope ``GlobalRotScaleTrans`` and ``RandomFlip3D`` are the subclasses
below (same arguments and random draws as mmdet3d's; they only add the bookkeeping). 3D flips
do not flip images (``MultiViewImageAug`` does); ``lidar2img`` absorbs the 3D flip.
"""
import math
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.datasets.transforms import GlobalRotScaleTrans as _GlobalRotScaleTrans
from mmdet3d.datasets.transforms import RandomFlip3D as _RandomFlip3D

from holodrive.registry import TRANSFORMS

#: Keys computed from the final geometry: they must come after every augmentation.
DERIVED_KEYS = ('map_bev', 'box_bev', 'depth_maps', 'layout_images')
#: Ego-frame waypoint keys ``(K, 2)`` moved with the scene (see :func:`apply_lidar_aug`).
EGO_TRAJ_KEYS = ('ego_fut_traj', 'ego_past_traj')
EGO_YAW_KEYS = ('ego_fut_yaw',)


def pad4(mat) -> np.ndarray:
    """A 3x3 / 3x4 / 4x4 matrix as 4x4 float64 (identity elsewhere)."""
    mat = np.asarray(mat, dtype=np.float64)
    out = np.eye(4)
    out[:mat.shape[0], :mat.shape[1]] = mat
    return out


def _views(results: dict):
    return list(results.get('images', {}).values())


def ensure_geometry(results: dict) -> dict:
    """Create the top-level geometry keys (module docstring) if they are missing.

    Reads ``cam2img`` / ``lidar2cam`` from the top level (set by the image loader) or from
    ``results['images'][cam]``. Idempotent: existing augmentation matrices are kept.
    """
    if 'lidar_aug_matrix' not in results:
        results['lidar_aug_matrix'] = np.eye(4)
    views = _views(results)
    if not views and 'cam2img' not in results:
        return results
    if 'img_aug_matrix' not in results:
        cam2img = results['cam2img'] if 'cam2img' in results else \
            [v['cam2img'] for v in views]
        lidar2cam = results['lidar2cam'] if 'lidar2cam' in results else \
            [v['lidar2cam'] for v in views]
        inv_aug = np.linalg.inv(results['lidar_aug_matrix'])
        results['cam2img'] = [pad4(k) for k in cam2img]
        results['lidar2cam'] = [pad4(m) @ inv_aug for m in lidar2cam]
        results['img_aug_matrix'] = [np.eye(4) for _ in cam2img]
    _refresh_camera_matrices(results)
    return results


def _refresh_camera_matrices(results: dict) -> None:
    results['cam2lidar'] = [np.linalg.inv(m) for m in results['lidar2cam']]
    results['lidar2img'] = [a @ k @ m for a, k, m in zip(
        results['img_aug_matrix'], results['cam2img'], results['lidar2cam'])]


def _check_not_derived(results: dict, who: str) -> None:
    done = [k for k in DERIVED_KEYS if k in results]
    if done:
        raise RuntimeError(f'{who} runs after {done} were computed; move RasterizeMapBEV / '
                           'RasterizeBoxBEV / ProjectLidarDepth / ProjectLayoutToCameras after '
                           'every augmentation in the pipeline')


def apply_lidar_aug(results: dict, delta: np.ndarray) -> None:
    """Record a 3D augmentation ``delta`` (4x4, current LiDAR frame -> new) already applied
    to points and boxes: composes ``lidar_aug_matrix``, updates the camera matrices and
    moves the ego waypoints: they are displacements from the ego's current position, so
    only the linear part of ``E delta E^-1`` (``E = lidar2ego``) acts on them."""
    ensure_geometry(results)
    delta = np.asarray(delta, dtype=np.float64)
    inv = np.linalg.inv(delta)
    results['lidar_aug_matrix'] = delta @ results['lidar_aug_matrix']
    if 'lidar2cam' in results:
        results['lidar2cam'] = [m @ inv for m in results['lidar2cam']]
        _refresh_camera_matrices(results)
    lidar2ego = (results.get('lidar_points') or {}).get('lidar2ego')
    if lidar2ego is None:
        return
    e = pad4(lidar2ego)
    delta_ego = e @ delta @ np.linalg.inv(e)
    for key in EGO_TRAJ_KEYS:
        if key in results:
            xy = np.asarray(results[key], dtype=np.float64).reshape(-1, 2)
            xyz = np.concatenate([xy, np.zeros((len(xy), 1))], axis=1)
            # displacements from the ego's current position: only the linear part acts
            results[key] = (xyz @ delta_ego[:3, :3].T)[:, :2].astype(np.float32)
    if np.linalg.det(delta[:2, :2]) < 0:
        for key in EGO_YAW_KEYS:
            if key in results:
                results[key] = -np.asarray(results[key])


@TRANSFORMS.register_module()
class GlobalRotScaleTrans(_GlobalRotScaleTrans):
    """mmdet3d's ``GlobalRotScaleTrans`` that records ``lidar_aug_matrix`` and keeps
    ``lidar2cam`` / ``lidar2img`` consistent (see the module docstring). Same arguments."""

    def transform(self, input_dict: dict) -> dict:
        _check_not_derived(input_dict, type(self).__name__)
        input_dict = super().transform(input_dict)
        rot_t = np.asarray(input_dict['pcd_rotation'], dtype=np.float64)   # row-vector form
        scale = float(input_dict['pcd_scale_factor'])
        delta = np.eye(4)
        delta[:3, :3] = scale * rot_t.T
        delta[:3, 3] = np.asarray(input_dict['pcd_trans'], dtype=np.float64)
        apply_lidar_aug(input_dict, delta)
        return input_dict


@TRANSFORMS.register_module()
class RandomFlip3D(_RandomFlip3D):
    """mmdet3d's ``RandomFlip3D`` for scenes: flips points and boxes in BEV, records the
    flip in ``lidar_aug_matrix`` and never flips the images (use ``MultiViewImageAug``);
    ``lidar2img`` absorbs the flip. Same arguments (``sync_2d`` is ignored)."""

    def transform(self, input_dict: dict) -> dict:
        _check_not_derived(input_dict, type(self).__name__)
        img = input_dict.pop('img', None)
        try:
            input_dict = super().transform(input_dict)
        finally:
            if img is not None:
                input_dict['img'] = img
        delta = np.eye(4)
        if input_dict['pcd_horizontal_flip']:
            delta[1, 1] = -1.0          # mmdet3d 'horizontal' BEV flip: y -> -y
        if input_dict['pcd_vertical_flip']:
            delta[0, 0] = -1.0          # 'vertical': x -> -x
        apply_lidar_aug(input_dict, delta)
        return input_dict


def image_aug_matrix(resize: float, crop_xy: Tuple[float, float], flip: bool,
                     rotate_deg: float, out_size: Tuple[int, int]) -> np.ndarray:
    """3x3 pixel map of resize -> crop -> horizontal flip -> rotation about the centre.

    Integer pixel coordinates are pixel centres (as ``cv2.warpAffine`` and
    ``ProjectLidarDepth``), so a resize by ``r`` maps ``u -> (u + 0.5) r - 0.5``.

    Args:
        resize: scale factor.
        crop_xy: top-left ``(x0, y0)`` of the crop in the resized image (pixels).
        flip: mirror left-right after cropping.
        rotate_deg: counter-clockwise rotation (degrees) about the output centre.
        out_size: ``(W, H)`` of the output image.
    """
    w, h = out_size
    m = np.array([[resize, 0, 0.5 * resize - 0.5], [0, resize, 0.5 * resize - 0.5], [0, 0, 1]])
    m = np.array([[1, 0, -crop_xy[0]], [0, 1, -crop_xy[1]], [0, 0, 1]]) @ m
    if flip:
        m = np.array([[-1, 0, w - 1], [0, 1, 0], [0, 0, 1]]) @ m
    if rotate_deg:
        cx, cy = (w - 1) / 2, (h - 1) / 2
        a = math.radians(rotate_deg)
        c, s = math.cos(a), math.sin(a)
        # counter-clockwise on screen (y down): u' = c du + s dv, v' = -s du + c dv
        rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])
        m = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]]) @ rot @ \
            np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]]) @ m
    return m


@TRANSFORMS.register_module()
class MultiViewImageAug(BaseTransform):
    """Resize, crop, flip and rotate every view; records ``img_aug_matrix``.

    One set of random parameters is drawn per sample and applied to every view
    (``per_view=True`` draws per view). Test mode is deterministic: resize by the middle
    of ``resize_range``, crop centred horizontally and at ``crop_y`` vertically, no flip, no
    rotation. Images are warped with one ``cv2.warpAffine`` (bilinear, black border).

    Required keys: ``img`` (list of ``(H, W, 3)``), camera calibration. Updated keys:
    ``img``, ``img_shape``, ``pad_shape``, ``img_aug_matrix``, ``lidar2img``; added:
    ``img_aug_params`` (per view: resize, crop, flip, rotate).

    Args:
        final_size: ``(W, H)`` of the output images.
        resize_range: ``(min, max)`` scale factor drawn uniformly in training.
        crop_y: ``'bottom'`` (keep the road, drop sky), ``'center'`` or ``'random'`` (the
            vertical crop in training; test mode uses ``'bottom'`` unless ``'center'``).
        flip_prob: probability of a horizontal image flip in training.
        rot_range: ``(min, max)`` rotation in degrees in training.
        per_view: draw parameters per view instead of per sample.
        test_mode: deterministic test-time version.
    """

    def __init__(self, final_size: Sequence[int], resize_range=(1.0, 1.0),
                 crop_y: str = 'bottom', flip_prob: float = 0.0, rot_range=(0.0, 0.0),
                 per_view: bool = False, test_mode: bool = False):
        if crop_y not in ('bottom', 'center', 'random'):
            raise ValueError(f"crop_y must be 'bottom', 'center' or 'random', got {crop_y!r}")
        self.final_size = (int(final_size[0]), int(final_size[1]))
        self.resize_range = (float(resize_range[0]), float(resize_range[1]))
        self.crop_y = crop_y
        self.flip_prob = float(flip_prob)
        self.rot_range = (float(rot_range[0]), float(rot_range[1]))
        self.per_view = per_view
        self.test_mode = test_mode

    def _params(self, height: int, width: int) -> dict:
        fw, fh = self.final_size
        if self.test_mode:
            r = sum(self.resize_range) / 2
        else:
            r = float(np.random.uniform(*self.resize_range))
        new_w, new_h = width * r, height * r
        spare_x, spare_y = max(new_w - fw, 0.0), max(new_h - fh, 0.0)
        if self.test_mode or self.crop_y != 'random':
            x0 = spare_x / 2 if self.test_mode else float(np.random.uniform(0, spare_x))
            y0 = spare_y / 2 if self.crop_y == 'center' else spare_y
        else:
            x0 = float(np.random.uniform(0, spare_x))
            y0 = float(np.random.uniform(0, spare_y))
        # an image smaller than the output is centred (x) / bottom-aligned (y), padded black
        x0 = x0 if new_w >= fw else (new_w - fw) / 2
        y0 = y0 if new_h >= fh else new_h - fh
        flip = (not self.test_mode) and bool(np.random.rand() < self.flip_prob)
        rot = 0.0 if self.test_mode else float(np.random.uniform(*self.rot_range))
        return dict(resize=r, crop=(round(x0), round(y0)), flip=flip, rotate=rot)

    def transform(self, results: dict) -> dict:
        _check_not_derived(results, type(self).__name__)
        ensure_geometry(results)
        imgs = results['img']
        params = None
        out, used = [], []
        for i, img in enumerate(imgs):
            if params is None or self.per_view:
                params = self._params(*img.shape[:2])
            m = image_aug_matrix(params['resize'], params['crop'], params['flip'],
                                 params['rotate'], self.final_size)
            out.append(cv2.warpAffine(img, m[:2], self.final_size, flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0))
            results['img_aug_matrix'][i] = pad4(m) @ results['img_aug_matrix'][i]
            used.append(dict(params))
        results['img'] = out
        results['img_shape'] = results['pad_shape'] = (self.final_size[1], self.final_size[0])
        results['img_aug_params'] = used
        _refresh_camera_matrices(results)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(final_size={self.final_size}, resize_range='
                f'{self.resize_range}, crop_y={self.crop_y!r}, flip_prob={self.flip_prob}, '
                f'rot_range={self.rot_range}, test_mode={self.test_mode})')
