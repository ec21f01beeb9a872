"""xwing.infer.refine: refiners behind one interface; a mode is a registered list of them."""

from pathlib import Path

import numpy as np

from xwing.geometry.camera import seed_camera
from xwing.geometry.pose import make_T, rotvec_to_R
from xwing.infer import refine
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.infer.oracle import OracleDetector
from xwing.infer.refine import REFINE_MODES, RefineMode, Refiner, ZoomRefiner, stage_order
from xwing.infer.result import PassResult


class ShiftRefiner:
    """A toy refiner: moves the pose 1 cm along x and accepts it."""

    stage = "shift"
    in_tracking = True

    def refine(self, estimator, image, current: PassResult, T_pred=None) -> list[PassResult]:
        T = current.T_cam_obj.copy()
        T[0, 3] += 0.01
        from dataclasses import replace

        return [replace(current, stage="shift", T_cam_obj=T)]


def test_modes_name_lists_of_refiners():
    assert set(REFINE_MODES) >= {"none", "zoom", "full"}
    assert REFINE_MODES["none"].refiners == ()
    assert [r.stage for r in REFINE_MODES["full"].refiners] == ["zoom", "align"]
    assert stage_order()[:2] == ("first", "locate") and "align" in stage_order()
    assert all(isinstance(r, Refiner) for m in REFINE_MODES.values() for r in m.refiners)


def test_a_new_refiner_is_one_class_and_one_registered_line(monkeypatch):
    monkeypatch.setitem(refine.REFINE_MODES, "shift", RefineMode((ZoomRefiner(), ShiftRefiner()), "zoom, then shift"))
    cam = seed_camera()
    det = OracleDetector(input_size=128)
    T = make_T(rotvec_to_R([0.3, 0.2, 0.1]), [0.0, 0.0, 2.0])
    det.set_truth(T, cam)
    est = PoseEstimator(det, cam, PipelineConfig(refine="shift"))
    e = est.estimate(np.zeros((256, 256, 3), np.uint8))
    assert e.ok and e.passes[-1].stage == "shift"
    assert abs(e.T_cam_obj[0, 3] - (T[0, 3] + 0.01)) < 1e-6
    assert "shift" in stage_order()


def test_both_detectors_have_the_detector_interface():
    from xwing.infer.detector import Detector, OnnxDetector

    assert isinstance(OracleDetector(input_size=128), Detector)
    shipped = Path(__file__).resolve().parents[2] / "models" / "xwing.onnx"
    if shipped.is_file():
        assert isinstance(OnnxDetector(shipped), Detector)


def test_align_refiner_in_tracking_starts_short_from_the_prediction_then_falls_back(monkeypatch):
    from xwing.infer.refine import align as A

    cam = seed_camera()
    det = OracleDetector(input_size=128)
    T_meas = make_T(rotvec_to_R([0.3, 0.2, 0.1]), [0.0, 0.0, 2.0])
    T_pred = make_T(rotvec_to_R([0.31, 0.2, 0.1]), [0.05, 0.0, 2.0])  # several px off
    det.set_truth(T_meas, cam)
    est = PoseEstimator(det, cam, PipelineConfig(refine="full"))
    current = est.run_pass(np.zeros((256, 256, 3), np.uint8), est.zoom_crop(T_meas, 128), "track", T_init=T_meas)
    calls = []

    def fake_align(image, K, vertices, faces, T_init, config=None, dist=None):
        calls.append((config, T_init.copy()))
        short = config is A.CLOSE_START
        return A.AlignResult(T_init.copy(), ok=short and accept_short, quality=0.9, quality_init=0.9, edge_score=3.0,
                             shift_px=0.0, iterations=1)

    monkeypatch.setattr(A, "align", fake_align)
    refiner = A.AlignRefiner(close_start=A.CLOSE_START)
    accept_short = True
    done = refiner.refine(est, np.zeros((256, 256, 3), np.uint8), current, T_pred=T_pred)
    assert len(calls) == 1 and calls[0][0] is A.CLOSE_START and np.allclose(calls[0][1], T_pred)
    assert done[0].ok and np.allclose(done[0].T_cam_obj, T_pred)
    calls.clear()
    accept_short = False  # rejected, prediction and measurement agree: nothing more to try
    T_near = make_T(rotvec_to_R([0.3, 0.2, 0.1]), [0.001, 0.0, 2.0])
    done = refiner.refine(est, np.zeros((256, 256, 3), np.uint8), current, T_pred=T_near)
    assert [c[0] is A.CLOSE_START for c in calls] == [True] and not done[0].ok
    calls.clear()
    # rejected, the measurement is far from the prediction: the full schedule from the
    # measurement, no planar alternative in tracking
    refiner.refine(est, np.zeros((256, 256, 3), np.uint8), current, T_pred=T_pred)
    assert [c[0] is A.CLOSE_START for c in calls] == [True, False]
    assert np.allclose(calls[1][1], current.T_cam_obj)
    calls.clear()
    refiner.refine(est, np.zeros((256, 256, 3), np.uint8), current)  # a single image: never the short schedule
    assert calls and not any(c[0] is A.CLOSE_START for c in calls)


def test_tracking_aligns_from_the_prediction_with_the_tracking_schedule_by_default():
    from xwing.infer.refine.align import TRACKING, AlignRefiner

    assert AlignRefiner().close_start is TRACKING
    assert REFINE_MODES["full"].refiners[-1].close_start is TRACKING
    assert sum(TRACKING.coarse_iterations) + sum(TRACKING.iterations) < 18  # shorter than the full 8 + 10
