"""Frame-to-frame tracking: predict, look where the ship will be, measure, smooth, recover.

Per frame (:meth:`Tracker.step`)::

    T_pred = filter prediction (constant body-frame velocity on SE(3))
    crop   = box at T_pred filling `fill` of a `track_size` input   (small input: fast;
                                                                     small ships seen larger)
    T_meas = detector on crop -> PnP (the pipeline's fast path; both roll hypotheses
             where the detector is unsure, the one nearer T_pred wins)
    gate   : pass accepted, and T_meas within max_jump of T_pred
    else   : the prediction for up to `coast_frames` frames -> "predicted",
             then a full-frame search (PoseEstimator.estimate) -> "detected", or "lost"
    [refine="full": T_meas (or, for a jumping frame, T_pred) aligned with the image
             (xwing.infer.refine.align); an aligned pose is output as is, the filter only learns from it]
    T_out  = filtered T_meas (reset on "detected")

The crop at the predicted pose *is* the zoomed pass of :mod:`xwing.infer.estimator`:
the ship fills the input whatever its size in the frame, so tracking needs no
extra refinement pass. Statuses: ``tracked`` (measured in the crop at the
predicted pose), ``predicted`` (the measurement jumped; the motion model's pose),
``detected`` (found by a full-frame search), ``lost`` (no pose; never an
exception). ``per_frame=True`` turns all of it off: every frame is estimated on
its own. The measured modes and how the defaults were chosen: ``docs/tracking.md``.

Filters (``TrackerConfig.filter``, :mod:`xwing.track.filters`): ``alphabeta`` (default) or
``oneeuro``; ``smooth`` scales their strength (0: off).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from xwing.config import SavedConfig
from xwing.defaults import DEFAULT_MODEL, DEFAULT_THREADS
from xwing.errors import XwingError
from xwing.geometry.pose import invert_T, rotation_angle_deg
from xwing.geometry.projection import project_points
from xwing.infer.confidence import confidence_features
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.infer.refine import REFINE_MODES
from xwing.infer.result import PassResult, PoseEstimate
from xwing.model.symmetry import roll_llr, rolled
from xwing.track.filters import FILTERS
from xwing.track.segments import RollEvidence, decide_rolls

STATUSES = ("tracked", "predicted", "detected", "lost")


@dataclass(frozen=True)
class TrackerConfig(SavedConfig):
    """Attributes:
        track_size: network input side for crops at the predicted pose (multiple of 32).
        fill: share of the crop's side the predicted box spans; 0: the estimator's
            :attr:`~xwing.infer.estimator.PoseEstimator.crop_fill` (the training crops' scale).
        smooth: smoothing strength (0: off, 1: default, 2: twice as strong at rest).
        filter: "alphabeta" (constant-velocity, no lag on steady motion; default) or
            "oneeuro" (plain adaptive low-pass).
        min_cutoff_hz, beta_rot, beta_trans, d_cutoff_hz: adaptive-gain parameters (see the
            filters); the defaults were chosen on rendered flights (``docs/tracking.md``).
        noise_ref: alphabeta only: a measurement's angular noise (rad), estimated as its
            reprojection RMS over the ship's size in pixels, divides the minimum cut-off
            by ``noise / noise_ref`` (clipped to 0.1-10): precise measurements are smoothed
            less, which removes the lag plain smoothing adds to good measurements; 0: off.
        max_jump_deg, max_jump_rel: a measurement further than this from the prediction
            (rotation; translation relative to the distance) is rejected.
        per_frame: no tracking: every frame on its own.
        coast_frames: a measurement that jumps past ``max_jump`` while the ship is still
            seen in the crop is replaced by the prediction ("predicted") for up to this
            many frames in a row before a full-frame search; 0: search at once.
        roll_decide_llr: the roll of a track is one unknown per segment
            (:mod:`xwing.track.segments`); where the estimator has a side classifier
            (:mod:`xwing.infer.side`), every frame with a pose adds its evidence
            (:func:`xwing.model.symmetry.roll_llr`), the roll counts as decided at this
            many nats, and the track is turned over (``T @ T_ROLL180``) where the evidence
            against the roll it shows reaches it. 0: never turned while tracking
            (:func:`xwing.track.segments.decide_rolls` can still decide afterwards).
        segment_gap: a re-detection within this many frames of the segment's last pose
            that agrees with it up to the roll continues the segment (taking the
            track's roll) instead of starting a new one.
    """

    track_size: int = 128
    fill: float = 0.0
    smooth: float = 1.0
    min_cutoff_hz: float = 3.0
    beta_rot: float = 5.0
    beta_trans: float = 20.0
    d_cutoff_hz: float = 1.0
    max_jump_deg: float = 45.0
    max_jump_rel: float = 0.2
    per_frame: bool = False
    filter: str = "alphabeta"
    noise_ref: float = 0.02
    roll_decide_llr: float = 4.0
    segment_gap: int = 15
    coast_frames: int = 2

    def __post_init__(self):
        if self.filter not in FILTERS:
            raise XwingError(f"filter must be one of {', '.join(FILTERS)}, got '{self.filter}'")
        if self.track_size < 32 or self.track_size % 32:
            raise XwingError(f"track size must be a multiple of 32 (>= 32), got {self.track_size}")
        if self.smooth < 0:
            raise XwingError(f"smoothing strength must be >= 0, got {self.smooth}")


@dataclass
class FrameResult:
    """What the tracker says about one frame.

    Attributes:
        index, time_s: frame number and time.
        status: "tracked", "predicted" (the motion model's pose, the measurement having
            jumped), "detected" or "lost".
        T_cam_obj: (4, 4) smoothed pose, or None when lost.
        T_meas: (4, 4) the raw measurement, or None.
        corners_px: (8, 2) box corners projected with ``T_cam_obj`` (NaN when lost).
        corner_conf: (8,) confidence per corner (the network's own where it predicts
            the corners, else the measurement's mean inlier confidence).
        reproj_err_px: the measurement's inlier RMS reprojection error (image px).
        quality: the measurement's quality figure (0 when lost).
        passes: detector passes run for this frame.
        uv_px: (K, 2) the measurement's network keypoints in image pixels (None when lost).
        rolled: the track was turned over (roll) at this frame.
        unreadable: the frame could not be read (a damaged image): "lost", no pose.
        p_top: the side cue's probability that the top faces the camera at the pose
            (NaN where not asked).
        roll_llr: evidence (log-odds) that the pose has the right roll.
        segment: the track segment (:mod:`xwing.track.segments`); -1 outside any.
        parity: the pose's roll relative to the segment's reference (0 or 1).
        roll_decided: the segment's roll evidence had reached ``roll_decide_llr``
            (causal: by this frame; after :func:`~xwing.track.segments.decide_rolls`:
            over the whole segment).
        edge_score: the alignment's edge score where the pose is aligned (NaN otherwise).
        confidence: the estimator's calibrated confidence in the frame's measurement
            (:mod:`xwing.infer.confidence`; NaN without a calibration or a pose). Its roll
            is the track's: ``roll_decided`` says whether that is settled.
        stage_ms: milliseconds per stage of this frame (:func:`stage_times`; "read" is
            added by the frame loop that read it).
    """

    index: int
    time_s: float
    status: str
    T_cam_obj: np.ndarray | None
    T_meas: np.ndarray | None
    corners_px: np.ndarray
    corner_conf: np.ndarray
    reproj_err_px: float
    quality: float
    passes: list[PassResult] = field(default_factory=list)
    uv_px: np.ndarray | None = None
    rolled: bool = False
    unreadable: bool = False
    p_top: float = math.nan
    roll_llr: float = 0.0
    segment: int = -1
    parity: int = 0
    roll_decided: bool = False
    edge_score: float = math.nan
    confidence: float = math.nan
    stage_ms: dict = field(default_factory=dict)


def stage_times(passes: list[PassResult], side_ms: float, filter_ms: float, total_ms: float) -> dict:
    """Milliseconds of a frame per stage: ``network`` (crops and the network, every pass),
    ``pnp`` (PnP and the choice between hypotheses), ``align`` (silhouette alignment),
    ``side`` (the side cue), ``filter`` (prediction and smoothing), ``other`` (the rest
    of ``total_ms``: crops planned, corners projected, bookkeeping)."""
    net = sum(p.net_ms for p in passes if p.stage != "align")
    pnp = sum(p.ms - p.net_ms for p in passes if p.stage != "align")
    align = sum(p.ms for p in passes if p.stage == "align")
    known = net + pnp + align + side_ms + filter_ms
    return {"network": net, "pnp": pnp, "align": align, "side": side_ms, "filter": filter_ms,
            "other": max(total_ms - known, 0.0)}


class Tracker:
    """Stateful tracker over consecutive frames of one camera.

    Args:
        estimator: a :class:`~xwing.infer.estimator.PoseEstimator` (detector + camera + settings).
        config: :class:`TrackerConfig`.
        fps: the video's frame rate (the filter's time step is ``1 / fps``).
    """

    def __init__(self, estimator: PoseEstimator, config: TrackerConfig = TrackerConfig(), fps: float = 30.0):
        self.estimator = estimator
        self.config = config
        self.dt = 1.0 / float(fps)
        self.results: list[FrameResult] = []  # what track() has yielded, for finish()
        self.filter = FILTERS[config.filter](config.min_cutoff_hz / config.smooth if config.smooth > 0 else math.inf,
                           config.beta_rot, config.beta_trans, config.d_cutoff_hz)
        self._corner_ids = self._match_corners(estimator)
        self.roll = RollEvidence(config.roll_decide_llr)
        self._seg_last: tuple[np.ndarray, int] | None = None  # (the segment's last pose, its frame)
        self.reset()

    @classmethod
    def from_model(cls, model: str = DEFAULT_MODEL, camera=None, config: TrackerConfig = TrackerConfig(),
                   pipeline: PipelineConfig | None = None, fps: float = 30.0, threads: int | None = DEFAULT_THREADS,
                   providers: list[str] | None = None) -> Tracker:
        """A tracker for a model file, as ``xwing track`` builds it.

        ``camera`` None: the model's camera carried to the first frame's size
        (:meth:`PoseEstimator.from_model`); ``pipeline`` default: the commands'
        (``refine="full"``). Use :meth:`track` and :meth:`finish`.
        """
        return cls(PoseEstimator.from_model(model, camera, pipeline, threads, providers), config, fps)

    def track(self, frames) -> Iterator[FrameResult]:
        """Track ``frames`` (an iterable of RGB uint8 frames (H, W, 3), or a video file, image
        or sequence directory) -> one causal :class:`FrameResult` per frame, as it comes
        (``roll_decided`` says whether its track's roll is settled yet). :meth:`finish`
        gives the poses with each segment's roll decided from all its frames.
        """
        if isinstance(frames, (str, Path)):
            from xwing.io.video import open_source

            source = open_source(frames)
            frames = (f for _, _, f in source.frames())
        start = len(self.results)
        for k, frame in enumerate(frames):
            i = start + k
            if frame is not None:
                self.estimator.fit_camera(frame.shape[1], frame.shape[0])
            r = self.step(frame, i, i * self.dt)
            self.results.append(r)
            yield r

    def finish(self) -> list[FrameResult]:
        """Every frame :meth:`track` has yielded, each segment's roll decided from all its
        frames (:func:`xwing.track.segments.decide_rolls`)."""
        cam = self.estimator.camera
        return decide_rolls(self.results, self.estimator.corners_3d, cam.K, cam.dist, self.config.roll_decide_llr)

    @staticmethod
    def _match_corners(estimator: PoseEstimator) -> np.ndarray | None:
        """(8,) index of each box corner among the detector's points, or None if it predicts others."""
        P, C = estimator.points_3d, estimator.corners_3d
        d = np.linalg.norm(C[:, None, :] - P[None, :, :], axis=2)  # (8, K)
        idx = d.argmin(axis=1)
        return idx if np.all(d[np.arange(8), idx] < 1e-6) else None

    def reset(self) -> None:
        self.T_last: np.ndarray | None = None  # last raw measurement
        self.T_before: np.ndarray | None = None  # the one before it
        self._coasted = 0  # consecutive "predicted" frames
        self.filter.reset()

    def predict(self) -> np.ndarray | None:
        """Predicted pose (4, 4) for the next frame, or None without history.

        From the alpha-beta filter's state where it runs (its velocity is smoothed, so
        the prediction does not double the measurement noise), else constant
        velocity from the last two measurements."""
        if self.T_last is None:
            return None
        if not self.config.per_frame and self.config.smooth > 0:
            T = self.filter.predict()
            if T is not None:
                return T
        if self.T_before is None:
            return self.T_last.copy()
        return self.T_last @ (invert_T(self.T_before) @ self.T_last)

    def _consistent(self, T_meas: np.ndarray, T_pred: np.ndarray) -> bool:
        cfg = self.config
        rot = rotation_angle_deg(T_meas[:3, :3] @ T_pred[:3, :3].T)
        rel = np.linalg.norm(T_meas[:3, 3] - T_pred[:3, 3]) / max(np.linalg.norm(T_pred[:3, 3]), 1e-6)
        return rot <= cfg.max_jump_deg and rel <= cfg.max_jump_rel

    def step(self, frame: np.ndarray | None, index: int = 0, time_s: float = 0.0) -> FrameResult:
        """Process one RGB frame (H, W, 3) -> :class:`FrameResult` (with the time of each stage).

        ``frame`` None is a frame that could not be read (a damaged image): "lost" and
        marked ``unreadable``; the track restarts after it, since the motion model's
        step would be off by the missing frame."""
        if frame is None:
            self.reset()
            return FrameResult(index, time_s, "lost", None, None, np.full((8, 2), np.nan), np.zeros(8), math.inf,
                               0.0, unreadable=True)
        t0 = time.perf_counter()
        self._side_ms = self._filter_ms = 0.0
        r = self._step(frame, index, time_s)
        r.stage_ms = stage_times(r.passes, self._side_ms, self._filter_ms, (time.perf_counter() - t0) * 1e3)
        if r.passes and r.passes[-1].stage == "align":
            r.edge_score = r.passes[-1].edge_score
        return r

    def _step(self, frame: np.ndarray, index: int, time_s: float) -> FrameResult:
        est = self.estimator
        cfg = self.config
        passes: list[PassResult] = []
        status, meas = "lost", None
        known_p_top = math.nan  # the side cue at the detection's pose, where the estimator asked it
        t_f = time.perf_counter()
        T_pred = None if cfg.per_frame else self.predict()
        self._filter_ms += (time.perf_counter() - t_f) * 1e3
        if T_pred is not None:
            crop = est.zoom_crop(T_pred, cfg.track_size, fill=cfg.fill or None)
            p = est.run_pass(frame, crop, "track", T_init=T_pred)
            passes.append(p)
            if p.ok and self._consistent(p.T_cam_obj, T_pred):
                status, meas = "tracked", self._aligned(frame, p, T_pred, passes)
            elif p.ok and self._coasted < cfg.coast_frames:
                # The ship is in the crop but the measurement jumped: trust the motion for
                # a frame or two rather than a full search that would restart the track
                # from whatever this frame's keypoints say (in accuracy mode, the
                # prediction aligned with the image is a measurement of its own).
                at_pred = replace(p, T_cam_obj=T_pred)
                aligned = self._aligned(frame, at_pred, T_pred, passes)
                if aligned is at_pred:
                    self._coasted += 1
                    return self._predicted(T_pred, p, index, time_s, passes)
                status, meas = "tracked", aligned
        self._coasted = 0
        if meas is None:
            full: PoseEstimate = est.estimate(frame)
            passes.extend(full.passes)
            if full.ok:
                status = "detected"
                meas = next(q for q in reversed(full.passes) if q.ok)
                known_p_top = full.p_top
                self.reset()
        if meas is None:
            self.reset()
            return FrameResult(index, time_s, "lost", None, None, np.full((8, 2), np.nan), np.zeros(8),
                               math.inf, 0.0, passes)
        T_meas = self._place_in_segment(status, meas.T_cam_obj, index)
        # Relabelled to the track's roll, the pose is another one: the cue is asked there.
        p_top, llr = self._side_evidence(frame, T_meas, known_p_top if T_meas is meas.T_cam_obj else math.nan)
        turned = False
        if not cfg.per_frame:
            self.roll.add(llr)
            if self.roll.should_turn():
                T_meas, llr, turned = rolled(T_meas), -llr, True
                self.roll.turn()
                self.reset()
        self.T_before, self.T_last = self.T_last, T_meas
        t_f = time.perf_counter()
        if cfg.per_frame or cfg.smooth == 0:
            T_out = T_meas.copy()
        else:
            noise_scale = 1.0
            if cfg.noise_ref > 0:
                # How noisy is this measurement? Reprojection RMS over the ship's size in the
                # image approximates its angular noise (rad): precise ones are smoothed less.
                ext = project_points(est.extent_3d, T_meas, est.camera.K)
                size_px = float(np.max(ext.max(axis=0) - ext.min(axis=0)))
                sigma = max(meas.reproj_err_px, 1e-3) / max(size_px, 1.0)
                noise_scale = float(np.clip(sigma / cfg.noise_ref, 0.1, 10.0))
            T_out = self.filter.update(T_meas, self.dt, noise_scale)
            if meas.stage == "align":
                # An aligned pose is already better than any blend with the motion model;
                # the filter still learns from it for the next prediction.
                T_out = T_meas.copy()
        self._filter_ms += (time.perf_counter() - t_f) * 1e3
        cam = est.camera
        corners = project_points(est.corners_3d, T_out, cam.K, cam.dist)
        if self._corner_ids is not None:
            corner_conf = meas.conf[self._corner_ids]
        else:
            corner_conf = np.full(8, float(meas.conf[meas.inliers].mean()) if meas.inliers.any() else 0.0)
        seg = -1 if cfg.per_frame else self.roll.segment
        if seg >= 0:
            self._seg_last = (T_out, index)
        confidence = math.nan
        if est.confidence is not None:
            confidence = float(est.confidence(confidence_features(passes, T_meas, p_top, est.corners_3d, cam.K,
                                                                  est.edge_on_weight)))
        return FrameResult(index, time_s, status, T_out, T_meas, corners, corner_conf, meas.reproj_err_px,
                           meas.quality, passes, meas.uv_px, turned, p_top=p_top, roll_llr=llr, segment=seg,
                           parity=self.roll.parity, roll_decided=seg >= 0 and self.roll.decided,
                           confidence=confidence)

    def _aligned(self, frame: np.ndarray, meas: PassResult, T_pred: np.ndarray,
                 passes: list[PassResult]) -> PassResult:
        """``meas`` refined by the refiners of the estimator's mode that run in tracking (in
        ``full``, the alignment; the passes are added to ``passes``); ``meas`` itself where
        none runs or all reject it. Detections are refined inside
        :meth:`PoseEstimator.estimate` already."""
        est = self.estimator
        for refiner in REFINE_MODES[est.config.refine].refiners:
            if refiner.in_tracking:
                done = refiner.refine(est, frame, meas, T_pred=T_pred)
                passes.extend(done)
                meas = next((q for q in reversed(done) if q.ok), meas)
        return meas

    def _predicted(self, T_pred: np.ndarray, p: PassResult, index: int, time_s: float,
                   passes: list[PassResult]) -> FrameResult:
        """A "predicted" frame: the prediction is the answer; the filter moves on with it."""
        self.filter.coast(T_pred)
        self.T_before, self.T_last = self.T_last, T_pred
        cam = self.estimator.camera
        corners = project_points(self.estimator.corners_3d, T_pred, cam.K, cam.dist)
        self._seg_last = (T_pred.copy(), index)
        return FrameResult(index, time_s, "predicted", T_pred.copy(), None, corners, np.zeros(8), math.inf, 0.0,
                           passes, p.uv_px, segment=self.roll.segment, parity=self.roll.parity,
                           roll_decided=self.roll.decided)

    def _place_in_segment(self, status: str, T_meas: np.ndarray, index: int) -> np.ndarray:
        """Continue the current segment or start one; a re-detection that agrees with the
        segment's last pose only rolled takes the track's roll. -> the pose to use."""
        if self.config.per_frame:
            return T_meas
        if status != "detected" and self.roll.segment >= 0:
            return T_meas
        last = self._seg_last
        if last is not None and 0 < index - last[1] <= self.config.segment_gap:
            if self._consistent(T_meas, last[0]):
                return T_meas
            if self._consistent(rolled(T_meas), last[0]):
                return rolled(T_meas)
        self.roll.start()
        return T_meas

    def _side_evidence(self, frame: np.ndarray, T_meas: np.ndarray,
                       known_p_top: float = math.nan) -> tuple[float, float]:
        """(p_top, roll_llr) at ``T_meas``; (NaN, 0) without a side classifier. ``known_p_top``:
        the cue's answer at ``T_meas`` already (a detection's), not asked again."""
        side = self.estimator.side
        if side is None or self.config.per_frame:
            return math.nan, 0.0
        if math.isfinite(known_p_top):
            return known_p_top, roll_llr(known_p_top, T_meas, side.edge_on_weight)
        t0 = time.perf_counter()
        cam = self.estimator.camera
        p = float(side.p_top(frame, T_meas, cam.K, cam.dist))
        self._side_ms += (time.perf_counter() - t0) * 1e3
        return p, roll_llr(p, T_meas, side.edge_on_weight)
