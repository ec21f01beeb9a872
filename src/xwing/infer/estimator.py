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
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from xwing.geometry.camera import Camera
from xwing.config import SavedConfig
from xwing.geometry.crop import CropMap, crop_for_points, letterbox
from xwing.errors import XwingError
from xwing.model.keypoints import SEED_BOX_CORNERS
from xwing.geometry.pnp import angle_between_deg, solve_pnp
from xwing.geometry.projection import project_points

REFINE_MODES = ("none", "zoom", "full")
#: a pose this far (degrees) from the prior makes the pipeline try the roll-relabelled keypoints
ROLL_CHECK_DEG = 60.0
#: the side classifier decides the roll where its probability is at least this far from 0.5
SIDE_MIN_MARGIN = 0.15
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
            search once more at the frame's own resolution (small ships).
        side: the top/bottom classifier that settles the roll (:mod:`xwing.infer.side`):
            "auto" (the ``.side.npz`` file beside the ONNX model, where there is one),
            "none", or a file.
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
    native_retry: bool = True

    def __post_init__(self):
        if self.refine not in REFINE_MODES:
            raise XwingError(f"refine must be one of {', '.join(REFINE_MODES)}, got '{self.refine}'")
        for name in ("input_size", "zoom_size"):
            v = getattr(self, name)
            if v and (v < 32 or v % 32):
                raise XwingError(f"{name} must be a multiple of 32 (>= 32), got {v}")


