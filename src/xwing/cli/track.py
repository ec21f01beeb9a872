"""``xwing track INPUT``: 6-DoF tracking in a video, with overlays and the pewpew animation.

INPUT is a video file, an image directory, a sequence directory (``xwing render
--sequence``: its ``video.mp4``, with ``N_mat.json`` truth) or a camera index.

Camera (which intrinsics are used), first match wins:

1. ``--camera FILE`` (seed ``camera_info.json`` or a calibration file); its size
   must be the frames' size;
2. the sequence/dataset directory's own ``camera_info.json``;
3. the model's training camera (its metadata; the seed camera if it has none)
   carried to the frame size keeping the horizontal field of view, square pixels
   and the principal point at the centre (:meth:`xwing.geometry.camera.Camera.for_frame_size`).

Outputs in ``--out`` (default ``out/track``): ``poses.json``, ``poses.csv``,
``overlay.mp4``, ``pewpew.gif``, ``pewpew.mp4``, ``metrics.json`` and
``config.json``. ``fps_end_to_end`` counts reading and decoding the video,
inference, PnP and tracking, not writing outputs: files are tracked in one pass
and drawn in a second one (a camera stream is drawn as it goes, with that time
left out of the figure).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.track.tracker import STATUSES

DEFAULT_MODEL = "models/xwing.onnx"


def add_arguments(parser) -> None:
    parser.add_argument("input", help="video file, image directory, sequence directory or camera index")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"ONNX model (default {DEFAULT_MODEL}); 'oracle[:noise=1,...]' tracks with the "
                             "truth plus noise (sequence directories only; for tests and benchmarks)")
    parser.add_argument("--camera", default=None, help="camera file (seed camera_info.json or calibration)")
    parser.add_argument("--out", default="out/track", help="output directory (default out/track)")
    parser.add_argument("--providers", nargs="+", default=None,
                        help="ONNX Runtime execution providers, e.g. CUDAExecutionProvider CPUExecutionProvider")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime threads (default 1: on a 2-core CPU it tracked 1.3-1.8x faster than 2, "
                             "the video reader runs on the other core; 0: one per core)")
    parser.add_argument("--per-frame", action="store_true", help="no tracking: every frame on its own")
    parser.add_argument("--compare", action="store_true",
                        help="with truth: also run --per-frame and put both figures in metrics.json")
    parser.add_argument("--refine", choices=("none", "zoom", "full"), default="none",
                        help="none: full-frame searches use the first pass only (tracked frames are seen zoomed "
                             "already); zoom: plus zoomed passes; full: plus silhouette alignment of every frame "
                             "(the accuracy mode: demo flight 0.8 deg rotation median at ~4 fps, vs 7.6 deg at "
                             "~60 fps with none; default none)")
    parser.add_argument("--input-size", type=int, default=0,
                        help="input side of full-frame searches (default: the model's)")
    parser.add_argument("--track-size", type=int, default=128, help="input side of tracking crops (default 128)")
    parser.add_argument("--smooth", type=float, default=1.0, help="pose smoothing strength (0: off; default 1)")
    parser.add_argument("--filter", choices=("alphabeta", "oneeuro"), default="alphabeta",
                        help="smoothing filter (default alphabeta: constant velocity, no lag)")
    parser.add_argument("--seed", type=int, default=0, help="laser firing pattern seed (default 0)")
    parser.add_argument("--lasers", default=None, help="JSON list of [origin, direction point] cannons, or 'none'")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    parser.add_argument("--no-video", action="store_true", help="write poses and metrics only (benchmarks)")
    parser.add_argument("--show", action="store_true", help="preview in a window where a display exists (q stops)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    from xwing.cli.args import add_object_arguments

    add_object_arguments(parser)


# --- the pieces --------------------------------------------------------------------------------


def resolve_camera(camera_file, source, detector):
    """The camera for ``source``'s frames (see the module doc) and a word on where it came from."""
    from xwing.geometry.camera import load_camera, seed_camera

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


def track_frames(source, tracker, oracle=None, max_frames=None, on_frame=None, progress=True):
    """Run ``tracker`` over ``source`` -> (results, seconds of tracking, interrupted).

    ``on_frame(frame, result)`` (drawing, preview) runs between frames; its time
    is not counted. It may return False to stop. Ctrl-C stops cleanly.
    """
    from tqdm import tqdm

    results = []
    total = source.n_frames if max_frames is None else min(max_frames, source.n_frames or max_frames)
    bar = tqdm(total=total, desc="track", unit="frame", disable=not progress)
    excluded = 0.0
    interrupted = False
    cam = tracker.estimator.camera
    t0 = time.perf_counter()
    frames = source.frames()
    try:
        for index, time_s, frame in frames:
            if max_frames is not None and index >= max_frames:
                break
            if oracle is not None:
                oracle.set_truth(source.truth.get(index), cam)
            results.append(tracker.step(frame, index, time_s))
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


