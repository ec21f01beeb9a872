"""The evaluation loop: a pose estimator over a labelled dataset -> metrics and per-image records.

Each image is estimated on its own (batch 1, image already in memory, so
``ms_per_image`` is inference + decode + PnP + refinement). Besides the final
pose, every pass the pipeline ran is scored: after a stage, the pipeline holds
that pass's pose if accepted, else the last accepted one before it. The metric
keys and subsets are defined in :mod:`xwing.eval.summary`.

An image file that is cut short or corrupt is warned about by name and left out of
the accuracy figures; ``n_unreadable`` and ``unreadable_files`` count it
(``strict=True`` makes it an error instead).
"""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from xwing.errors import DamagedFileError, warn
from xwing.eval.calibration import confidence_summary
from xwing.eval.records import ImageRecord, make_record
from xwing.eval.summary import background_clutter, stage_stats, summarize_subsets
from xwing.geometry.metrics import keypoint_errors_px
from xwing.geometry.projection import project_points
from xwing.infer.oracle import OracleDetector


def evaluate(estimator, dataset, progress: bool = False, limit: int | None = None,
             strict: bool = False) -> tuple[dict, list[ImageRecord]]:
    """Run ``estimator`` (:class:`~xwing.infer.estimator.PoseEstimator`) over a
    :class:`~xwing.io.dataset.SeedDataset` -> (metrics dict, per-image records)."""
    det = estimator.detector
    oracle = isinstance(det, OracleDetector)
    cam = dataset.camera
    mesh = (estimator.config.mesh, estimator.config.fit_seed_box)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    records = []
    unreadable = []
    for i in tqdm(range(n), desc="eval", unit="img", disable=not progress):
        try:
            sample = dataset[i]
        except DamagedFileError as e:
            if strict:
                raise
            warn(f"{e}; counted as unreadable")
            unreadable.append(str(e.path))
            continue
        if oracle:
            det.set_truth(sample.T_cam_obj, cam)
        t0 = time.perf_counter()
        est = estimator.estimate(sample.image)
        ms = (time.perf_counter() - t0) * 1e3
        rec = make_record(est.T_cam_obj if est.ok else None, sample.T_cam_obj, cam, estimator.corners_3d,
                          est.uv_px, estimator.points_3d, ms)
        rec.clutter = background_clutter(sample.image, sample.T_cam_obj, cam, mesh)
        rec.index, rec.score = sample.index, est.quality
        rec.confidence, rec.roll_ambiguous = est.confidence, est.roll_ambiguous
        last_ok_err = np.full(8, np.inf)
        for p in est.passes:
            # A rejected zoom/alignment keeps the earlier pose, so a stage is scored on the last accepted one.
            kind = next((k for k in ("zoom", "first") if p.stage.startswith(k)), p.stage)  # first_native: "first"
            if p.ok:
                last_ok_err = keypoint_errors_px(
                    project_points(estimator.corners_3d, p.T_cam_obj, cam.K, cam.dist), rec.corners_gt)
            rec.stages[kind] = last_ok_err
            rec.stage_ms[kind] = rec.stage_ms.get(kind, 0.0) + p.ms
        records.append(rec)
    metrics = summarize_subsets(records, cam, mesh)
    metrics["refine"] = estimator.config.refine
    metrics["stages"] = stage_stats(records)
    metrics["confidence"] = confidence_summary(records)
    metrics["n_unreadable"] = len(unreadable)
    metrics["unreadable_files"] = unreadable
    return metrics, records
