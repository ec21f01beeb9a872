"""Tracking a video and measuring it: the frame loop, the camera choice and ``metrics.json``.

Camera (which intrinsics are used), first match wins (:func:`resolve_camera`):

1. a camera file (seed ``camera_info.json`` or a calibration file); its size
   must be the frames' size;
2. the sequence/dataset directory's own ``camera_info.json``;
3. the model's training camera (its metadata; the seed camera if it has none)
   carried to the frame size keeping the horizontal field of view, square pixels
   and the principal point at the centre (:meth:`xwing.geometry.camera.Camera.for_frame_size`).

Tracking metrics, where the source has truth: the ``xwing eval`` keys
(:mod:`xwing.eval.summary`) over the frames, plus

* ``jitter_deg``: RMS over consecutive frame pairs of the frame-to-frame rotation
  error (:func:`jitter_deg`): shake that a constant offset does not add to;
* ``lost_rate``: among frames with the ship at least half in view, the share lost;
* ``stage_ms``: mean milliseconds per frame of each stage (read, network, pnp,
  align, side, filter, other: :func:`stage_means`);
* ``roll_flip_rate``: among frames with a pose, the share nearer the true pose
  rolled 180 degrees (``T_gt @ T_ROLL180``) than the true pose (``flip_rate``
  keeps its meaning: rotation error > 90 degrees, failures included).

``fps_end_to_end`` counts reading and decoding the video, inference, PnP and
tracking; whatever ``on_frame`` does (drawing, preview) is left out.
"""

from __future__ import annotations

import math
import time

import numpy as np
from tqdm import tqdm

from xwing.defaults import DEFAULT_MODEL, DEFAULT_THREADS
from xwing.errors import XwingError
from xwing.eval.records import make_record, ship_in_view
from xwing.eval.summary import summarize_subsets
from xwing.geometry.camera import seed_camera
from xwing.geometry.metrics import rotation_error_deg
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.infer.factory import load_detector
from xwing.infer.oracle import OracleDetector
from xwing.io.calibration import load_camera
from xwing.io.video import open_source
from xwing.model.symmetry import rolled
from xwing.track.segments import decide_rolls
from xwing.track.tracker import STATUSES, Tracker, TrackerConfig


def resolve_camera(camera_file, source, detector):
    """The camera for ``source``'s frames (see the module doc) and a word on where it came from."""
    w, h = source.width, source.height
    if camera_file:
        cam = load_camera(camera_file, w, h)
        if (cam.width, cam.height) != (w, h):
            raise XwingError(f"camera is for {cam.width} x {cam.height} images but the frames are {w} x {h}",
                             camera_file)
        return cam, f"file {camera_file}"
    if source.camera is not None:
        return source.camera, "the sequence's camera_info.json"
    base = getattr(detector, "camera", None) or seed_camera()
    if (base.width, base.height) == (w, h):
        return base, "the model's camera"
    return base.for_frame_size(w, h), "the model's camera carried to the frame size (same horizontal FOV)"


def oracle_of(detector, source, input):
    """``detector`` when it is the oracle (which then needs the source's truth), else None."""
    oracle = detector if isinstance(detector, OracleDetector) else None
    if oracle is not None and not source.truth:
        raise XwingError("the oracle model needs truth: give a sequence directory with N_mat.json files", input)
    return oracle


def track_frames(source, tracker, oracle=None, max_frames=None, on_frame=None, progress=True):
    """Run ``tracker`` over ``source`` -> (results, seconds of tracking, interrupted).

    ``on_frame(frame, result)`` (drawing, preview) runs between frames; its time
    is not counted. It may return False to stop. Ctrl-C stops cleanly. An
    unreadable frame (None from the source) is a "lost" result marked ``unreadable``.
    """
    results = []
    total = source.n_frames if max_frames is None else min(max_frames, source.n_frames or max_frames)
    bar = tqdm(total=total, desc="track", unit="frame", disable=not progress)
    excluded = 0.0
    interrupted = False
    cam = tracker.estimator.camera
    t0 = time.perf_counter()
    frames = source.frames()
    try:
        while True:
            t_read = time.perf_counter()
            item = next(frames, None)
            if item is None:
                break
            read_ms = (time.perf_counter() - t_read) * 1e3
            index, time_s, frame = item
            if max_frames is not None and index >= max_frames:
                break
            if oracle is not None and frame is not None:
                oracle.set_truth(source.truth.get(index), cam)
            results.append(tracker.step(frame, index, time_s))
            results[-1].stage_ms["read"] = read_ms
            if on_frame is not None or progress:
                t1 = time.perf_counter()
                bar.update(1)
                keep_going = on_frame(frame, results[-1]) if on_frame is not None else True
                excluded += time.perf_counter() - t1
                if keep_going is False:
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        frames.close()
        bar.close()
    seconds = time.perf_counter() - t0 - excluded
    return results, seconds, interrupted


