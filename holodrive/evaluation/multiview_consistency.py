"""Multi-view consistency: keypoint matches between neighbouring views that agree with the
epipolar geometry of the calibration (OpenCV SIFT + Lowe's ratio test).

For views ``i`` and ``j`` with intrinsics ``K`` (after the image augmentation) and
``cam2lidar`` poses, the relative pose ``T_ji = inv(cam2lidar_j) @ cam2lidar_i = [R | t]``
gives the fundamental matrix ``F = K_j^-T [t]_x R K_i^-1`` with ``x_j^T F x_i = 0`` for the
pixels (homogeneous) of one 3D point. A match counts as consistent when both points lie
within ``threshold_px`` of the other's epipolar line.
"""
from typing import Tuple

import numpy as np


def fundamental_matrix(k_i: np.ndarray, k_j: np.ndarray, cam2lidar_i: np.ndarray,
                       cam2lidar_j: np.ndarray) -> np.ndarray:
    """``(3, 3)`` F mapping pixels of view ``i`` to epipolar lines of view ``j``."""
    rel = np.linalg.inv(np.asarray(cam2lidar_j, np.float64)) @ np.asarray(cam2lidar_i,
                                                                         np.float64)
    r, t = rel[:3, :3], rel[:3, 3]
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    return np.linalg.inv(np.asarray(k_j, np.float64)).T @ tx @ r @ np.linalg.inv(
        np.asarray(k_i, np.float64))


def epipolar_distances(f: np.ndarray, pts_i: np.ndarray, pts_j: np.ndarray) -> np.ndarray:
    """``(N,)`` max of the two point-to-epipolar-line distances (pixels) of matches
    ``pts_i`` / ``pts_j`` ``(N, 2)``."""
    hi = np.concatenate([pts_i, np.ones((len(pts_i), 1))], 1)
    hj = np.concatenate([pts_j, np.ones((len(pts_j), 1))], 1)
    lines_j = hi @ f.T                       # F x_i, lines in view j
    lines_i = hj @ f                         # F^T x_j, lines in view i
    d_j = np.abs((lines_j * hj).sum(1)) / np.linalg.norm(lines_j[:, :2], axis=1).clip(1e-12)
    d_i = np.abs((lines_i * hi).sum(1)) / np.linalg.norm(lines_i[:, :2], axis=1).clip(1e-12)
    return np.maximum(d_i, d_j)


class EpipolarMatcher:
    """Counts SIFT matches of two views and those consistent with their calibration.

    Args:
        threshold_px: epipolar distance (pixels of the given images) of a consistent match.
        ratio: Lowe's ratio test between the best and second-best descriptor distance.
        upscale: images are enlarged by this factor before detection (small generated views
            have few keypoints at their native size); points are mapped back.
    """

    def __init__(self, threshold_px: float = 2.0, ratio: float = 0.75, upscale: int = 2):
        import cv2
        self.cv2 = cv2
        self.threshold_px, self.ratio, self.upscale = float(threshold_px), float(ratio), upscale
        self.sift = cv2.SIFT_create()
        self.matcher = cv2.BFMatcher(cv2.NORM_L2)

    def _features(self, img_hwc: np.ndarray):
        cv2 = self.cv2
        gray = cv2.cvtColor(np.ascontiguousarray(img_hwc), cv2.COLOR_RGB2GRAY)
        if self.upscale != 1:
            gray = cv2.resize(gray, None, fx=self.upscale, fy=self.upscale,
                              interpolation=cv2.INTER_CUBIC)
        kps, desc = self.sift.detectAndCompute(gray, None)
        pts = np.array([kp.pt for kp in kps], np.float64).reshape(-1, 2)
        # OpenCV pixel centres sit at integers: (u + 0.5) / s - 0.5 in the original image
        return (pts + 0.5) / self.upscale - 0.5, desc

    def __call__(self, img_i: np.ndarray, img_j: np.ndarray, f: np.ndarray
                 ) -> Tuple[int, int]:
        """``(matches after the ratio test, consistent matches)`` of ``(H, W, 3)`` uint8 RGB
        views ``i`` and ``j`` under ``F`` (:func:`fundamental_matrix`)."""
        pts_i, desc_i = self._features(img_i)
        pts_j, desc_j = self._features(img_j)
        if desc_i is None or desc_j is None or len(desc_i) < 2 or len(desc_j) < 2:
            return 0, 0
        pairs = self.matcher.knnMatch(desc_i, desc_j, k=2)
        good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < self.ratio * m[1].distance]
        if not good:
            return 0, 0
        a = pts_i[[m.queryIdx for m in good]]
        b = pts_j[[m.trainIdx for m in good]]
        return len(good), int((epipolar_distances(f, a, b) <= self.threshold_px).sum())
