"""xwing.track.tracker with the oracle detector on blank frames (the oracle reads only the truth)."""

import numpy as np
import pytest

from _flights import synthetic_flight
from xwing.errors import XwingError
from xwing.eval.tracking import jitter_deg
from xwing.geometry.camera import seed_camera
from xwing.geometry.metrics import rotation_error_deg
from xwing.geometry.pose import make_T, rotvec_to_R, se3_exp
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.infer.oracle import OracleDetector
from xwing.track.filters import PoseAlphaBeta, PoseOneEuro
from xwing.track.tracker import Tracker, TrackerConfig

CAM = seed_camera()
FRAME = np.zeros((256, 256, 3), np.uint8)


def run(poses, per_frame, seed=0, **kw):
    det = OracleDetector(input_size=256, noise_px=1.0, outlier_rate=0.02, seed=seed)
    tr = Tracker(PoseEstimator(det, CAM, PipelineConfig()), TrackerConfig(per_frame=per_frame, **kw))
    out = []
    for i, T in enumerate(poses):
        det.set_truth(T, CAM)
        out.append(tr.step(FRAME, i, i / 30))
    return out


def rot_errors(results, poses):
    return np.array([rotation_error_deg(r.T_cam_obj[:3, :3], T[:3, :3]) if r.T_cam_obj is not None else np.inf
                     for r, T in zip(results, poses)])


@pytest.mark.parametrize("seed", [0, 1])
def test_tracking_beats_per_frame_on_error_and_jitter(seed):
    poses = synthetic_flight(90, CAM, seed=seed)
    trk = run(poses, per_frame=False, seed=seed)
    per = run(poses, per_frame=True, seed=seed)
    statuses = [r.status for r in trk]
    assert statuses.count("tracked") >= 85 and "lost" not in statuses
    assert set(r.status for r in per) == {"detected"}
    assert np.median(rot_errors(trk, poses)) < np.median(rot_errors(per, poses))
    j_trk = jitter_deg([r.T_cam_obj for r in trk], poses)
    j_per = jitter_deg([r.T_cam_obj for r in per], poses)
    assert j_trk < 0.8 * j_per


def test_ship_leaving_the_view_is_lost_then_found_again():
    poses = synthetic_flight(60, CAM, seed=2, exit_frame=False)
    truth = [None if 20 <= i < 30 else T for i, T in enumerate(poses)]
    det = OracleDetector(input_size=256, noise_px=0.5, seed=0)
    tr = Tracker(PoseEstimator(det, CAM, PipelineConfig()), TrackerConfig())
    statuses = []
    for i, T in enumerate(truth):
        det.set_truth(T, CAM)
        r = tr.step(FRAME, i, i / 30)
        statuses.append(r.status)
        if r.status == "lost":
            assert r.T_cam_obj is None and np.isnan(r.corners_px).all()
    assert statuses[:20] == ["detected"] + ["tracked"] * 19
    assert statuses[20:30] == ["lost"] * 10
    assert statuses[30] == "detected" and set(statuses[31:]) == {"tracked"}


def test_partial_exit_from_the_frame_keeps_tracking():
    poses = synthetic_flight(90, CAM, seed=0, exit_frame=True)
    from xwing.geometry.projection import in_image, project_points
    from xwing.model.keypoints import SEED_BOX_CORNERS

    outside = [int((~in_image(project_points(SEED_BOX_CORNERS, T, CAM.K), 256, 256)).sum()) for T in poses]
    assert max(outside) >= 3  # the flight really leaves the frame in part
    trk = run(poses, per_frame=False)
    assert all(r.status == "tracked" for r, n in zip(trk, outside) if n > 0)


def test_constant_velocity_prediction_is_exact_for_constant_body_motion():
    det = OracleDetector(input_size=256)
    tr = Tracker(PoseEstimator(det, CAM, PipelineConfig()), TrackerConfig(smooth=0))
    step = se3_exp(np.array([0.004, -0.002, 0.01, 0.02, 0.03, -0.01]))
    T = make_T(rotvec_to_R([0.3, 0.2, 0.1]), [0, 0, 2.0])
    for i in range(4):
        det.set_truth(T, CAM)
        r = tr.step(FRAME, i)
        assert np.abs(r.T_cam_obj - T).max() < 1e-9  # no smoothing, perfect keypoints
        T = T @ step
    assert np.abs(tr.predict() - T).max() < 1e-9


def test_alpha_beta_has_no_lag_on_constant_motion_and_removes_noise():
    rng = np.random.default_rng(0)
    step = se3_exp(np.array([0.002, 0.0, 0.004, 0.01, 0.02, 0.0]))
    T = make_T(np.eye(3), [0, 0, 2.0])
    f = PoseAlphaBeta(3.0, 1.0, 20.0)
    truth, noisy, out = [], [], []
    for _ in range(120):
        truth.append(T)
        n = make_T(rotvec_to_R(rng.normal(0, 0.01, 3)), T[:3, 3] + rng.normal(0, 0.002, 3))
        noisy.append(n @ np.diag([1, 1, 1, 1.0]))
        noisy[-1][:3, :3] = n[:3, :3] @ T[:3, :3]
        out.append(f.update(noisy[-1], 1 / 30))
        T = T @ step
    err_in = [rotation_error_deg(a[:3, :3], b[:3, :3]) for a, b in zip(noisy[60:], truth[60:])]
    err_out = [rotation_error_deg(a[:3, :3], b[:3, :3]) for a, b in zip(out[60:], truth[60:])]
    assert np.mean(err_out) < 0.7 * np.mean(err_in)
    # noiseless constant motion: the output equals the input once the velocity is known
    f2 = PoseAlphaBeta(3.0, 1.0, 20.0)
    T = make_T(np.eye(3), [0, 0, 2.0])
    for _ in range(10):
        o = f2.update(T, 1 / 30)
        T = T @ step
    assert np.abs(o - T @ np.linalg.inv(step)).max() < 1e-9