def jitter_deg(T_est: list, T_gt: list) -> float:
    """RMS over consecutive frame pairs (both with a pose) of the angle of
    ``dR_est dR_gt^T`` with ``dR = R_t R_{t-1}^T``; NaN with no pair."""
    angles = []
    for i in range(1, len(T_est)):
        a, b, g0, g1 = T_est[i - 1], T_est[i], T_gt[i - 1], T_gt[i]
        if a is None or b is None or g0 is None or g1 is None:
            continue
        dR_est = b[:3, :3] @ a[:3, :3].T
        dR_gt = g1[:3, :3] @ g0[:3, :3].T
        angles.append(rotation_error_deg(dR_est, dR_gt))
    return float(np.sqrt(np.mean(np.square(angles)))) if angles else math.nan


def lost_rate(statuses: list[str], T_gt: list, camera, mesh: tuple[str, bool] = ("", False)) -> float:
    """Among frames with truth and the ship at least half in view, the share ``lost``."""
    sel = [s for s, T in zip(statuses, T_gt, strict=False) if T is not None and ship_in_view(T, camera, mesh=mesh)]
    return float(np.mean([s == "lost" for s in sel])) if sel else math.nan


def stage_means(results) -> dict:
    """Mean milliseconds per frame of each stage (:func:`xwing.track.tracker.stage_times`,
    plus ``read``: the wait for the decoded frame, which decoding ahead in a thread hides)."""
    keys = sorted({k for r in results for k in r.stage_ms})
    return {k: float(np.mean([r.stage_ms.get(k, 0.0) for r in results])) for k in keys}


def roll_flip_rate(T_est: list, T_gt: list) -> float:
    """Among frames with a pose and truth, the share whose rotation is nearer the true one
    rolled 180 degrees than the true one; NaN with none."""
    flips = [rotation_error_deg(a[:3, :3], rolled(g)[:3, :3]) < rotation_error_deg(a[:3, :3], g[:3, :3])
             for a, g in zip(T_est, T_gt, strict=False) if a is not None and g is not None]
    return float(np.mean(flips)) if flips else math.nan


def tracking_metrics(results, source, camera, seconds: float, estimator) -> dict:
    """metrics.json content: speed and statuses always; the eval keys, ``jitter_deg`` and
    ``lost_rate`` where the source has truth."""
    n = len(results)
    statuses = [r.status for r in results]
    m = {"n_frames": n, "fps_end_to_end": n / seconds if seconds > 0 else math.nan,
         "ms_per_frame": 1e3 * seconds / n if n else math.nan,
         "status_counts": {s: statuses.count(s) for s in STATUSES},
         "n_unreadable": sum(r.unreadable for r in results),
         "stage_ms": stage_means(results)}
    if source.truth:
        T_gt = [source.truth.get(r.index) for r in results]
        T_est = [r.T_cam_obj for r in results]
        records = [make_record(r.T_cam_obj, T, camera, estimator.corners_3d, r.uv_px,
                               estimator.points_3d if r.uv_px is not None else None, 1e3 * seconds / n)
                   for r, T in zip(results, T_gt, strict=False) if T is not None]
        mesh = (estimator.config.mesh, estimator.config.fit_seed_box)
        m.update(summarize_subsets(records, camera, mesh))
        m["jitter_deg"] = jitter_deg(T_est, T_gt)
        m["lost_rate"] = lost_rate(statuses, T_gt, camera, mesh)
        m["roll_flip_rate"] = roll_flip_rate(T_est, T_gt)
    return m


def run_tracking(input, model: str = DEFAULT_MODEL, *, camera_file=None, per_frame: bool = False,
                 refine: str = "none", input_size: int = 0, track_size: int = 128, smooth: float = 1.0,
                 threads: int | None = DEFAULT_THREADS, providers=None, max_frames: int | None = None,
                 progress: bool = False) -> tuple[list, dict]:
    """Track without writing anything (for benchmarks such as ``xwing bench``).

    ``model`` is an ONNX file or an oracle spec (:func:`xwing.infer.factory.load_detector`).
    ``refine`` defaults to ``none``: the speed benchmarks time the fast mode.

    Returns (per-frame :class:`~xwing.track.tracker.FrameResult` list, the ``metrics.json``
    dict: ``fps_end_to_end``, statuses and, with truth, the eval keys, ``jitter_deg``
    and ``lost_rate``).
    """
    source = open_source(input)
    detector = load_detector(model, providers, threads)
    oracle = oracle_of(detector, source, input)
    camera, _ = resolve_camera(camera_file, source, detector)
    estimator = PoseEstimator(detector, camera, PipelineConfig(input_size=input_size, refine=refine))
    tracker = Tracker(estimator, TrackerConfig(track_size=track_size, smooth=smooth, per_frame=per_frame),
                      fps=source.fps)
    results, seconds, _ = track_frames(source, tracker, oracle, max_frames, None, progress)
    if not results:
        raise XwingError("no frames were read", input)
    results = decide_rolls(results, estimator.corners_3d, camera.K, camera.dist, tracker.config.roll_decide_llr)
    metrics = tracking_metrics(results, source, camera, seconds, estimator)
    metrics.update({"refine": refine, "per_frame": per_frame})
    return results, metrics
