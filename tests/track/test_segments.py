"""The roll of a track decided by the whole track (xwing.track.segments), with injected side evidence.

Oracle flights carry no surface, so the side cue is replaced by one that reads the
truth: confident face-on, unsure edge-on, as the real cue is.
"""

import math

import numpy as np
import pytest

from xwing.eval.tracking import roll_flip_rate
from xwing.geometry.camera import seed_camera
from xwing.geometry.metrics import rotation_error_deg
from xwing.geometry.pose import make_T, rotvec_to_R
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.infer.oracle import OracleDetector
from xwing.model.symmetry import ROLL180_PERM, facing_cos, roll_llr, rolled
from xwing.track.segments import RollEvidence, decide_rolls, segment_totals
from xwing.track.tracker import FrameResult, Tracker, TrackerConfig

CAM = seed_camera()
FRAME = np.zeros((256, 256, 3), np.uint8)
CORNERS = OracleDetector().points_3d


class TruthSide:
    """A side cue that knows the true pose: p_top = sigmoid(6 cos) of the true pose's facing."""

    edge_on_weight = 0.0

    def __init__(self):
        self.T_gt = None

    def p_top(self, image, T_cam_obj, K, dist=None):
        return 1.0 / (1.0 + math.exp(-6.0 * facing_cos(self.T_gt)))


def edge_on_then_face_on(n=60, face_from=35):
    """The ship edge-on (its up axis across the line of sight) for ``face_from`` frames, then
    turning its top towards the camera (up to 70 degrees)."""
    R_base = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # model z -> camera x (edge-on)
    poses = []
    for i in range(n):
        theta = 0.0 if i < face_from else np.radians(min(70.0, 4.0 * (i - face_from)))
        R = rotvec_to_R([0.0, theta, 0.0]) @ rotvec_to_R([0.0, 0.0, 0.004 * i]) @ R_base
        poses.append(make_T(R, [0.02 * np.sin(i / 9), 0.01 * i / n, 2.2]))
    return poses


def track(poses, roll_shown, **cfg):
    """Track ``poses`` with the oracle reporting ``roll_shown(i, T)`` and the truth-reading side cue."""
    det = OracleDetector(input_size=256, noise_px=0.3, seed=1)
    est = PoseEstimator(det, CAM, PipelineConfig(refine="none", side="none"))
    side = TruthSide()
    est.side = side
    tr = Tracker(est, TrackerConfig(**cfg))
    out = []
    for i, T in enumerate(poses):
        side.T_gt = T
        det.set_truth(None if T is None else roll_shown(i, T), CAM)
        out.append(tr.step(FRAME, i, i / 30))
    return out


def errors(results, poses):
    return np.array([rotation_error_deg(r.T_cam_obj[:3, :3], T[:3, :3]) for r, T in zip(results, poses)
                     if r.T_cam_obj is not None and T is not None])


def test_roll_llr_is_zero_edge_on_and_signed_by_the_side_shown():
    poses = edge_on_then_face_on()
    edge, face = poses[0], poses[-1]
    assert abs(facing_cos(edge)) < 1e-9 and facing_cos(face) > 0.9
    assert roll_llr(0.99, edge) == 0.0  # confident output edge-on counts for nothing
    assert roll_llr(0.9, face) == pytest.approx(math.log(9))
    assert roll_llr(0.9, rolled(face)) == pytest.approx(-math.log(9))
    assert roll_llr(1.0, face) == pytest.approx(3.0)  # one frame's say is capped
    assert roll_llr(float("nan"), face) == 0.0
    # A cue that reads the profile counts edge-on with its measured weight, and fully face-on.
    assert abs(roll_llr(0.9, edge, edge_on_weight=0.4)) == pytest.approx(0.4 * math.log(9))
    assert roll_llr(0.9, face, edge_on_weight=0.4) == pytest.approx(math.log(9))


def test_roll_evidence_decides_and_turns():
    ev = RollEvidence(decide_llr=4.0)
    ev.start()
    ev.add(-2.5)
    assert not ev.decided and not ev.should_turn()
    ev.add(-2.5)
    assert ev.decided and ev.should_turn()
    ev.turn()
    assert ev.current == pytest.approx(5.0) and not ev.should_turn()
    ev.add(1.0)  # evidence for the turned pose adds to the other hypothesis
    assert ev.total == pytest.approx(-6.0)