@dataclass
class PassResult:
    """One detector pass and its PnP (kept for per-stage evaluation).

    Attributes:
        stage: "first", "locate" or "zoom1", "zoom2", ...
        crop: image -> input map used.
        ok, T_cam_obj, quality, reproj_err_px (image px), reproj_err_in_px (input px).
        uv_px: (K, 2) network keypoints in image pixels; conf (K,); presence.
        ms: wall time of the pass (crop, detector, PnP).
        p_top: the side classifier's probability that the top faces the camera (NaN: not asked).
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

    @property
    def n_inliers(self) -> int:
        return int(np.count_nonzero(self.inliers))


# --- the estimator --------------------------------------------------------------------------------


class PoseEstimator:
    """A detector + a camera -> poses of single images.

    Args:
        detector: object with the :mod:`xwing.infer.detector` interface.
        camera: the images' camera (size must match the images).
        config: :class:`PipelineConfig`.
        corners_3d: (8, 3) box corners reported in every output (default: the seed's, or
            the box of ``config.mesh`` when one is given).
    """

    def __init__(self, detector, camera: Camera, config: PipelineConfig = PipelineConfig(),
                 corners_3d: np.ndarray | None = None):
        self.detector = detector
        self.camera = camera
        self.config = config
        self.points_3d = np.asarray(detector.points_3d, dtype=np.float64).reshape(-1, 3)
        # A bad mesh file fails here, before any work.
        mesh = model_mesh(config.mesh, config.fit_seed_box) if config.mesh else None
        if corners_3d is None:
            corners_3d = SEED_BOX_CORNERS if mesh is None else mesh.box_corners()
        self.corners_3d = np.asarray(corners_3d, dtype=np.float64).reshape(8, 3)
        # What a crop must contain: the box and the predicted points.
        self.extent_3d = np.vstack([self.corners_3d, self.points_3d])
        self.input_size = int(config.input_size or detector.input_size)
        self.crop_fill = float(config.zoom_fill or _training_fill(detector))
        self.zoom_size = int(config.zoom_size or self.input_size)
        self._tell_crop = getattr(detector, "set_crop", None)
        self.side = _load_side(config.side, detector)

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
            from xwing.geometry.crop import crop_around

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
        n = len(uv)
        if presence < self.config.min_presence:
            return PassResult(stage, crop, False, np.eye(4), uv, conf, presence, np.zeros(n, bool), math.inf,
                              math.inf, 0.0, f"ship not in view (presence {presence:.2f})",
                              (time.perf_counter() - t0) * 1e3)
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
            # quality cannot tell them apart (on 100 test images, choosing by quality
            # gave a flip rate of 0.52, keeping the detector's guess 0.48; on
            # training-like crops the guess alone flips 29 %, its alternative 80 %).
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
        return res

    def _nearest_tilt(self, res: PassResult, T_prior: np.ndarray) -> PassResult:
        """With a prior from earlier frames: where the pose is more than ``TILT_CHECK_DEG``
        from it, the flat ship's other PnP minimum (:func:`xwing.geometry.pnp.planar_alternatives`)
        replaces it if that is nearer the prior and still fits the keypoints."""
        from xwing.geometry.pnp import planar_alternatives, reprojection_errors

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
        whose top-facing agrees with the side classifier; the detector's where the
        classifier is unsure or only one of them is a pose."""
        from xwing.model.symmetry import choose_roll

        if not (res.ok and other.ok):
            return other if other.ok and not res.ok else res
        p = self.side.p_top(image, res.T_cam_obj, self.camera.K, self.camera.dist)
        res.p_top = other.p_top = p
        pick = choose_roll(p, res.T_cam_obj, other.T_cam_obj)
        if pick is None and abs(p - 0.5) >= SIDE_MIN_MARGIN:
            # Near edge-on, two noisy poses may show the camera the same side; the
            # keypoints' own arrangement still does not (the relabelling mirrors it).
            from xwing.model.symmetry import side_of

            top = side_of(res.uv_px, self.points_3d, res.conf >= self.config.min_conf) < 0
            pick = 0 if top == (p > 0.5) else 1
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

    def finish(self, passes: list[PassResult]) -> PoseEstimate:
        """The estimate from the last accepted pass (or a failure from the first)."""
        best = next((p for p in reversed(passes) if p.ok), None)
        if best is None:
            p = passes[-1]
            return PoseEstimate(False, np.eye(4), np.full((8, 2), np.nan), p.uv_px, p.conf, p.presence,
                                p.inliers, math.inf, 0.0, passes[0].reason or p.reason, passes)
        corners = project_points(self.corners_3d, best.T_cam_obj, self.camera.K, self.camera.dist)
        return PoseEstimate(True, best.T_cam_obj, corners, best.uv_px, best.conf, best.presence, best.inliers,
                            best.reproj_err_px, best.quality, "", passes)

    # --- the whole thing ------------------------------------------------------------------

    def estimate(self, image: np.ndarray, refine: str | None = None) -> PoseEstimate:
        """Pose of the ship in ``image`` (H, W, 3) RGB uint8 (the camera's size)."""
        self.check_image(image)
        refine = refine or self.config.refine
        h, w = image.shape[:2]
        first = self.run_pass(image, letterbox(w, h, self.input_size), "first")
        passes = [first]
        if not first.ok and first.crop.scale < 1.0 and self.config.native_retry:
            # Not found at low resolution: a small ship may have been a few pixels there.
            # Look once more at the frame's own resolution (the input rounded up to 32 px).
            side = -(-max(w, h) // 32) * 32
            retry = self.run_pass(image, letterbox(w, h, side), "first_native")
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
        if refine in ("zoom", "full") and current.ok:
            prev_crop = None
            for i in range(self.config.zoom_max_passes):
                crop = self.zoom_crop(current.T_cam_obj, self.zoom_size)
                if prev_crop is not None and _same_crop(crop, prev_crop):
                    break
                cand = self.run_pass(image, crop, f"zoom{i + 1}", current.T_cam_obj, roll_prior=False)
                passes.append(cand)
                if not cand.ok:
                    break
                current, prev_crop = cand, crop
        if refine == "full" and current.ok:
            passes.append(self.align_pass(image, current))
        return self.finish(passes)

    def align_pass(self, image: np.ndarray, current: PassResult, alternatives: bool = True) -> PassResult:
        """Model-based alignment (stage "align") from ``current``'s pose and from the other
        minimum of the flat ship's PnP (:func:`xwing.geometry.pnp.planar_alternatives`, refit on
        ``current``'s inlier keypoints); the accepted alignment with the highest quality
        wins. Not ok when the aligner rejects them all, so the caller keeps ``current``.
        ``alternatives=False``: from ``current`` alone (the tracker, whose prediction
        already chose between the two minima)."""
        from xwing.infer.refine.align import align
        from xwing.geometry.pnp import planar_alternatives

        t0 = time.perf_counter()
        vertices, faces = alignment_mesh(self.config.mesh, self.config.fit_seed_box)
        use = current.inliers & (current.conf >= self.config.min_conf)
        starts = [current.T_cam_obj]
        if alternatives:
            starts += planar_alternatives(current.T_cam_obj, current.uv_px[use], self.points_3d[use], self.camera.K,
                                          self.camera.dist, current.conf[use])
        results = [align(image, self.camera.K, vertices, faces, T, dist=self.camera.dist) for T in starts]
        accepted = [r for r in results if r.ok]
        best = max(accepted, key=lambda r: r.quality) if accepted else results[0]
        reason = "" if best.ok else (f"alignment rejected (quality {best.quality:.2f}, "
                                     f"edge score {best.edge_score:.2f}, shift {best.shift_px:.1f} px)")
        return PassResult("align", current.crop, best.ok, best.T_cam_obj, current.uv_px, current.conf,
                          current.presence, current.inliers, current.reproj_err_px, current.reproj_err_in_px,
                          current.quality if best.ok else 0.0, reason, (time.perf_counter() - t0) * 1e3,
                          current.p_top)


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
    from pathlib import Path

    from xwing.infer.side import SideClassifier, side_file_for

    if spec in ("", "none"):
        return None
    if spec == "auto":
        model = getattr(detector, "path", None)
        if model is None:
            return None
        path = side_file_for(model)
        return SideClassifier.load(path) if path.is_file() else None
    return SideClassifier.load(Path(spec))


def add_model_arguments(parser) -> None:
    """``--mesh`` / ``--fit-seed-box`` (the model for alignment, box corners and ADD) and
    ``--side`` (the top/bottom classifier), shared by predict, eval and track."""
    parser.add_argument("--mesh", default="",
                        help="the model's mesh (OBJ/PLY/GLB/STL/OFF; needs trimesh: pip install 'xwing[render]') "
                             "for alignment, the reported box corners and ADD (default: the procedural X-wing)")
    parser.add_argument("--fit-seed-box", action="store_true",
                        help="scale --mesh onto the seed's box, as `xwing render --fit-seed-box` did")
    parser.add_argument("--side", default="auto",
                        help="top/bottom classifier that settles the roll: auto (MODEL.side.npz beside an ONNX "
                             "model, if there), none, or a file from `xwing train-side`")


@lru_cache(maxsize=4)
def model_mesh(path: str = "", fit_seed_box: bool = False):
    """The model's :class:`~xwing.model.mesh.Mesh`: the procedural X-wing for ``path=""``
    (numpy only), else the file read with trimesh (``xwing[render]``); built once per process."""
    from xwing.model.mesh import load_mesh, xwing_mesh

    return load_mesh(path, fit_seed_box=fit_seed_box) if path else xwing_mesh()


@lru_cache(maxsize=4)
def alignment_mesh(path: str = "", fit_seed_box: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3) float64, faces (F, 3)) of :func:`model_mesh`, for the aligner (built
    once: it runs on every aligned frame; the arrays are shared, never modified)."""
    mesh = model_mesh(path, fit_seed_box)
    return mesh.vertices.astype(np.float64), mesh.faces




def _same_crop(a: CropMap, b: CropMap, tol_px: float = 1.0, tol_scale: float = 0.03) -> bool:
    """Crops that differ by less than ``tol_px`` input pixels of shift and ``tol_scale`` of zoom."""
    if abs(a.scale / b.scale - 1.0) > tol_scale:
        return False
    centre = np.array([[(a.width - 1) / 2.0, (a.height - 1) / 2.0]])
    return float(np.abs(b.image_to_crop(a.crop_to_image(centre)) - centre).max()) < tol_px


# --- loading a detector ------------------------------------------------------------------------


def load_detector(model: str, providers: list[str] | None = None, threads: int | None = None):
    """``--model`` -> a detector.

    * ``oracle[:noise=1,outliers=0.05,seed=0,size=128]``: :class:`~xwing.infer.oracle.OracleDetector`
      (needs truth: sequence/dataset directories);
    * ``*.onnx``: :class:`xwing.infer.detector.OnnxDetector` (numpy, OpenCV, onnxruntime only),
      with ``threads`` ONNX Runtime intra-op threads (None: its default, one per core);
    * a training checkpoint: only where torch is importable, exported to a temporary
      ONNX file by ``xwing.learn.export`` (torch is never imported for ONNX models).
    """
    from pathlib import Path

    if model == "oracle" or model.startswith("oracle:"):
        from xwing.infer.oracle import OracleDetector

        return OracleDetector.from_spec(model, threads=threads)
    path = Path(model)
    if not path.is_file():
        raise XwingError("model file not found (train one with `xwing train` and `xwing export`, "
                         "or pass --model FILE)", path)
    if path.suffix.lower() == ".onnx":
        from xwing.infer.detector import OnnxDetector

        return OnnxDetector(str(path), providers=providers, threads=threads)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise XwingError("this is not an .onnx file; a checkpoint needs torch (pip install 'xwing[train]'), "
                         "or export it first with `xwing export`", path) from None
    # A training checkpoint: export it to a temporary ONNX file with the network's own
    # exporter, then use it exactly like a shipped model.
    import tempfile

    from xwing.learn.export import checkpoint_to_onnx

    tmp = checkpoint_to_onnx(path, Path(tempfile.mkdtemp(prefix="xwing-ckpt-")) / f"{path.stem}.onnx")
    from xwing.infer.detector import OnnxDetector

    return OnnxDetector(str(tmp), providers=providers, threads=threads)
