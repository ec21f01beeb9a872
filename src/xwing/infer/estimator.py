"""One image + camera -> pose: crop to the network input, detect, map back, PnP, quality.

The way through (every map between pixel grids is an exact :class:`~xwing.geometry.crop.CropMap`,
pixel centres at integers on both sides)::

    image (H, W, 3) --letterbox--> input (S, S, 3) --detector--> uv_in (K, 2), conf (K,), presence
        uv_img = crop.crop_to_image(uv_in)                      (K, 2) image pixels, exact
        T_cam_obj = PnP(uv_img, points_3d, K, dist, conf)       robust, confidence-weighted
        [refine="zoom": crop around the projected ship so that it fills the input,
         detect again, PnP again; repeat while the crop still moves]
        [refine="full": then align the mesh's silhouette with the image (xwing.infer.refine.align);
         a failed alignment keeps the zoomed pose]

Frames much larger than the network input are first searched at low
resolution (the letterbox), then the ship is cut out at native resolution
("locate" pass), as the tracker does with its predicted pose.

PnP is :func:`xwing.geometry.pnp.solve_pnp` (a 0.2 ms fast path; RANSAC only when the
fast answer leaves outliers or a large residual), with the tracker's prediction
as its prior. Thresholds are in network-input pixels, the unit in which a network
errs, so they mean the same for a tiny ship seen zoomed and a big one seen shrunk.

Quality figure (in [0, 1])::

    quality = presence * inlier_share * mean_inlier_conf / (1 + (rms_in / 2 px)^2)

with ``rms_in`` the inliers' RMS reprojection error in input pixels. A pose is
accepted (``ok``) only if PnP found one, ``presence >= min_presence``, at least
``min_inliers`` keypoints agree, ``rms_in <= max_reproj_px`` and every box
corner lies in front of the camera.

Detectors follow the interface of :mod:`xwing.infer.detector`; one that defines
``set_crop(crop_map)`` (the oracle) is told where each input came from.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xwing.config import SavedConfig
from xwing.defaults import DEFAULT_MODEL, DEFAULT_REFINE, DEFAULT_THREADS
from xwing.errors import XwingError
from xwing.geometry.camera import Camera, seed_camera
from xwing.geometry.crop import CropMap, crop_around, crop_for_points, letterbox
from xwing.geometry.pnp import angle_between_deg, planar_alternatives, reprojection_errors, solve_pnp
from xwing.geometry.projection import project_points
from xwing.infer.confidence import (
    ROLL_AMBIGUOUS_LLR,
    ConfidenceModel,
    confidence_features,
    confidence_file_for,
    roll_ambiguous,
)
from xwing.infer.refine import REFINE_MODES
from xwing.infer.refine.align import TRACKING, AlignRefiner, align
from xwing.infer.result import PassResult, PoseEstimate
from xwing.infer.side import SideClassifier, side_file_for
from xwing.model.object import ObjectModel
from xwing.model.symmetry import pick_roll, roll_llr, rolled

#: a pose this far (degrees) from the prior makes the pipeline try the roll-relabelled keypoints
ROLL_CHECK_DEG = 60.0
#: the side classifier decides the roll where its probability is at least this far from 0.5
SIDE_MIN_MARGIN = 0.15
#: An aligned pose is turned over (and aligned again) where the side cue at it gives the other
#: roll evidence that is not ambiguous (:data:`xwing.infer.confidence.ROLL_AMBIGUOUS_LLR`): its
#: roll was chosen at a rougher pose.
ROLL_REJUDGE_LLR = ROLL_AMBIGUOUS_LLR
#: with a prior, a pose this far (degrees) from it makes the pipeline try the flat ship's other PnP minimum
TILT_CHECK_DEG = 10.0


@dataclass(frozen=True)
class PipelineConfig(SavedConfig):
    """Single-image pose estimation settings (saved beside outputs as JSON).

    Attributes:
        input_size: network input side for the first (whole-frame) pass; 0: the detector's.
        refine: "none" (first pass only), "zoom" (plus zoomed passes) or "full" (plus
            model-based alignment of the mesh's silhouette, :mod:`xwing.infer.refine.align`).
        zoom_size: input side of zoomed passes; 0: ``input_size``.
        zoom_fill: share of the crop's side that the projected box spans; 0: as in the
            network's training crops (``crop_fill`` in its metadata, midpoint), else
            0.5625, the middle of the data engine's default 0.5-0.625, so the network
            sees the ship at the scale it learned.
        zoom_max_passes: zoomed passes at most.
        locate_below: a first pass that shrinks the frame below this scale is followed
            by a crop at native resolution around the ship ("find at low resolution").
        min_conf: keypoints below this confidence are not used.
        min_presence: below this presence score the ship is "not in view".
        inlier_px: PnP inlier threshold, input pixels.
        max_reproj_px: accept a pose only if its inlier RMS error (input px) is below.
        min_inliers: accept a pose only with at least this many agreeing keypoints.
        mesh: the model's mesh file for alignment (OBJ/PLY/GLB/STL/OFF, read with
            trimesh); "": the procedural X-wing (numpy only).
        fit_seed_box: scale ``mesh`` per axis onto the seed's box, as ``xwing render
            --fit-seed-box`` did when its training data were made.
        native_retry: when the first pass finds nothing in a frame it had to shrink,
            search once more at the frame's own resolution (small ships), or at
            ``native_max_side`` where the frame is larger.
        native_max_side: the largest input side of that search: a network pass costs
            its input's area, and a 4K frame whole would cost 200 first passes
            (seconds and gigabytes) for every frame the ship is not found in.
        side: the top/bottom classifier that settles the roll (:mod:`xwing.infer.side`):
            "auto" (the ``.side.npz`` file beside the ONNX model, where there is one),
            "none", or a file.
        confidence: the calibration of ``PoseEstimate.confidence`` (:mod:`xwing.infer.confidence`):
            "auto" (the ``.confidence.json`` file beside the ONNX model, where there is one),
            "none" (confidence NaN), or a file.
    """

    input_size: int = 0
    refine: str = "none"
    zoom_size: int = 0
    zoom_fill: float = 0.0
    zoom_max_passes: int = 3
    locate_below: float = 0.75
    min_conf: float = 0.3
    min_presence: float = 0.5
    inlier_px: float = 4.0
    max_reproj_px: float = 3.0
    min_inliers: int = 5
    mesh: str = ""
    fit_seed_box: bool = False
    side: str = "auto"
    confidence: str = "auto"
    native_retry: bool = True
    native_max_side: int = 1024

    def __post_init__(self):
        if self.refine not in REFINE_MODES:
            raise XwingError(f"refine must be one of {', '.join(REFINE_MODES)}, got '{self.refine}'")
        for name in ("input_size", "zoom_size", "native_max_side"):
            v = getattr(self, name)
            if v and (v < 32 or v % 32):
                raise XwingError(f"{name} must be a multiple of 32 (>= 32), got {v}")


# --- the estimator --------------------------------------------------------------------------------


class PoseEstimator:
    """A detector + a camera -> poses of single images.

    Args:
        detector: object with the :mod:`xwing.infer.detector` interface.
        camera: the images' camera (size must match the images).
        config: :class:`PipelineConfig`.
        object_model: the :class:`~xwing.model.object.ObjectModel` (default: the one of
            ``config.mesh``, the procedural X-wing when that is empty).
        corners_3d: (8, 3) box corners reported in every output (default: the object model's).
    """

    def __init__(self, detector, camera: Camera, config: PipelineConfig = PipelineConfig(),
                 corners_3d: np.ndarray | None = None, object_model: ObjectModel | None = None):
        self.detector = detector
        self.camera = camera
        self.config = config
        self.points_3d = np.asarray(detector.points_3d, dtype=np.float64).reshape(-1, 3)
        # A bad mesh file fails here, before any work.
        self.object_model = object_model or ObjectModel.load(config.mesh, config.fit_seed_box)
        if corners_3d is None:
            corners_3d = self.object_model.box_corners
        self.corners_3d = np.asarray(corners_3d, dtype=np.float64).reshape(8, 3)
        # What a crop must contain: the box and the predicted points.
        self.extent_3d = np.vstack([self.corners_3d, self.points_3d])
        self.input_size = int(config.input_size or detector.input_size)
        self.crop_fill = float(config.zoom_fill or _training_fill(detector))
        self.zoom_size = int(config.zoom_size or self.input_size)
        self._tell_crop = getattr(detector, "set_crop", None)
        self.side = _load_side(config.side, detector)
        self.confidence = _load_beside(config.confidence, detector, confidence_file_for, ConfidenceModel.load)
        self._base_camera: Camera | None = None  # set by from_model without a camera: follow the images' size

    @classmethod
    def from_model(cls, model: str | Path = DEFAULT_MODEL, camera: Camera | None = None,
                   config: PipelineConfig | None = None, threads: int | None = DEFAULT_THREADS,
                   providers: list[str] | None = None) -> PoseEstimator:
        """An estimator for a model file (ONNX, or an ``oracle:...`` spec), as the commands build it.

        Args:
            model: the model (default the shipped ``models/xwing.onnx``); its side
                classifier beside it is loaded too.
            camera: the images' camera; None: the model's training camera carried to
                each image's size (same horizontal field of view, principal point at the
                centre), as ``xwing predict`` and ``xwing track`` do without ``--camera``.
            config: :class:`PipelineConfig`; default: the commands' (``refine="full"``).
            threads, providers: ONNX Runtime settings.

        Examples: ``docs/python-api.md``.
        """
        from xwing.infer.factory import load_detector

        detector = load_detector(str(model), providers, threads)
        base = camera or getattr(detector, "camera", None) or seed_camera()
        est = cls(detector, base, config or PipelineConfig(refine=DEFAULT_REFINE))
        if camera is None:
            est._base_camera = base
        return est

    def fit_camera(self, width: int, height: int) -> None:
        """Where the estimator follows the images' size (:meth:`from_model` without a camera):
        the model's camera carried to ``width`` x ``height``. A given camera is left as it is."""
        base = self._base_camera
        if base is None or (self.camera.width, self.camera.height) == (width, height):
            return
        self.camera = base if (base.width, base.height) == (width, height) else base.for_frame_size(width, height)

    # --- building blocks (the tracker uses these too) -----------------------------------

    def check_image(self, image: np.ndarray, source=None) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise XwingError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}", source)
        h, w = image.shape[:2]
        if (w, h) != (self.camera.width, self.camera.height):
            raise XwingError(f"image is {w} x {h} but the camera is {self.camera.width} x {self.camera.height}",
                             source)

    def detect(self, image: np.ndarray, crop: CropMap):
        """Run the detector on ``crop`` of ``image`` -> (uv_px (K, 2) image pixels, conf (K,), presence,
        alt): ``alt`` is (uv_alt_px, conf_alt, flip) for the roll-relabelled hypothesis where the
        detector gives one, else None."""
        if (crop.scale == 1.0 and crop.tx == 0.0 and crop.ty == 0.0
                and image.shape[1] == crop.width and image.shape[0] == crop.height):
            inp = image
        else:
            inp = crop.warp(image)
        if self._tell_crop is not None:
            self._tell_crop(crop)
        det = self.detector(inp)
        uv = crop.crop_to_image(np.asarray(det.uv, dtype=np.float64))
        alt = None
        uv_alt = getattr(det, "uv_alt", None)
        if uv_alt is not None:
            conf_alt = getattr(det, "conf_alt", None)
            alt = (crop.crop_to_image(np.asarray(uv_alt, dtype=np.float64)),
                   np.asarray(det.conf if conf_alt is None else conf_alt, dtype=np.float64).reshape(-1),
                   float(getattr(det, "flip", 0.0)))
        return uv, np.asarray(det.conf, dtype=np.float64).reshape(-1), float(det.presence), alt

    def zoom_crop(self, T_cam_obj: np.ndarray, size: int, max_scale: float = math.inf,
                  fill: float | None = None) -> CropMap:
        """A ``size`` crop around the ship projected with ``T_cam_obj``, the box filling
        ``fill`` (default :attr:`crop_fill`) of it, zoom capped at ``max_scale`` input px per image px."""
        uv = project_points(self.extent_3d, T_cam_obj, self.camera.K, self.camera.dist)  # (M, 2)
        crop = crop_for_points(uv, size, fill=fill or self.crop_fill)
        if crop.scale > max_scale:
            centre = crop.crop_to_image(np.array([[(size - 1) / 2.0, (size - 1) / 2.0]]))[0]
            crop = crop_around(centre, size / max_scale, size)
        return crop

    def run_pass(self, image: np.ndarray, crop: CropMap, stage: str,
                 T_init: np.ndarray | None = None, roll_prior: bool = True) -> PassResult:
        """Detect in ``crop``, solve PnP, judge the result.

        The ship's near-symmetric 180-degree roll: where the detector also gives the
        roll-relabelled keypoints, that hypothesis is solved too when the detector is
        unsure (0.2 < flip < 0.8), when the first one fails, or when it lands more than
        ``ROLL_CHECK_DEG`` from the prior ``T_init``; the pose nearer the prior wins
        (without a prior: the detector's guess unless it fails). ``roll_prior=False`` uses ``T_init``
        only to start PnP, not to choose the roll: a closer look at the same image
        (locate, zoom) knows top from bottom better than the coarse pass before it,
        whereas the tracker's prediction from earlier frames should decide. Where no
        prior decides and a side classifier is loaded (:mod:`xwing.infer.side`), both
        hypotheses are solved and the classifier picks (the detector's guess where it
        is unsure).
        """
        t0 = time.perf_counter()
        uv, conf, presence, alt = self.detect(image, crop)
        net_ms = (time.perf_counter() - t0) * 1e3
        n = len(uv)
        if presence < self.config.min_presence:
            return PassResult(stage, crop, False, np.eye(4), uv, conf, presence, np.zeros(n, bool), math.inf,
                              math.inf, 0.0, f"ship not in view (presence {presence:.2f})", net_ms, net_ms=net_ms)
        res = self._solve(stage, crop, uv, conf, presence, T_init)
        if alt is not None and self.side is not None and (T_init is None or not roll_prior):
            res = self._settle_roll(image, res, self._solve(stage, crop, alt[0], alt[1], presence, T_init))
        elif alt is not None:
            uv_alt, conf_alt, flip = alt
            T_roll = T_init if roll_prior else None
            far = (T_roll is not None and res.ok
                   and angle_between_deg(res.T_cam_obj, T_roll) > ROLL_CHECK_DEG)
            # Without a prior the detector's own side guess stands unless its pose
            # fails: both hypotheses fit their keypoints about equally well, so PnP
            # quality cannot tell them apart (docs/refinement.md has the figures).
            if not res.ok or far or (T_roll is not None and 0.2 < flip < 0.8):
                other = self._solve(stage, crop, uv_alt, conf_alt, presence, T_init)
                if T_roll is None:
                    better = other.ok and not res.ok
                else:
                    better = other.ok and (not res.ok or angle_between_deg(other.T_cam_obj, T_roll)
                                           < angle_between_deg(res.T_cam_obj, T_roll))
                if better:
                    res = other
        if roll_prior and T_init is not None and res.ok:
            res = self._nearest_tilt(res, T_init)
        res.ms = (time.perf_counter() - t0) * 1e3
        res.net_ms = net_ms
        return res

    def _nearest_tilt(self, res: PassResult, T_prior: np.ndarray) -> PassResult:
        """With a prior from earlier frames: where the pose is more than ``TILT_CHECK_DEG``
        from it, the flat ship's other PnP minimum (:func:`xwing.geometry.pnp.planar_alternatives`)
        replaces it if that is nearer the prior and still fits the keypoints."""
        if angle_between_deg(res.T_cam_obj, T_prior) <= TILT_CHECK_DEG:
            return res
        use = res.inliers & (res.conf >= self.config.min_conf)
        uv = self.camera.undistort_points(res.uv_px[use])
        best, best_angle = None, angle_between_deg(res.T_cam_obj, T_prior)
        for T in planar_alternatives(res.T_cam_obj, uv, self.points_3d[use], self.camera.K, None, res.conf[use]):
            a = angle_between_deg(T, T_prior)
            rms_in = float(np.sqrt(np.mean(reprojection_errors(T, self.points_3d[use], uv, self.camera.K) ** 2))
                           ) * res.crop.scale
            if a < best_angle and rms_in <= self.config.max_reproj_px:
                best, best_angle = T, a
        if best is None:
            return res
        res.T_cam_obj = best
        return res

    def _settle_roll(self, image: np.ndarray, res: PassResult, other: PassResult) -> PassResult:
        """Of the detector's labelling (``res``) and its roll-relabelling (``other``), the one
        the side classifier picks (:func:`xwing.model.symmetry.pick_roll`); the detector's where
        the classifier is unsure or only one of them is a pose."""
        if not (res.ok and other.ok):
            return other if other.ok and not res.ok else res
        p = self.side.p_top(image, res.T_cam_obj, self.camera.K, self.camera.dist)
        res.p_top = other.p_top = p
        pick = pick_roll(p, res.T_cam_obj, other.T_cam_obj, res.uv_px, self.points_3d,
                         res.conf >= self.config.min_conf, SIDE_MIN_MARGIN)
        return other if pick == 1 else res

    def _solve(self, stage, crop, uv, conf, presence, T_init) -> PassResult:
        cfg = self.config
        n = len(uv)
        sol = solve_pnp(uv, self.points_3d, self.camera.K, self.camera.dist, conf, min_conf=cfg.min_conf,
                        threshold_px=cfg.inlier_px / crop.scale, T_prior=T_init)
        rms_in = sol.reproj_err_px * crop.scale
        n_in = int(sol.inliers.sum())
        reason = sol.reason
        if sol.ok:
            z = self.corners_3d @ sol.T_cam_obj[2, :3] + sol.T_cam_obj[2, 3]
            if n_in < min(cfg.min_inliers, n):
                reason = f"only {n_in} keypoints agree (need {min(cfg.min_inliers, n)})"
            elif rms_in > cfg.max_reproj_px:
                reason = f"reprojection error {rms_in:.1f} px (input) above {cfg.max_reproj_px}"
            elif np.any(z <= self.camera.near * 0.5):
                reason = "pose puts the ship behind the camera"
        ok = sol.ok and not reason
        quality = 0.0
        if ok:
            quality = (presence * n_in / n * float(conf[sol.inliers].mean())
                       / (1.0 + (rms_in / 2.0) ** 2))
        return PassResult(stage, crop, ok, sol.T_cam_obj, uv, conf, presence, sol.inliers, sol.reproj_err_px,
                          rms_in, quality, reason)

    @property
    def edge_on_weight(self) -> float:
        """The side cue's edge-on weight (:func:`xwing.model.symmetry.roll_llr`); 0 without one."""
        return self.side.edge_on_weight if self.side is not None else 0.0

    def finish(self, passes: list[PassResult], image: np.ndarray | None = None) -> PoseEstimate:
        """The estimate from the last accepted pass (or a failure from the first), with its
        confidence and roll evidence (the side cue at the final pose, where ``image`` is given).

        An aligned pose is turned over and aligned again (a pass appended to ``passes``) where
        the side cue, asked at it, gives the other roll at least :data:`ROLL_REJUDGE_LLR`: the
        roll was chosen from the keypoints' rougher pose, and the aligned one samples the cue's
        patches where they belong."""
        best = next((p for p in reversed(passes) if p.ok), None)
        if best is None:
            p = passes[-1]
            return PoseEstimate(False, np.eye(4), np.full((8, 2), np.nan), p.uv_px, p.conf, p.presence,
                                p.inliers, math.inf, 0.0, passes[0].reason or p.reason, passes)
        p_top, edge_on_weight = math.nan, self.edge_on_weight
        if self.side is not None and image is not None:
            p_top = self.side.p_top(image, best.T_cam_obj, self.camera.K, self.camera.dist)
            if best.stage == "align" and roll_llr(p_top, best.T_cam_obj, edge_on_weight) <= -ROLL_REJUDGE_LLR:
                passes.append(self._turned_over(image, best))
                if passes[-1].ok:
                    best = passes[-1]
                    p_top = self.side.p_top(image, best.T_cam_obj, self.camera.K, self.camera.dist)
        corners = project_points(self.corners_3d, best.T_cam_obj, self.camera.K, self.camera.dist)
        confidence = math.nan
        if self.confidence is not None:
            confidence = float(self.confidence(confidence_features(passes, best.T_cam_obj, p_top, self.corners_3d,
                                                                   self.camera.K, edge_on_weight)))
        return PoseEstimate(True, best.T_cam_obj, corners, best.uv_px, best.conf, best.presence, best.inliers,
                            best.reproj_err_px, best.quality, "", passes, confidence=confidence, p_top=p_top,
                            roll_ambiguous=roll_ambiguous(p_top, best.T_cam_obj, edge_on_weight))

    # --- the whole thing ------------------------------------------------------------------

    def estimate(self, image: np.ndarray, refine: str | None = None) -> PoseEstimate:
        """Pose of the ship in ``image`` (H, W, 3) RGB uint8 (the camera's size, or any size
        for an estimator that follows the images' size: :meth:`from_model`)."""
        if image.ndim == 3:
            self.fit_camera(image.shape[1], image.shape[0])
        self.check_image(image)
        refine = refine or self.config.refine
        h, w = image.shape[:2]
        first = self.run_pass(image, letterbox(w, h, self.input_size), "first")
        passes = [first]
        native = min(-(-max(w, h) // 32) * 32, self.config.native_max_side)
        if not first.ok and native > self.input_size and self.config.native_retry:
            # Not found at low resolution: a small ship may have been a few pixels there.
            # Look once more at the frame's own resolution (rounded up to 32 px, at most native_max_side).
            retry = self.run_pass(image, letterbox(w, h, native), "first_native")
            passes.append(retry)
            if retry.ok:
                first = retry
        current = first
        if first.ok and first.crop.scale < self.config.locate_below:
            # Found at low resolution: look again at native resolution around the ship.
            loc = self.run_pass(image, self.zoom_crop(first.T_cam_obj, self.input_size, max_scale=1.0),
                                "locate", first.T_cam_obj, roll_prior=False)
            passes.append(loc)
            if loc.ok:
                current = loc
        if refine not in REFINE_MODES:
            raise XwingError(f"refine must be one of {', '.join(REFINE_MODES)}, got '{refine}'")
        for refiner in REFINE_MODES[refine].refiners:
            if not current.ok:
                break
            done = refiner.refine(self, image, current)
            passes += done
            current = next((q for q in reversed(done) if q.ok), current)
        return self.finish(passes, image)

    def _turned_over(self, image: np.ndarray, aligned: PassResult) -> PassResult:
        """The ``aligned`` pass's pose rolled 180 degrees and aligned again (see :meth:`finish`).
        The silhouette cannot tell the rolls apart, so the same gates accept it."""
        t0 = time.perf_counter()
        cam, obj = self.camera, self.object_model
        res = align(image, cam.K, obj.vertices, obj.faces, rolled(aligned.T_cam_obj), TRACKING, dist=cam.dist)
        return AlignRefiner._pass(aligned, res, t0)


DEFAULT_CROP_FILL = 0.5625


def _training_fill(detector) -> float:
    """Midpoint of the ``crop_fill`` range the network was trained with, from its metadata."""
    meta = getattr(detector, "meta", None) or {}
    for d in (meta, meta.get("train", {}) if isinstance(meta.get("train"), dict) else {}):
        rng = d.get("crop_fill")
        try:
            lo, hi = float(rng[0]), float(rng[1])
            if 0 < lo <= hi <= 1:
                return (lo + hi) / 2.0
        except (TypeError, ValueError, IndexError, KeyError):
            continue
    return DEFAULT_CROP_FILL


def _load_side(spec: str, detector):
    """``PipelineConfig.side`` -> a :class:`~xwing.infer.side.SideClassifier` or None."""
    return _load_beside(spec, detector, side_file_for, SideClassifier.load)


def _load_beside(spec: str, detector, file_for, load):
    """A companion file of the model: None for "" or "none"; "auto": ``file_for(model)`` where
    it exists; else the file ``spec``, loaded with ``load``."""
    if spec in ("", "none"):
        return None
    if spec == "auto":
        model = getattr(detector, "path", None)
        if model is None:
            return None
        path = file_for(model)
        return load(path) if path.is_file() else None
    return load(Path(spec))
