"""Can the confidence be trusted? Reliability, expected calibration error and AUROC.

A pose is *correct* when its rotation error is below 5 degrees and its box-corner
median error below 2 px (:mod:`xwing.infer.confidence`); an image without a pose
is wrong. Over the images with a finite confidence:

* ``reliability``: 10 equal-width confidence bins, each with its count, mean
  confidence and share of correct poses (empty bins: None);
* ``ece``: the expected calibration error, the count-weighted mean over bins of
  ``|share correct - mean confidence|``;
* ``auroc``: the probability that a correct pose has a higher confidence than a
  wrong one (ties count half); None where either class is empty.
"""

from __future__ import annotations

import math

import numpy as np

from xwing.geometry.metrics import rotation_error_deg
from xwing.infer.confidence import CORRECT_CORNER_PX, CORRECT_ROT_DEG


def is_correct(record) -> bool:
    """Rotation error < 5 deg and corner median error < 2 px (an :class:`~xwing.eval.records.ImageRecord`)."""
    if record.T_est is None:
        return False
    rot = rotation_error_deg(record.T_est[:3, :3], record.T_gt[:3, :3])
    return bool(rot < CORRECT_ROT_DEG and np.median(record.corner_err) < CORRECT_CORNER_PX)


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> list[dict]:
    """Per equal-width bin of ``confidence`` (N,) in [0, 1]: lo, hi, n, mean confidence, share correct."""
    c = np.clip(np.asarray(confidence, float), 0.0, 1.0)
    y = np.asarray(correct, bool)
    k = np.minimum((c * bins).astype(int), bins - 1)  # 1.0 falls in the last bin
    out = []
    for b in range(bins):
        sel = k == b
        n = int(sel.sum())
        out.append({"lo": b / bins, "hi": (b + 1) / bins, "n": n,
                    "mean_confidence": float(c[sel].mean()) if n else None,
                    "share_correct": float(y[sel].mean()) if n else None})
    return out


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Count-weighted mean of ``|share correct - mean confidence|`` over the bins (NaN with no sample)."""
    rel = reliability(confidence, correct, bins)
    n = sum(b["n"] for b in rel)
    if n == 0:
        return math.nan
    return float(sum(b["n"] * abs(b["share_correct"] - b["mean_confidence"]) for b in rel if b["n"]) / n)


def auroc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve of ``score`` for ``positive`` (the Mann-Whitney U statistic)."""
    s = np.asarray(score, float)
    y = np.asarray(positive, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based ranks, ties averaged
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def confidence_summary(records: list) -> dict | None:
    """``{"n", "share_correct", "ece", "auroc", "reliability"}`` over records with a finite
    ``confidence``; None where there is none."""
    rs = [r for r in records if math.isfinite(getattr(r, "confidence", math.nan))]
    if not rs:
        return None
    conf = np.array([r.confidence for r in rs])
    y = np.array([is_correct(r) for r in rs])
    return {"n": len(rs), "share_correct": float(y.mean()), "mean_confidence": float(conf.mean()),
            "ece": expected_calibration_error(conf, y), "auroc": auroc(conf, y),
            "reliability": reliability(conf, y),
            "roll_ambiguous_share": float(np.mean([bool(getattr(r, "roll_ambiguous", False)) for r in rs]))}
