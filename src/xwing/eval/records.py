"""One evaluated image or video frame (:class:`ImageRecord`) and the object's model points.

A record holds what every summary needs from one image: the true and estimated
poses, the seed's 8 box corners projected with both, the raw network keypoint
errors and the time. An image without a pose has ``T_est`` None and NaN
estimated corners, so every error of it is infinite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from xwing.geometry.metrics import keypoint_errors_px
from xwing.geometry.projection import in_image, project_points
from xwing.model.keypoints import SEED_BOX_CORNERS, model_diameter
from xwing.model.object import N_MODEL_POINTS, ObjectModel


@lru_cache(maxsize=4)
def model_points(mesh_path: str = "", fit_seed_box: bool = False, n: int = 500
                 ) -> tuple[np.ndarray, float, np.ndarray]:
    """(surface points (n, 3) for ADD/ADI, their diameter, mesh vertices (V, 3) for visibility)
    of the :class:`~xwing.model.object.ObjectModel` (default: the procedural X-wing, numpy only)."""
    obj = ObjectModel.load(mesh_path, fit_seed_box)
    pts = obj.model_points if n == N_MODEL_POINTS else obj.mesh.surface_points(n, seed=0)
    return pts, (obj.diameter if n == N_MODEL_POINTS else model_diameter(pts)), obj.vertices


@dataclass
class ImageRecord:
    """One evaluated image (or video frame).

    Attributes:
        T_gt: (4, 4) true pose; T_est: (4, 4) estimate or None (no pose).
        corners_gt, corners_est: (8, 2) projected box corners (est NaN when no pose).
        in_image, n_inside: all true corners inside the image; how many are.
        net_err_px: (K,) raw network keypoint errors (image px), or None.
        ms: time for this image.
        stages: stage name -> (8,) corner errors of that pass's pose (for per-stage stats).
        clutter: :func:`xwing.eval.summary.background_clutter` of the image (NaN: not measured).
        index: the image's N (``N.jpg``), -1 where not known; score: the estimate's quality.
        confidence, roll_ambiguous: the estimate's (:mod:`xwing.infer.confidence`).
    """

    T_gt: np.ndarray
    T_est: np.ndarray | None
    corners_gt: np.ndarray
    corners_est: np.ndarray
    in_image: bool
    n_inside: int = 8
    net_err_px: np.ndarray | None = None
    ms: float = math.nan
    stages: dict = field(default_factory=dict)
    stage_ms: dict = field(default_factory=dict)
    clutter: float = math.nan
    index: int = -1
    score: float = math.nan
    confidence: float = math.nan
    roll_ambiguous: bool = False

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self.T_gt[:3, 3]))

    @property
    def corner_err(self) -> np.ndarray:
        if self.T_est is None:
            return np.full(8, np.inf)
        return keypoint_errors_px(self.corners_est, self.corners_gt)


def make_record(T_est: np.ndarray | None, T_gt: np.ndarray, camera, corners_3d: np.ndarray = SEED_BOX_CORNERS,
                uv_net: np.ndarray | None = None, points_3d: np.ndarray | None = None,
                ms: float = math.nan) -> ImageRecord:
    corners_gt = project_points(corners_3d, T_gt, camera.K, camera.dist)
    corners_est = (np.full((8, 2), np.nan) if T_est is None
                   else project_points(corners_3d, T_est, camera.K, camera.dist))
    net_err = None
    if uv_net is not None and points_3d is not None:
        net_err = keypoint_errors_px(uv_net, project_points(points_3d, T_gt, camera.K, camera.dist))
    inside = in_image(corners_gt, camera.width, camera.height)
    return ImageRecord(T_gt, T_est, corners_gt, corners_est, bool(inside.all()), int(inside.sum()), net_err, ms)


def ship_in_view(T_gt: np.ndarray, camera, min_share: float = 0.5, mesh: tuple[str, bool] = ("", False)) -> bool:
    """At least ``min_share`` of the mesh's projected vertices inside the image."""
    _, _, verts = model_points(*mesh)
    uv = project_points(verts, T_gt, camera.K, camera.dist)
    return bool(in_image(uv, camera.width, camera.height).mean() >= min_share)
