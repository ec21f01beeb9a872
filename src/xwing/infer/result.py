"""What the estimator says: one detector pass (:class:`PassResult`) and the answer for an image
(:class:`PoseEstimate`). Refiners take and return passes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from xwing.geometry.crop import CropMap


@dataclass
class PassResult:
    """One detector pass and its PnP (kept for per-stage evaluation).

    Attributes:
        stage: "first", "locate" or "zoom1", "zoom2", ...
        crop: image -> input map used.
        ok, T_cam_obj, quality, reproj_err_px (image px), reproj_err_in_px (input px).
        uv_px: (K, 2) network keypoints in image pixels; conf (K,); presence.
        ms: wall time of the pass (crop, detector, PnP; for "align": the alignment).
        p_top: the side classifier's probability that the top faces the camera (NaN: not asked).
        net_ms: the part of ``ms`` spent cutting the crop and running the network.
        edge_score: "align" passes: the alignment's edge score (NaN otherwise).
    """

    stage: str
    crop: CropMap
    ok: bool
    T_cam_obj: np.ndarray
    uv_px: np.ndarray
    conf: np.ndarray
    presence: float
    inliers: np.ndarray
    reproj_err_px: float
    reproj_err_in_px: float
    quality: float
    reason: str = ""
    ms: float = 0.0
    p_top: float = math.nan
    net_ms: float = 0.0
    edge_score: float = math.nan


@dataclass
class PoseEstimate:
    """The answer for one image.

    Attributes:
        ok: a pose was found and accepted.
        T_cam_obj: (4, 4) object -> OpenCV camera (identity when not ok).
        corners_px: (8, 2) box corners projected with the pose (NaN when not ok),
            image pixels, lens distortion applied.
        uv_px, conf: (K, 2), (K,) the final pass's network keypoints in image pixels.
        presence: the final pass's presence score.
        inliers: (K,) bool.
        reproj_err_px: inlier RMS reprojection error in image pixels.
        quality: see the module doc; 0 when not ok.
        reason: why not ok.
        passes: every pass, first to last (the last accepted one gave the pose).
        confidence: calibrated probability that the pose is correct (rotation < 5 deg,
            corner median < 2 px; :mod:`xwing.infer.confidence`); NaN without a calibration
            or a pose.
        p_top: the side cue at the final pose (NaN: none).
        roll_ambiguous: the top/bottom evidence at the pose is weak (True without a pose).
    """

    ok: bool
    T_cam_obj: np.ndarray
    corners_px: np.ndarray
    uv_px: np.ndarray
    conf: np.ndarray
    presence: float
    inliers: np.ndarray
    reproj_err_px: float
    quality: float
    reason: str = ""
    passes: list[PassResult] = field(default_factory=list)
    confidence: float = math.nan
    p_top: float = math.nan
    roll_ambiguous: bool = True

    @property
    def n_inliers(self) -> int:
        return int(np.count_nonzero(self.inliers))
