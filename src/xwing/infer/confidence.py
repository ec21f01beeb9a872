"""How far to trust an estimate: ``confidence`` and ``roll_ambiguous``.

``confidence`` is calibrated to the probability that the pose is *correct*:
rotation error below :data:`CORRECT_ROT_DEG` (5 degrees) and box-corner median
error below :data:`CORRECT_CORNER_PX` (2 px). It is a logistic regression on
what the pipeline itself knows about the estimate (:func:`confidence_features`):

* ``quality``, ``presence``, ``inlier_share``, ``mean_conf`` and the log of the
  reprojection error of the pass that gave the pose;
* ``aligned`` (the silhouette alignment accepted it), its ``edge_score``, and the
  log of how far (px, box corners) the alignment moved the keypoint pose;
* ``roll_evidence``: the side cue's log-odds for the pose's roll (unsigned,
  :func:`xwing.model.symmetry.roll_llr`: 0 edge-on), since a wrong roll is wrong
  by 180 degrees however well the silhouette fits.

The weights are fitted on validation renders (``scripts/fit_confidence.py``;
never the test set) and saved beside the ONNX model as ``NAME.confidence.json``,
which ``PipelineConfig(confidence="auto")`` loads like the side classifier.
Without one, ``confidence`` is NaN.

``roll_ambiguous``: the roll evidence at the pose is below
:data:`ROLL_AMBIGUOUS_LLR` nats (the top/bottom decision was close to a coin
flip; in tracking, a segment's summed evidence takes its place).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.projection import project_points
from xwing.io.atomic import atomic_write_text
from xwing.model.symmetry import roll_llr

CORRECT_ROT_DEG = 5.0
CORRECT_CORNER_PX = 2.0
ROLL_AMBIGUOUS_LLR = 1.0
FEATURES = ("quality", "presence", "inlier_share", "mean_conf", "log_reproj_px", "aligned", "edge_score",
            "log_align_shift_px", "roll_evidence")


def confidence_features(passes: list, T_cam_obj: np.ndarray, p_top: float, corners_3d: np.ndarray,
                        K: np.ndarray, edge_on_weight: float = 0.0) -> np.ndarray:
    """(F,) features of an estimate (:data:`FEATURES` order) from its passes (first to last),
    its final pose and the side cue's ``p_top`` at that pose (NaN: no side cue; ``edge_on_weight``:
    the cue's, see :func:`xwing.model.symmetry.roll_llr`)."""
    ok = [p for p in passes if p.ok]
    net = [p for p in ok if p.stage != "align"]
    src = net[-1] if net else ok[-1]
    align = ok[-1] if ok and ok[-1].stage == "align" else None
    n = max(len(src.inliers), 1)
    inl = np.asarray(src.inliers, bool)
    shift = 0.0
    if align is not None and net:
        a = project_points(corners_3d, align.T_cam_obj, K)
        b = project_points(corners_3d, net[-1].T_cam_obj, K)
        shift = float(np.mean(np.linalg.norm(a - b, axis=1)))
    edge = align.edge_score if align is not None and math.isfinite(align.edge_score) else 0.0
    reproj = src.reproj_err_px if math.isfinite(src.reproj_err_px) else 100.0
    return np.array([src.quality, src.presence, inl.sum() / n, float(np.mean(src.conf[inl])) if inl.any() else 0.0,
                     math.log(max(reproj, 1e-3)), float(align is not None), edge, math.log1p(shift),
                     abs(roll_llr(p_top, T_cam_obj, edge_on_weight))])


def roll_ambiguous(p_top: float, T_cam_obj: np.ndarray, edge_on_weight: float = 0.0) -> bool:
    """Whether the top/bottom evidence at the pose is weak (see the module doc)."""
    return abs(roll_llr(p_top, T_cam_obj, edge_on_weight)) < ROLL_AMBIGUOUS_LLR


@dataclass(frozen=True)
class ConfidenceModel:
    """Logistic regression on standardised :data:`FEATURES`.

    Attributes:
        mean, scale: (F,) standardisation; weights: (F,); bias.
        fitted_on: what it was fitted on (a note for the model card).
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    fitted_on: str = ""

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """(N, F) or (F,) features -> probability that each pose is correct."""
        z = (np.asarray(features, np.float64) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.weights + self.bias)))

    @classmethod
    def fit(cls, features: np.ndarray, correct: np.ndarray, l2: float = 1e-2, fitted_on: str = "",
            iterations: int = 50) -> ConfidenceModel:
        """Maximum-likelihood logistic regression (Newton's method, an L2 penalty ``l2`` per
        sample on the weights) of ``correct`` (N,) bool on ``features`` (N, F)."""
        X = np.asarray(features, np.float64)
        y = np.asarray(correct, np.float64)
        if len(X) < 10 or y.min() == y.max():
            raise XwingError(f"fitting a confidence needs both correct and wrong poses; got {int(y.sum())} correct "
                             f"of {len(y)}")
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        Z = np.hstack([(X - mean) / scale, np.ones((len(X), 1))])
        w = np.zeros(Z.shape[1])
        reg = np.full(Z.shape[1], l2 * len(X))
        reg[-1] = 0.0  # the bias is not penalised
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-Z @ w))
            grad = Z.T @ (p - y) + reg * w
            H = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(reg) + 1e-9 * np.eye(len(w))
            step = np.linalg.solve(H, grad)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        return cls(mean, scale, w[:-1], float(w[-1]), fitted_on)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps({"features": list(FEATURES), "mean": self.mean.tolist(),
                                            "scale": self.scale.tolist(), "weights": self.weights.tolist(),
                                            "bias": self.bias, "fitted_on": self.fitted_on}, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> ConfidenceModel:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            if tuple(d["features"]) != FEATURES:
                raise XwingError(f"confidence model has features {d['features']}, this xwing uses {list(FEATURES)}",
                                 path)
            m = cls(np.asarray(d["mean"], float), np.asarray(d["scale"], float), np.asarray(d["weights"], float),
                    float(d["bias"]), str(d.get("fitted_on", "")))
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise XwingError(f"not a confidence model ({e})", path) from None
        if not all(np.all(np.isfinite(v)) and v.shape == (len(FEATURES),) for v in (m.mean, m.scale, m.weights)):
            raise XwingError("confidence model values are malformed or not finite", path)
        return m


def confidence_file_for(model_path: str | Path) -> Path:
    """``models/xwing.onnx`` -> ``models/xwing.confidence.json``."""
    p = Path(model_path)
    return p.with_name(p.stem + ".confidence.json")
