"""``xwing predict IMAGE...``: the ship's pose in single images -> keypoints, pose, overlay PNG.

Per image: the pipeline of :mod:`xwing.infer.estimator` (whole image letterboxed into the
network, keypoints mapped back exactly, robust PnP; ``--refine zoom`` adds the
zoomed passes). Outputs in ``--out`` (default ``out/predict``): ``NAME.png``
(box, axes and keypoints drawn) and ``predictions.json`` (one entry per image:
``T_cam_obj``, the seed's ``model_matrix``, the 8 box corners as [u, v,
confidence], the network's own keypoints, reprojection error, quality), and with
``--bop-out FILE`` a BOP results CSV (:mod:`xwing.io.bop`; ids from the file names,
:func:`xwing.io.bop.image_ids`). The camera is ``--camera FILE``, else the model's
camera carried to each image's size (same horizontal field of view, centred
principal point).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from xwing.cli.args import (
    add_bop_argument,
    add_estimator_arguments,
    add_model_argument,
    add_strict_argument,
    load_model,
    pipeline_config,
)
from xwing.errors import XwingError
from xwing.geometry.camera import model_matrix_from_T_cam_obj, seed_camera
from xwing.infer.estimator import PoseEstimator
from xwing.infer.oracle import OracleDetector
from xwing.io.atomic import atomic_write_json, json_safe
from xwing.io.bop import BopEstimate, image_ids, prepare_results_path, save_bop_results
from xwing.io.calibration import load_camera
from xwing.io.draw import draw_axes, draw_box, draw_keypoints, draw_label
from xwing.io.images import read_image_or_warn, write_image


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", help="image files (JPEG/PNG)")
    add_model_argument(parser)
    add_estimator_arguments(parser)
    parser.add_argument("--camera", default=None, help="camera file (seed camera_info.json or calibration)")
    parser.add_argument("--out", default="out/predict", help="output directory (default out/predict)")
    add_strict_argument(parser)
    add_bop_argument(parser, "ids from the file names: N.jpg is image N of scene 0, BOP's SCENE/rgb/IM.jpg keeps "
                             "its scene and image")


def prediction_record(name: str, est, camera, detector_points) -> dict:
    corner_conf = np.full(8, float(est.conf[est.inliers].mean()) if est.inliers.any() else 0.0)
    if len(detector_points) == 8:
        corner_conf = est.conf
    return {
        "image": name, "ok": est.ok, "reason": est.reason,
        "T_cam_obj": est.T_cam_obj.tolist() if est.ok else None,
        "model_matrix": model_matrix_from_T_cam_obj(est.T_cam_obj, camera.view_matrix).tolist() if est.ok else None,
        "keypoints": [[float(u), float(v), float(c)] for (u, v), c in zip(est.corners_px, corner_conf, strict=False)]
        if est.ok else None,
        "net_keypoints": [[float(u), float(v), float(c)] for (u, v), c in zip(est.uv_px, est.conf, strict=False)],
        "presence": est.presence,
        "reproj_err_px": est.reproj_err_px if math.isfinite(est.reproj_err_px) else None,
        "quality": est.quality, "n_inliers": est.n_inliers,
        "confidence": est.confidence if math.isfinite(est.confidence) else None,
        "roll_ambiguous": est.roll_ambiguous, "p_top": est.p_top if math.isfinite(est.p_top) else None,
        "passes": [p.stage for p in est.passes],
    }


def run(args) -> int:
    detector = load_model(args.model, args.providers, args.threads)
    if isinstance(detector, OracleDetector):
        raise XwingError("the oracle needs truth; use it with `xwing eval` or `xwing track` on labelled data")
    config = pipeline_config(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ids = None
    if args.bop_out is not None:
        ids = image_ids(args.images)  # a name without an id fails now, not after the work
        prepare_results_path(args.bop_out)
    base = getattr(detector, "camera", None) or seed_camera()
    records, bop = [], []
    estimators = {}
    for k, path in enumerate(args.images):
        image = read_image_or_warn(path, args.strict)
        if image is None:
            records.append({"image": str(path), "ok": False, "reason": "unreadable image", "T_cam_obj": None})
            continue
        h, w = image.shape[:2]
        if (w, h) not in estimators:
            if args.camera:
                cam = load_camera(args.camera, w, h)
                if (cam.width, cam.height) != (w, h):
                    raise XwingError(f"camera is for {cam.width} x {cam.height} images, {path} is {w} x {h}",
                                     args.camera)
            else:
                cam = base if (base.width, base.height) == (w, h) else base.for_frame_size(w, h)
            estimators[(w, h)] = PoseEstimator(detector, cam, config)
        est_ = estimators[(w, h)]
        t0 = time.perf_counter()
        est = est_.estimate(image)
        seconds = time.perf_counter() - t0
        if ids is not None and est.ok:
            bop.append(BopEstimate.from_T(*ids[k], est.T_cam_obj, est.quality, seconds))
        vis = image.copy()
        draw_keypoints(vis, est.uv_px, est.conf, min_conf=config.min_conf)
        if est.ok:
            draw_box(vis, est.corners_px)
            draw_axes(vis, est.T_cam_obj, est_.camera.K, 0.1, est_.camera.dist)
        draw_label(vis, "ok" if est.ok else f"no pose: {est.reason}")
        name = Path(path).stem
        write_image(out / f"{name}.png", vis)
        records.append(prediction_record(str(path), est, est_.camera, est_.points_3d))
        t = est.T_cam_obj[:3, 3]
        print(f"{path}: " + (f"pose found, distance {np.linalg.norm(t):.3f}, reprojection {est.reproj_err_px:.2f} px, "
                             f"quality {est.quality:.2f}" if est.ok else f"no pose ({est.reason})"))
    atomic_write_json(out / "predictions.json", json_safe({"model": str(args.model), "refine": args.refine,
                                                           "images": records}))
    print(f"wrote {out}/predictions.json and {len(records)} overlay PNG(s)")
    if args.bop_out is not None:
        save_bop_results(args.bop_out, bop)
        print(f"wrote {args.bop_out} ({len(bop)} BOP estimates)")
    return 0
