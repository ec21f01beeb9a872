"""Poses a chosen image distance away from a true pose: start points for refinement tests.

Conventions: poses are (4, 4) ``T_cam_obj`` (model frame -> OpenCV camera frame,
:mod:`xwing.geometry.pose`); ``K`` is the (3, 3) intrinsic matrix; ``corners`` are
(N, 3) model points (the box corners) in the model frame. The distance between two
poses is the mean pixel distance of the projected corners, so a "3 px start" means
the same thing for near and far, large and small ships.

The perturbation is a twist applied on the left (``se3_exp(s * xi) @ T``) along a
random unit direction in which translation is measured in units of the box's
half-diagonal: rotation and translation then move the image alike, and neither
dominates the random direction.
"""

from __future__ import annotations

import math

import numpy as np

from xwing.geometry.pose import se3_exp
from xwing.geometry.projection import project_points


def perturb_to_error(T_gt: np.ndarray, K: np.ndarray, corners: np.ndarray, target_px: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A pose whose box corners lie ``target_px`` (mean) from ``T_gt``'s, along a random SE(3)
    direction (translation in units of the box's half-diagonal, so that rotation and
    translation move the image alike) -> (T_start (4, 4), its mean corner error in px)."""
    uv_gt = project_points(corners, T_gt, K)
    r = 0.5 * float(np.linalg.norm(np.ptp(corners, axis=0)))
    xi = np.concatenate([rng.normal(size=3) * r, rng.normal(size=3)])
    xi /= np.linalg.norm(xi)

    def err(s):
        T = se3_exp(s * xi) @ T_gt
        if np.min(corners @ T[2, :3] + T[2, 3]) <= 1e-3:  # a corner at or behind the camera
            return math.inf
        return float(np.linalg.norm(project_points(corners, T, K) - uv_gt, axis=1).mean())

    # The error grows with the step along xi: double the step until it overshoots, then bisect.
    lo, hi = 0.0, 1e-3
    while err(hi) < target_px and hi < 10.0:
        lo, hi = hi, hi * 2.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if err(mid) < target_px:
            lo = mid
        else:
            hi = mid
    s = 0.5 * (lo + hi)
    return se3_exp(s * xi) @ T_gt, err(s)
