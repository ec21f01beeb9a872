"""``poses.json`` and ``poses.csv``: the per-frame poses ``xwing track`` writes.

``poses.json``: ``{"camera": Camera.to_dict(), "model", "source", "frames": [...]}``,
one frame entry per tracked frame: ``index``, ``time_s``, ``status``,
``T_cam_obj`` (4, 4) and the seed's ``model_matrix`` (4, 4) (both None when
lost), ``keypoints`` (the 8 box corners as [u, v, confidence]) and
``reproj_err_px`` (None when not finite), and the evidence: ``quality``,
``p_top`` (the side cue; None where not asked), ``edge_score`` (the
alignment's, None where not aligned), ``confidence`` (None without a calibration),
``segment`` (the track segment,
-1 outside any), ``roll_decided`` (:mod:`xwing.track.segments`), ``roll_ambiguous``
(its negation, None when lost) and ``unreadable``.
``poses.csv`` holds the same frames flat, one row each, with empty cells where a
frame is lost.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from xwing.geometry.camera import model_matrix_from_T_cam_obj

CSV_FIELDS = (["index", "time_s", "status"] + [f"T{i}{j}" for i in range(4) for j in range(4)]
              + [f"M{i}{j}" for i in range(4) for j in range(4)]
              + [f"kp{k}_{c}" for k in range(8) for c in ("u", "v", "conf")] + ["reproj_err_px"]
              + ["quality", "p_top", "segment", "roll_decided"])


def frame_record(r, camera) -> dict:
    """One ``poses.json`` frame entry of a :class:`~xwing.track.tracker.FrameResult`."""
    lost = r.T_cam_obj is None
    kp = None if lost else [[float(u), float(v), float(c)]
                            for (u, v), c in zip(r.corners_px, r.corner_conf, strict=False)]
    return {"index": r.index, "time_s": round(r.time_s, 6), "status": r.status,
            "T_cam_obj": None if lost else r.T_cam_obj.tolist(),
            "model_matrix": None if lost else model_matrix_from_T_cam_obj(r.T_cam_obj, camera.view_matrix).tolist(),
            "keypoints": kp,
            "reproj_err_px": None if not math.isfinite(r.reproj_err_px) else float(r.reproj_err_px),
            "quality": float(r.quality), "p_top": None if not math.isfinite(r.p_top) else float(r.p_top),
            "segment": int(r.segment), "roll_decided": bool(r.roll_decided),
            "roll_ambiguous": None if lost else not r.roll_decided, "unreadable": bool(r.unreadable),
            "edge_score": None if not math.isfinite(r.edge_score) else float(r.edge_score),
            "confidence": None if not math.isfinite(r.confidence) else float(r.confidence)}


def poses_document(results, camera, model: str, source: str) -> dict:
    return {"camera": camera.to_dict(), "model": model, "source": source,
            "frames": [frame_record(r, camera) for r in results]}


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
        row += [repr(f["quality"]), "" if f["p_top"] is None else repr(f["p_top"]), f["segment"],
                int(f["roll_decided"])]
        w.writerow(row)
    return buf.getvalue()


def load_poses(path) -> tuple[list, list]:
    """``poses.json`` -> (statuses, T_cam_obj (4, 4) or None per frame)."""
    doc = json.loads(Path(path).read_text())
    return ([f["status"] for f in doc["frames"]],
            [None if f["T_cam_obj"] is None else np.asarray(f["T_cam_obj"]) for f in doc["frames"]])