def test_decide_rolls_turns_the_frames_whose_parity_lost():
    T = edge_on_then_face_on()[-1]
    corners = np.arange(16.0).reshape(8, 2)

    def fr(i, seg, parity, llr):
        return FrameResult(i, i / 30, "tracked", T.copy(), T.copy(), corners, np.arange(8.0), 0.1, 1.0,
                           roll_llr=llr, segment=seg, parity=parity)

    res = [fr(0, 0, 0, 0.0), fr(1, 0, 0, -1.0), fr(2, 0, 1, 3.0), fr(3, 1, 0, 0.5)]
    assert segment_totals(res) == {0: pytest.approx(-4.0), 1: pytest.approx(0.5)}
    out = decide_rolls(res, CORNERS, CAM.K, decide_llr=4.0)
    assert np.allclose(out[0].T_cam_obj, rolled(T)) and np.allclose(out[1].T_cam_obj, rolled(T))
    assert np.allclose(out[2].T_cam_obj, T)  # parity 1 was already the winning hypothesis
    assert np.allclose(out[3].T_cam_obj, T) and not out[3].roll_decided
    assert all(r.roll_decided for r in out[:3]) and out[0].parity == out[2].parity == 1
    assert np.array_equal(out[0].corner_conf, np.arange(8.0)[ROLL180_PERM])
    assert out[1].roll_llr == 1.0


def test_a_flight_that_starts_edge_on_with_the_wrong_roll_ends_right_from_a_file():
    poses = edge_on_then_face_on()
    causal = track(poses, lambda i, T: rolled(T))  # the detector's roll is wrong throughout
    seg = {r.segment for r in causal}
    assert seg == {0}
    first_decided = next(i for i, r in enumerate(causal) if r.roll_decided)
    assert first_decided > 35  # not before the top is seen
    assert not any(r.roll_decided for r in causal[:35])
    # causal: wrong until decided, turned over then and right after
    assert roll_flip_rate([r.T_cam_obj for r in causal[:35]], poses[:35]) == 1.0
    assert roll_flip_rate([r.T_cam_obj for r in causal[first_decided:]], poses[first_decided:]) == 0.0
    # from a file: every frame right, the edge-on ones before the first face-on view too
    offline = decide_rolls(causal, CORNERS, CAM.K, CAM.dist)
    assert roll_flip_rate([r.T_cam_obj for r in offline], poses) == 0.0
    assert np.median(errors(offline, poses)) < 1.0
    assert all(r.roll_decided for r in offline)


def test_a_redetection_that_agrees_up_to_the_roll_keeps_the_segment():
    poses = edge_on_then_face_on(n=50, face_from=60)  # edge-on all along: no side evidence
    truth = [None if 20 <= i < 23 else T for i, T in enumerate(poses)]
    # before the gap the detector shows the wrong roll, after it the right one
    res = track(truth, lambda i, T: rolled(T) if i < 20 else T)
    assert [r.status for r in res[20:23]] == ["lost"] * 3 and res[23].status == "detected"
    assert {r.segment for r in res if r.T_cam_obj is not None} == {0}
    # the re-detection took the track's roll, so the track stays one consistent hypothesis
    assert roll_flip_rate([r.T_cam_obj for r in res if r.T_cam_obj is not None],
                          [T for T, r in zip(truth, res) if r.T_cam_obj is not None]) == 1.0
    # a re-detection far from the segment's last pose starts a new one
    moved = [T if (T is None or i < 20) else make_T(rotvec_to_R([1.2, 0, 0]) @ T[:3, :3], T[:3, 3])
             for i, T in enumerate(truth)]
    res2 = track(moved, lambda i, T: T)
    assert res2[23].segment == res2[19].segment + 1


def test_without_a_side_cue_nothing_is_decided():
    poses = edge_on_then_face_on(n=20)
    det = OracleDetector(input_size=256, noise_px=0.3, seed=1)
    tr = Tracker(PoseEstimator(det, CAM, PipelineConfig(refine="none", side="none")), TrackerConfig())
    res = []
    for i, T in enumerate(poses):
        det.set_truth(T, CAM)
        res.append(tr.step(FRAME, i, i / 30))
    assert all(math.isnan(r.p_top) and r.roll_llr == 0.0 and not r.roll_decided for r in res)
    out = decide_rolls(res, CORNERS, CAM.K)
    assert all(np.allclose(a.T_cam_obj, b.T_cam_obj) for a, b in zip(out, res))