def test_one_euro_smooths_a_still_pose():
    rng = np.random.default_rng(1)
    T = make_T(rotvec_to_R([0.2, 0.1, 0.0]), [0, 0, 2.0])
    f = PoseOneEuro(1.0, 1.0, 20.0, 1.0)
    out, noisy = [], []
    for _ in range(60):
        n = T.copy()
        n[:3, :3] = rotvec_to_R(rng.normal(0, 0.01, 3)) @ T[:3, :3]
        noisy.append(n)
        out.append(f.update(n, 1 / 30))
    errs = [rotation_error_deg(o[:3, :3], T[:3, :3]) for o in out[30:]]
    errs_in = [rotation_error_deg(o[:3, :3], T[:3, :3]) for o in noisy[30:]]
    assert np.mean(errs) < 0.5 * np.mean(errs_in)


def test_config_errors():
    with pytest.raises(XwingError, match="multiple of 32"):
        TrackerConfig(track_size=100)
    with pytest.raises(XwingError, match="filter"):
        TrackerConfig(filter="kalmanish")
    with pytest.raises(XwingError, match=">= 0"):
        TrackerConfig(smooth=-1)


def test_on_the_renderers_flight_tracking_beats_per_frame():
    """The data engine's flight (approach, pass partly out of the frame, barrel roll), 150 frames."""
    flight_path = pytest.importorskip("xwing.render.sequence").flight_path
    poses = list(flight_path(np.random.default_rng([11, 0x5E9]), 150, CAM))
    trk = run(poses, per_frame=False, seed=11)
    per = run(poses, per_frame=True, seed=11)
    assert sum(r.status == "tracked" for r in trk) >= 145 and all(r.status != "lost" for r in trk)
    assert np.median(rot_errors(trk, poses)) < np.median(rot_errors(per, poses))
    assert jitter_deg([r.T_cam_obj for r in trk], poses) < 0.6 * jitter_deg([r.T_cam_obj for r in per], poses)


def test_refine_full_aligns_every_tracked_frame():
    from xwing.geometry.projection import project_points
    from xwing.infer.estimator import PipelineConfig, PoseEstimator
    from xwing.infer.refine.raster import rasterize
    from xwing.model.keypoints import SEED_BOX_CORNERS
    from xwing.model.object import ObjectModel
    from xwing.track.tracker import Tracker, TrackerConfig

    cam = seed_camera()
    V, F = ObjectModel.load().vertices, ObjectModel.load().faces
    poses = [make_T(rotvec_to_R([0.6, -0.3 + 0.01 * i, 0.4]), [0.03, -0.02, 1.4]) for i in range(5)]
    frames = [(20 + 200 * rasterize(V, F, T, cam.K, 256, 256, 4).coverage[..., None]
               * np.array([1.0, 0.95, 0.9])).astype(np.uint8) for T in poses]

    def run(refine):
        det = OracleDetector(input_size=128, noise_px=1.5, seed=5)
        tracker = Tracker(PoseEstimator(det, cam, PipelineConfig(refine=refine, side="none")), TrackerConfig())
        errs, stages = [], []
        for i, (img, T) in enumerate(zip(frames, poses)):
            det.set_truth(T, cam)
            r = tracker.step(img, i, i / 30)
            errs.append(np.linalg.norm(project_points(SEED_BOX_CORNERS, r.T_cam_obj, cam.K)
                                       - project_points(SEED_BOX_CORNERS, T, cam.K), axis=1).mean())
            stages.append([p.stage for p in r.passes])
        return np.array(errs), stages

    e_none, s_none = run("none")
    e_full, s_full = run("full")
    assert all("align" not in s for s in s_none)
    assert all("align" in s for s in s_full[1:])  # tracked frames are aligned too
    assert e_full[1:].mean() < 0.5 < e_none[1:].mean()


def test_a_jumping_measurement_is_coasted_over_then_searched():
    cam = seed_camera()
    T = make_T(rotvec_to_R([0.5, 0.2, 0.1]), [0.0, 0.0, 1.3])
    T_wrong = make_T(rotvec_to_R([0.5, 0.2, 0.1 + np.pi / 2]), [0.0, 0.0, 1.3])
    image = np.zeros((256, 256, 3), np.uint8)

    def run(coast, wrong_frames):
        det = OracleDetector(input_size=128, noise_px=0.2, seed=1)
        tracker = Tracker(PoseEstimator(det, cam, PipelineConfig(side="none")), TrackerConfig(coast_frames=coast))
        out = []
        for i in range(8):
            det.set_truth(T_wrong if i in wrong_frames else T, cam)
            r = tracker.step(image, i, i / 30)
            out.append((r.status, rotation_error_deg(r.T_cam_obj[:3, :3], T[:3, :3])))
        return out

    out = run(2, {3})
    assert [s for s, _ in out][2:5] == ["tracked", "predicted", "tracked"]
    assert max(e for _, e in out) < 3.0  # the jump never reached the output
    out = run(0, {3})
    assert out[3][0] == "detected"  # without coasting: a full search at once
    out = run(2, {3, 4, 5})
    assert [s for s, _ in out][3:6] == ["predicted", "predicted", "detected"]