def frame_record(r, camera) -> dict:
    """One ``poses.json`` frame entry."""
    from xwing.geometry.camera import model_matrix_from_T_cam_obj

    lost = r.T_cam_obj is None
    kp = None if lost else [[float(u), float(v), float(c)] for (u, v), c in zip(r.corners_px, r.corner_conf)]
    return {"index": r.index, "time_s": round(r.time_s, 6), "status": r.status,
            "T_cam_obj": None if lost else r.T_cam_obj.tolist(),
            "model_matrix": None if lost else model_matrix_from_T_cam_obj(r.T_cam_obj, camera.view_matrix).tolist(),
            "keypoints": kp,
            "reproj_err_px": None if not math.isfinite(r.reproj_err_px) else float(r.reproj_err_px)}


def poses_document(results, camera, model: str, source: str) -> dict:
    return {"camera": camera.to_dict(), "model": model, "source": source,
            "frames": [frame_record(r, camera) for r in results]}


CSV_FIELDS = (["index", "time_s", "status"] + [f"T{i}{j}" for i in range(4) for j in range(4)]
              + [f"M{i}{j}" for i in range(4) for j in range(4)]
              + [f"kp{k}_{c}" for k in range(8) for c in ("u", "v", "conf")] + ["reproj_err_px"])


