"""Pose and keypoint metrics.

Argument order follows bop_toolkit: ``(R_est, t_est, R_gt, t_gt, pts)`` with
``R`` (3, 3), ``t`` (3,) and model points ``pts`` (N, 3); the 2D projection
error takes the intrinsics ``K`` (3, 3) before ``pts``, as bop_toolkit's ``proj``.
Rates are fractions in [0, 1]. References:

* ADD / ADI (ADD-S): Hinterstoisser et al., ACCV 2012, "Model based training,
  detection and pose estimation of texture-less 3D objects"; threshold 10 % of
  the model diameter (``add_01d``).
* 2D projection error: Brachmann et al., CVPR 2016 (threshold 5 px).
* SPEED score: Kisantal et al., "Satellite Pose Estimation Challenge", 2020:
  rotation error in radians + ``|t_est - t_gt| / |t_gt|``.
* Normalised mean absolute keypoint error: the seed's own yardstick (its
  training write-up, ``docs/seed-facts.md``), on coordinates divided by the
  image's width and height.
"""

from __future__ import annotations

import numpy as np

from xwing.geometry.pose import rotation_angle_deg
from xwing.geometry.projection import seed_normalised


def _apply(R, t, pts):
    return np.asarray(pts, dtype=np.float64).reshape(-1, 3) @ np.asarray(R).T + np.asarray(t).reshape(3)


def add(R_est, t_est, R_gt, t_gt, pts) -> float:
    """Average Distance of model points (same units as ``pts``)."""
    return float(np.linalg.norm(_apply(R_est, t_est, pts) - _apply(R_gt, t_gt, pts), axis=1).mean())


def adi(R_est, t_est, R_gt, t_gt, pts) -> float:
    """ADD-S: average distance to the *closest* model point (symmetry-aware); ``adi <= add``."""
    a, b = _apply(R_est, t_est, pts), _apply(R_gt, t_gt, pts)
    best = np.full(len(a), np.inf)
    for start in range(0, len(b), 2048):
        d = np.linalg.norm(a[:, None, :] - b[None, start:start + 2048, :], axis=-1)
        best = np.minimum(best, d.min(axis=1))
    return float(best.mean())


def rotation_error_deg(R_est, R_gt) -> float:
    """Angle of ``R_est R_gt^T`` in degrees, in [0, 180]."""
    return rotation_angle_deg(np.asarray(R_est) @ np.asarray(R_gt).T)


def translation_error(t_est, t_gt) -> float:
    """``|t_est - t_gt|`` (model units)."""
    return float(np.linalg.norm(np.asarray(t_est, float).reshape(3) - np.asarray(t_gt, float).reshape(3)))


def translation_error_rel(t_est, t_gt) -> float:
    """``|t_est - t_gt| / |t_gt|``: translation error relative to the true distance."""
    return translation_error(t_est, t_gt) / float(np.linalg.norm(t_gt))


def speed_score(R_est, t_est, R_gt, t_gt) -> float:
    """SPEED pose score: rotation error (rad) + relative translation error."""
    return float(np.radians(rotation_error_deg(R_est, R_gt)) + translation_error_rel(t_est, t_gt))


def proj_2d(R_est, t_est, R_gt, t_gt, K, pts) -> float:
    """Mean pixel distance between model points ``pts`` (N, 3) projected with both poses
    through ``K`` (3, 3) (no distortion)."""
    def proj(R, t):
        X = _apply(R, t, pts)
        return X[:, :2] / X[:, 2:3] @ K[:2, :2].T + K[:2, 2]

    return float(np.linalg.norm(proj(R_est, t_est) - proj(R_gt, t_gt), axis=1).mean())


def keypoint_errors_px(uv_est: np.ndarray, uv_gt: np.ndarray) -> np.ndarray:
    """Per-keypoint pixel distance (N,); non-finite estimates give inf."""
    e = np.linalg.norm(np.asarray(uv_est, float).reshape(-1, 2) - np.asarray(uv_gt, float).reshape(-1, 2), axis=1)
    return np.where(np.isfinite(e), e, np.inf)


def keypoint_nmae(uv_est: np.ndarray, uv_gt: np.ndarray, width: int, height: int) -> float:
    """The seed's normalised mean absolute error of keypoints (N, 2) or stacked (M, N, 2)
    (our pixels, centres at integers): both are put in the seed's normalised
    pixel-edge coordinates (:func:`~xwing.geometry.projection.seed_normalised`), then
    ``mean(|x_est - x_gt|, |y_est - y_gt|)`` over every keypoint and both axes. The
    half-pixel shift cancels in the difference; it is applied so the coordinates are
    the seed's. Any non-finite estimate makes it inf; no keypoints: NaN.
    """
    est = seed_normalised(uv_est, width, height)  # (M N, 2)
    gt = seed_normalised(uv_gt, width, height)
    if est.shape != gt.shape:
        raise ValueError(f"keypoint shapes differ: {np.shape(uv_est)} vs {np.shape(uv_gt)}")
    if est.size == 0:
        return float("nan")
    d = np.abs(est - gt)
    return float(d.mean()) if np.all(np.isfinite(d)) else float("inf")


def pck(uv_est: np.ndarray, uv_gt: np.ndarray, threshold_px: float, mask: np.ndarray | None = None) -> float:
    """Percentage of Correct Keypoints (as a fraction): share within ``threshold_px``.

    ``uv_*`` may be (N, 2) or (M, N, 2) stacked images; ``mask`` selects keypoints.
    """
    e = keypoint_errors_px(uv_est, uv_gt)
    if mask is not None:
        e = e[np.asarray(mask, bool).reshape(-1)]
    return float(np.mean(e <= threshold_px)) if e.size else float("nan")


def within_diameter(err: float, diameter: float, fraction: float = 0.1) -> bool:
    """The ADD/ADI success test: ``err < fraction * diameter``."""
    return bool(err < fraction * diameter)
