"""Confidence and its calibration: the logistic model, the metrics, and the estimator's output."""

import math

import numpy as np
import pytest

from xwing.errors import XwingError
from xwing.eval.calibration import auroc, confidence_summary, expected_calibration_error, reliability
from xwing.geometry.camera import seed_camera
from xwing.geometry.pose import make_T, rotvec_to_R
from xwing.infer.confidence import FEATURES, ConfidenceModel, confidence_features, roll_ambiguous
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.infer.oracle import OracleDetector
from xwing.model.symmetry import rolled


def test_reliability_and_ece_by_hand():
    conf = np.array([0.05, 0.15, 0.15, 0.95, 0.95, 1.0])
    ok = np.array([False, False, True, True, True, False])
    rel = reliability(conf, ok)
    assert [b["n"] for b in rel] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 3]
    assert rel[1]["share_correct"] == 0.5 and rel[2]["mean_confidence"] is None
    assert rel[9]["mean_confidence"] == pytest.approx(2.9 / 3)  # 1.0 falls in the last bin
    # |0 - .05| * 1 + |.5 - .15| * 2 + |2/3 - .9667| * 3, over 6
    assert expected_calibration_error(conf, ok) == pytest.approx((0.05 + 0.7 + 0.9) / 6)


def test_auroc_known_values():
    assert auroc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [False, True, False, True]) == 0.5  # ties count half
    assert auroc([0.3, 0.6, 0.4], [False, True, True]) == 1.0
    assert auroc([0.1, 0.2], [True, True]) is None


def test_logistic_fit_is_calibrated_on_data_it_can_explain(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, len(FEATURES)))
    p_true = 1 / (1 + np.exp(-(1.5 * X[:, 0] - 1.0 * X[:, 3] + 0.3)))
    y = rng.random(4000) < p_true
    m = ConfidenceModel.fit(X[:3000], y[:3000])
    p = m(X[3000:])
    assert expected_calibration_error(p, y[3000:]) < 0.05
    assert auroc(p, y[3000:]) > 0.8
    m.save(tmp_path / "c.json")
    m2 = ConfidenceModel.load(tmp_path / "c.json")
    assert np.allclose(m2(X[:5]), m(X[:5]))
    (tmp_path / "bad.json").write_text('{"features": ["x"], "mean": [0]}')
    with pytest.raises(XwingError, match="bad.json"):
        ConfidenceModel.load(tmp_path / "bad.json")
    with pytest.raises(XwingError, match="both correct and wrong"):
        ConfidenceModel.fit(X[:50], np.ones(50, bool))


class _Side:
    edge_on_weight = 0.0

    def p_top(self, image, T, K, dist=None):
        return 0.95


def test_estimator_writes_confidence_and_roll_ambiguity(tmp_path):
    cam = seed_camera()
    T = make_T(rotvec_to_R([1.2, 0.1, 0.2]), [0.02, 0.01, 2.0])
    det = OracleDetector(input_size=256, noise_px=0.3, seed=2)
    det.set_truth(T, cam)
    no_cal = PoseEstimator(det, cam, PipelineConfig(refine="zoom", side="none"))
    e = no_cal.estimate(np.zeros((256, 256, 3), np.uint8))
    assert e.ok and math.isnan(e.confidence) and e.roll_ambiguous  # no calibration, no side cue

    f = confidence_features(e.passes, e.T_cam_obj, math.nan, no_cal.corners_3d, cam.K)
    assert f.shape == (len(FEATURES),) and np.all(np.isfinite(f))
    assert f[FEATURES.index("aligned")] == 0.0 and f[FEATURES.index("roll_evidence")] == 0.0
    # a calibration that trusts quality: a better fit gets a higher confidence
    w = np.zeros(len(FEATURES))
    w[FEATURES.index("quality")] = 3.0
    path = tmp_path / "xwing.confidence.json"
    ConfidenceModel(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), w, -1.0).save(path)
    est = PoseEstimator(det, cam, PipelineConfig(refine="zoom", side="none", confidence=str(path)))
    est.side = _Side()
    det.set_truth(T, cam)
    e = est.estimate(np.zeros((256, 256, 3), np.uint8))
    assert 0.0 < e.confidence < 1.0 and e.p_top == 0.95
    assert e.confidence == pytest.approx(1 / (1 + math.exp(-(3.0 * e.quality - 1.0))))
    assert roll_ambiguous(0.95, e.T_cam_obj) == e.roll_ambiguous
    assert roll_ambiguous(0.5, e.T_cam_obj) and roll_ambiguous(math.nan, e.T_cam_obj)
    face_on = make_T(np.eye(3), [0, 0, 2.0])  # model z towards -camera z: the belly faces the camera
    assert not roll_ambiguous(0.02, face_on) and not roll_ambiguous(0.98, rolled(face_on))


def test_confidence_summary_over_records():
    class R:
        def __init__(self, c, good):
            self.confidence, self.roll_ambiguous = c, False
            self.T_gt = np.eye(4)
            self.T_est = np.eye(4) if good else make_T(rotvec_to_R([0, 0, 0.5]), [0, 0, 0])
            self.corner_err = np.zeros(8)

    rs = [R(0.9, True), R(0.8, True), R(0.2, False), R(float("nan"), True)]
    s = confidence_summary(rs)
    assert s["n"] == 3 and s["auroc"] == 1.0 and s["share_correct"] == pytest.approx(2 / 3)
    assert confidence_summary([R(float("nan"), True)]) is None