def poses_csv(doc: dict) -> str:
    """The frames of ``poses.json``, flat: one row per frame (empty cells when lost)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_FIELDS)
    for f in doc["frames"]:
        row = [f["index"], f["time_s"], f["status"]]
        for key, n in (("T_cam_obj", 16), ("model_matrix", 16), ("keypoints", 24)):
            row += [""] * n if f[key] is None else [repr(float(x)) for x in np.ravel(f[key])]
        row.append("" if f["reproj_err_px"] is None else repr(f["reproj_err_px"]))
        w.writerow(row)
    return buf.getvalue()


def load_poses(path) -> tuple[list, list]:
    """``poses.json`` -> (statuses, T_cam_obj (4, 4) or None per frame)."""
    doc = json.loads(Path(path).read_text())
    return ([f["status"] for f in doc["frames"]],
            [None if f["T_cam_obj"] is None else np.asarray(f["T_cam_obj"]) for f in doc["frames"]])


class OutputVideos:
    """overlay.mp4, pewpew.gif and pewpew.mp4, fed frame by frame."""

    def __init__(self, out: Path, camera, lasers, seed: int):
        from xwing.io.pewpew import PewPew
        from xwing.io.video import GifWriter, Mp4Writer

        self.camera = camera
        self.overlay = Mp4Writer(out / "overlay.mp4")
        self.pew_mp4 = Mp4Writer(out / "pewpew.mp4")
        self.pew_gif = GifWriter(out / "pewpew.gif")
        self.pew = None if lasers is None else PewPew(camera.K, camera.dist, lasers, seed)

    def overlay_frame(self, frame: np.ndarray, r) -> np.ndarray:
        from xwing.io.draw import draw_axes, draw_box, draw_label

        img = frame.copy()
        if r.T_cam_obj is not None:
            draw_box(img, r.corners_px, (0, 255, 0))
            draw_axes(img, r.T_cam_obj, self.camera.K, 0.1, self.camera.dist)
        draw_label(img, f"{r.index} {r.status}", color=(255, 255, 255) if r.status != "lost" else (255, 80, 80))
        return img

    def write(self, frame: np.ndarray, r) -> np.ndarray:
        img = self.overlay_frame(frame, r)
        self.overlay.write(img)
        if self.pew is not None:
            pew = self.pew.draw(frame, r.T_cam_obj)
            self.pew_mp4.write(pew)
            self.pew_gif.write(pew)
        return img

    def close(self):
        for w in (self.overlay, self.pew_mp4, self.pew_gif):
            w.close()

    def abort(self):
        for w in (self.overlay, self.pew_mp4, self.pew_gif):
            w.abort()


def tracking_metrics(results, source, camera, seconds: float, estimator) -> dict:
    """metrics.json content: speed and statuses always; the eval keys, ``jitter_deg`` and
    ``lost_rate`` where the source has truth."""
    from xwing.eval.evaluate import jitter_deg, lost_rate, make_record, summarize_subsets

    n = len(results)
    statuses = [r.status for r in results]
    m = {"n_frames": n, "fps_end_to_end": n / seconds if seconds > 0 else math.nan,
         "ms_per_frame": 1e3 * seconds / n if n else math.nan,
         "status_counts": {s: statuses.count(s) for s in STATUSES}}
    if source.truth:
        T_gt = [source.truth.get(r.index) for r in results]
        T_est = [r.T_cam_obj for r in results]
        records = [make_record(r.T_cam_obj, T, camera, estimator.corners_3d, r.uv_px,
                               estimator.points_3d if r.uv_px is not None else None, 1e3 * seconds / n)
                   for r, T in zip(results, T_gt) if T is not None]
        mesh = (estimator.config.mesh, estimator.config.fit_seed_box)
        m.update(summarize_subsets(records, camera, mesh))
        m["jitter_deg"] = jitter_deg(T_est, T_gt)
        m["lost_rate"] = lost_rate(statuses, T_gt, camera, mesh)
    return m


def run_tracking(input, model: str = DEFAULT_MODEL, *, camera_file=None, per_frame: bool = False,
                 refine: str = "none", input_size: int = 0, track_size: int = 128, smooth: float = 1.0,
                 threads: int | None = 1, providers=None, max_frames: int | None = None,
                 progress: bool = False) -> tuple[list, dict]:
    """Track without writing anything (for benchmarks such as ``xwing bench``).

    Returns (per-frame :class:`~xwing.track.tracker.FrameResult` list, the ``metrics.json``
    dict: ``fps_end_to_end``, statuses and, with truth, the eval keys, ``jitter_deg``
    and ``lost_rate``).
    """
    from xwing.infer.oracle import OracleDetector
    from xwing.cli.args import load_model as load_detector
    from xwing.infer.estimator import PipelineConfig, PoseEstimator
    from xwing.track.tracker import Tracker, TrackerConfig
    from xwing.io.video import open_source

    source = open_source(input)
    detector = load_detector(model, providers, threads)
    oracle = detector if isinstance(detector, OracleDetector) else None
    if oracle is not None and not source.truth:
        raise XwingError("the oracle model needs truth: give a sequence directory with N_mat.json files", input)
    camera, _ = resolve_camera(camera_file, source, detector)
    estimator = PoseEstimator(detector, camera, PipelineConfig(input_size=input_size, refine=refine))
    tracker = Tracker(estimator, TrackerConfig(track_size=track_size, smooth=smooth, per_frame=per_frame),
                      fps=source.fps)
    results, seconds, _ = track_frames(source, tracker, oracle, max_frames, None, progress)
    if not results:
        raise XwingError("no frames were read", input)
    metrics = tracking_metrics(results, source, camera, seconds, estimator)
    metrics.update({"refine": refine, "per_frame": per_frame})
    return results, metrics


# --- the command ----------------------------------------------------------------------------------


def run(args) -> int:
    from xwing.io.atomic import atomic_write_json, atomic_write_text
    from xwing.io.atomic import json_safe
    from xwing.infer.oracle import OracleDetector
    from xwing.io.pewpew import load_lasers
    from xwing.cli.args import load_model as load_detector
    from xwing.infer.estimator import PipelineConfig, PoseEstimator
    from xwing.track.tracker import Tracker, TrackerConfig
    from xwing.io.video import open_source

    source = open_source(args.input)
    detector = load_detector(args.model, args.providers, args.threads or None)
    oracle = detector if isinstance(detector, OracleDetector) else None
    if oracle is not None and not source.truth:
        raise XwingError("the oracle model needs truth: give a sequence directory with N_mat.json files",
                         args.input)
    camera, camera_from = resolve_camera(args.camera, source, detector)
    lasers = None if (args.lasers or "").lower() == "none" else load_lasers(args.lasers)
    pipe_cfg = PipelineConfig(input_size=args.input_size, refine=args.refine, mesh=args.mesh,
                              fit_seed_box=args.fit_seed_box, side=args.side)
    track_cfg = TrackerConfig(track_size=args.track_size, smooth=args.smooth, filter=args.filter,
                              per_frame=args.per_frame)
    estimator = PoseEstimator(detector, camera, pipe_cfg)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.quiet

    live = source.kind == "camera"
    videos = None if args.no_video else OutputVideos(out, camera, lasers, args.seed)
    show = _Preview() if args.show else None

    def on_frame(frame, r):
        img = videos.write(frame, r) if videos is not None else None
        if show is not None:
            return show(img if img is not None else frame)
        return True

    tracker = Tracker(estimator, track_cfg, fps=source.fps)
    try:
        results, seconds, interrupted = track_frames(source, tracker, oracle, args.max_frames,
                                                     on_frame if (live or show) else None, progress)
        if not results:
            raise XwingError("no frames were read", args.input)
        if videos is not None and not (live or show):
            try:
                _draw_second_pass(source, results, videos, progress)
            except KeyboardInterrupt:  # keep what is drawn: the videos end early but are valid
                interrupted = True
    except BaseException:
        if videos is not None:
            videos.abort()
        raise
    if videos is not None:
        videos.close()
    metrics = tracking_metrics(results, source, camera, seconds, estimator)
    metrics.update({"refine": pipe_cfg.refine, "per_frame": track_cfg.per_frame, "interrupted": interrupted})
    if args.compare and source.truth and not args.per_frame and not interrupted:
        base_det = load_detector(args.model, args.providers, args.threads or None)
        base = Tracker(PoseEstimator(base_det, camera, pipe_cfg),
                       TrackerConfig(track_size=args.track_size, per_frame=True), fps=source.fps)
        b_oracle = base.estimator.detector if oracle is not None else None
        b_res, b_sec, _ = track_frames(source, base, b_oracle, len(results), None, progress)
        b = tracking_metrics(b_res, source, camera, b_sec, base.estimator)
        metrics["per_frame_baseline"] = {k: b.get(k) for k in (
            "jitter_deg", "lost_rate", "rot_err_deg_median", "kp_err_px_median", "fps_end_to_end", "status_counts")}
    doc = poses_document(results, camera, str(args.model), str(args.input))
    atomic_write_json(out / "poses.json", json_safe(doc))
    atomic_write_text(out / "poses.csv", poses_csv(json_safe(doc)))
    atomic_write_json(out / "metrics.json", json_safe(metrics))
    atomic_write_json(out / "config.json", {"pipeline": pipe_cfg.to_dict(), "tracker": track_cfg.to_dict(),
                                            "camera_from": camera_from, "model": str(args.model),
                                            "input": str(args.input), "seed": args.seed})
    if interrupted:
        print(f"xwing track: interrupted after {len(results)} frames; the outputs hold the frames done so far")
    print(summary_line(metrics))
    print(f"wrote {out}/" + ("{poses.json, poses.csv, metrics.json}" if args.no_video else
                             "{poses.json, poses.csv, overlay.mp4, pewpew.gif, pewpew.mp4, metrics.json}"))
    return 130 if interrupted else 0


def summary_line(m: dict) -> str:
    """One human line: speed, statuses and (with truth) accuracy, and the per-frame baseline."""
    def f(v, unit=""):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "n/a"
        return f"inf{unit}" if math.isinf(v) else f"{v:.3g}{unit}"

    c = m["status_counts"]
    s = (f"{m['n_frames']} frames at {m['fps_end_to_end']:.1f} fps end to end: {c['tracked']} tracked, "
         f"{c.get('predicted', 0)} predicted, {c['detected']} detected, {c['lost']} lost")
    if "jitter_deg" in m:
        s += (f"; rotation error median {f(m.get('rot_err_deg_median'), ' deg')}, corner error median "
              f"{f(m.get('kp_err_px_median'), ' px')}, jitter {f(m.get('jitter_deg'), ' deg')}, "
              f"lost rate {f(m.get('lost_rate'))}")
    b = m.get("per_frame_baseline")
    if b:
        s += (f" (per frame: rotation error {f(b.get('rot_err_deg_median'), ' deg')}, jitter "
              f"{f(b.get('jitter_deg'), ' deg')}, {f(b.get('fps_end_to_end'), ' fps')})")
    return s


def _draw_second_pass(source, results, videos, progress):
    from tqdm import tqdm

    frames = source.frames()
    try:
        for (i, _, frame), r in tqdm(zip(frames, results), total=len(results), desc="draw", unit="frame",
                                     disable=not progress):
            videos.write(frame, r)
    finally:
        frames.close()


class _Preview:
    """A live window where OpenCV has a GUI; otherwise says so once and does nothing."""

    def __init__(self):
        self.ok = True

    def __call__(self, img) -> bool:
        if not self.ok:
            return True
        import cv2

        try:
            cv2.imshow("xwing track (q stops)", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            return (cv2.waitKey(1) & 0xFF) != ord("q")
        except cv2.error:
            self.ok = False
            print("xwing track: no display (or OpenCV without GUI support): --show ignored")
            return True
