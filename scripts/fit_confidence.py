"""Fit the confidence calibration of a model on validation renders (never the test set).

Runs the model's default pipeline over a seed-format validation set, collects each
estimate's features (:func:`xwing.infer.confidence.confidence_features`) and whether
the pose is correct (rotation < 5 deg, corner median < 2 px), fits the logistic
regression and writes it beside the model (``NAME.confidence.json``, loaded by
``PipelineConfig(confidence="auto")``). Prints the fit's expected calibration
error and AUROC on a held-out third of the set; check it on another fresh seed
with ``xwing eval`` (its ``report.md`` has the reliability table).

    .venv/bin/xwing render /tmp/val1 --count 800 --seed 5252
    .venv/bin/xwing render /tmp/val2 --count 800 --seed 5353
    .venv/bin/python scripts/fit_confidence.py /tmp/val1 /tmp/val2 --model models/xwing.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from xwing.eval.calibration import auroc, expected_calibration_error, is_correct
from xwing.eval.records import make_record
from xwing.infer.confidence import ConfidenceModel, confidence_features, confidence_file_for
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.infer.factory import load_detector
from xwing.io.dataset import SeedDataset


def collect(model: str, dataset: str, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, F), correct (N,)) over the images where the pipeline gave a pose."""
    ds = SeedDataset(dataset)
    est = PoseEstimator(load_detector(model, None, 1), ds.camera, PipelineConfig(refine="full", confidence="none"))
    X, y = [], []
    n = len(ds) if limit is None else min(limit, len(ds))
    for i in tqdm(range(n), unit="img"):
        s = ds[i]
        e = est.estimate(s.image)
        if not e.ok:
            continue
        X.append(confidence_features(e.passes, e.T_cam_obj, e.p_top, est.corners_3d, ds.camera.K,
                                     est.side.edge_on_weight if est.side is not None else 0.0))
        y.append(is_correct(make_record(e.T_cam_obj, s.T_cam_obj, ds.camera, est.corners_3d)))
    return np.array(X), np.array(y)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", nargs="+", help="seed-format validation sets (seeds used for nothing else)")
    ap.add_argument("--model", default="models/xwing.onnx", help="ONNX model (default models/xwing.onnx)")
    ap.add_argument("--limit", type=int, default=None, help="use the first N images")
    ap.add_argument("--out", default=None, help="output file (default: beside the model)")
    ap.add_argument("--features", default=None, help="cache of the collected features (.npz): reused if it exists")
    args = ap.parse_args(argv)
    cache = Path(args.features) if args.features else None
    if cache is not None and cache.is_file():
        d = np.load(cache)
        X, y = d["X"], d["y"]
    else:
        parts = [collect(args.model, d, args.limit) for d in args.dataset]
        X, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        if cache is not None:
            np.savez(cache, X=X, y=y)
    k = len(X) * 2 // 3
    held = ConfidenceModel.fit(X[:k], y[:k])
    p = held(X[k:])
    print(f"{len(X)} poses, {y.mean():.3f} correct; fitted on {k}, held-out {len(X) - k}: "
          f"ECE {expected_calibration_error(p, y[k:]):.4f}, AUROC {auroc(p, y[k:]):.4f}")
    model = ConfidenceModel.fit(X, y, fitted_on=f"{len(X)} poses of {', '.join(args.dataset)} ({y.mean():.3f} correct)")
    out = Path(args.out) if args.out else confidence_file_for(args.model)
    model.save(out)
    p = model(X)
    print(f"all {len(X)}: ECE {expected_calibration_error(p, y):.4f}, AUROC {auroc(p, y):.4f}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
