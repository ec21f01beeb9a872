"""``xwing track INPUT``: 6-DoF tracking in a video, with overlays and the pewpew animation.

INPUT is a video file, an image directory, a sequence directory (``xwing render
--sequence``: its ``video.mp4``, with ``N_mat.json`` truth) or a camera index.
The camera is chosen as :mod:`xwing.eval.tracking` says (``--camera FILE``, the
directory's ``camera_info.json``, else the model's camera carried to the frame size).

Outputs in ``--out`` (default ``out/track``): ``poses.json``, ``poses.csv``
(:mod:`xwing.io.poses`), ``overlay.mp4``, ``pewpew.gif``, ``pewpew.mp4``,
``metrics.json`` and ``config.json``. ``fps_end_to_end`` counts reading and
decoding the video, inference, PnP and tracking, not writing outputs: files are
tracked in one pass and drawn in a second one (a camera stream is drawn as it
goes, with that time left out of the figure).

Memory stays flat in the video's length: per frame only the poses and their
evidence are kept, frames are read again for drawing, the MP4s are streamed and
``pewpew.gif`` holds the first ``--gif-seconds`` (default 10; the log says when
it stops short of the clip). Damaged input (:mod:`xwing.io.video`) is warned
about by name and the outputs hold what could be read.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from xwing.cli.args import (
    add_bop_argument,
    add_estimator_arguments,
    add_model_argument,
    add_strict_argument,
    load_model,
    pipeline_config,
)
from xwing.errors import XwingError
from xwing.eval.tracking import oracle_of, resolve_camera, track_frames, tracking_metrics
from xwing.infer.estimator import PoseEstimator
from xwing.io.atomic import atomic_write_json, atomic_write_text, json_safe
from xwing.io.bop import frame_estimates, save_bop_results
from xwing.io.draw import draw_axes, draw_box, draw_label
from xwing.io.pewpew import PewPew, load_lasers
from xwing.io.poses import poses_csv, poses_document
from xwing.io.video import GifWriter, Mp4Writer, open_source
from xwing.track.filters import FILTERS
from xwing.track.segments import decide_rolls
from xwing.track.tracker import Tracker, TrackerConfig


def add_arguments(parser) -> None:
    parser.add_argument("input", help="video file, image directory, sequence directory or camera index")
    add_model_argument(parser)
    add_estimator_arguments(parser)
    parser.add_argument("--camera", default=None, help="camera file (seed camera_info.json or calibration)")
    parser.add_argument("--out", default="out/track", help="output directory (default out/track)")
    parser.add_argument("--per-frame", action="store_true", help="no tracking: every frame on its own")
    parser.add_argument("--compare", action="store_true",
                        help="with truth: also run --per-frame and put both figures in metrics.json")
    parser.add_argument("--track-size", type=int, default=128, help="input side of tracking crops (default 128)")
    parser.add_argument("--smooth", type=float, default=1.0, help="pose smoothing strength (0: off; default 1)")
    parser.add_argument("--filter", choices=tuple(FILTERS), default="alphabeta",
                        help="smoothing filter (default alphabeta: constant velocity, no lag)")
    parser.add_argument("--seed", type=int, default=0, help="laser firing pattern seed (default 0)")
    parser.add_argument("--lasers", default=None, help="JSON list of [origin, direction point] cannons, or 'none'")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    parser.add_argument("--no-video", action="store_true", help="write poses and metrics only (benchmarks)")
    parser.add_argument("--gif-seconds", type=float, default=10.0,
                        help="pewpew.gif holds the clip's first S seconds (default 10; 0: the whole clip, "
                             "which a long clip makes large); the MP4s always hold every frame")
    add_strict_argument(parser)
    parser.add_argument("--show", action="store_true", help="preview in a window where a display exists (q stops)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--causal", action="store_true",
                        help="decide each track's roll as the frames come, as for a camera (default for a file: "
                             "from all the track's frames, so frames before the first face-on view get it too)")
    add_bop_argument(parser, "scene 0, im_id = frame index, time = the run's mean seconds per frame")


class OutputVideos:
    """overlay.mp4, pewpew.gif and pewpew.mp4, fed frame by frame."""

    def __init__(self, out: Path, camera, lasers, seed: int, gif_frames: int | None = None):
        self.camera = camera
        self.overlay = Mp4Writer(out / "overlay.mp4")
        self.pew_mp4 = Mp4Writer(out / "pewpew.mp4")
        self.pew_gif = GifWriter(out / "pewpew.gif", max_frames=gif_frames)
        self.pew = None if lasers is None else PewPew(camera.K, camera.dist, lasers, seed)

    def overlay_frame(self, frame: np.ndarray, r) -> np.ndarray:
        img = frame.copy()
        if r.unreadable:
            draw_label(img, f"{r.index} unreadable", color=(255, 80, 80))
            return img
        if r.T_cam_obj is not None:
            draw_box(img, r.corners_px, (0, 255, 0))
            draw_axes(img, r.T_cam_obj, self.camera.K, 0.1, self.camera.dist)
        draw_label(img, f"{r.index} {r.status}", color=(255, 255, 255) if r.status != "lost" else (255, 80, 80))
        return img

    def write(self, frame: np.ndarray | None, r) -> np.ndarray:
        if frame is None:  # an unreadable frame keeps its place in the videos, as a grey one
            frame = np.full((self.camera.height, self.camera.width, 3), 96, np.uint8)
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


def run(args) -> int:
    source = open_source(args.input, strict=args.strict)
    detector = load_model(args.model, args.providers, args.threads)
    oracle = oracle_of(detector, source, args.input)
    camera, camera_from = resolve_camera(args.camera, source, detector)
    lasers = None if (args.lasers or "").lower() == "none" else load_lasers(args.lasers)
    pipe_cfg = pipeline_config(args)
    track_cfg = TrackerConfig(track_size=args.track_size, smooth=args.smooth, filter=args.filter,
                              per_frame=args.per_frame)
    estimator = PoseEstimator(detector, camera, pipe_cfg)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.quiet

    live = source.kind == "camera"
    gif_frames = round(args.gif_seconds * source.fps) if args.gif_seconds > 0 else None
    videos = None if args.no_video else OutputVideos(out, camera, lasers, args.seed, gif_frames)
    show = _Preview() if args.show else None

    def on_frame(frame, r):
        # Live input is drawn as it comes; a file is drawn after its rolls are decided.
        img = videos.write(frame, r) if videos is not None and live else None
        if show is not None and frame is not None:
            if img is None:
                img = videos.overlay_frame(frame, r) if videos is not None else frame
            return show(img)
        return True

    tracker = Tracker(estimator, track_cfg, fps=source.fps)
    try:
        results, seconds, interrupted = track_frames(source, tracker, oracle, args.max_frames,
                                                     on_frame if (live or show) else None, progress)
        if not results:
            raise XwingError("no frames were read", args.input)
        if not (live or args.causal):
            results = decide_rolls(results, estimator.corners_3d, camera.K, camera.dist, track_cfg.roll_decide_llr)
        if videos is not None and not live:
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
    metrics.update({"refine": pipe_cfg.refine, "per_frame": track_cfg.per_frame, "interrupted": interrupted,
                    "roll_decision": "causal" if (live or args.causal) else "whole track"})
    if args.compare and source.truth and not args.per_frame and not interrupted:
        base_det = load_model(args.model, args.providers, args.threads)
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
    if args.bop_out is not None:
        save_bop_results(args.bop_out, frame_estimates(results, seconds / len(results)))
    atomic_write_json(out / "metrics.json", json_safe(metrics))
    atomic_write_json(out / "config.json", {"pipeline": pipe_cfg.to_dict(), "tracker": track_cfg.to_dict(),
                                            "camera_from": camera_from, "model": str(args.model),
                                            "input": str(args.input), "seed": args.seed})
    if videos is not None and videos.pew_gif.dropped:
        print(f"pewpew.gif holds the first {args.gif_seconds:g} s ({gif_frames} frames; --gif-seconds 0 for all); "
              f"pewpew.mp4 holds all {videos.pew_mp4.count}")
    if metrics["n_unreadable"]:
        print(f"{metrics['n_unreadable']} unreadable frame(s) counted as lost")
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
    frames = source.frames()
    try:
        # tracking may have stopped early (--max-frames, Ctrl-C): draw only the frames it saw
        pairs = zip(frames, results, strict=False)
        for (_, _, frame), r in tqdm(pairs, total=len(results), desc="draw", unit="frame", disable=not progress):
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
        try:
            cv2.imshow("xwing track (q stops)", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            return (cv2.waitKey(1) & 0xFF) != ord("q")
        except cv2.error:
            self.ok = False
            print("xwing track: no display (or OpenCV without GUI support): --show ignored")
            return True
