"""The top/bottom classifier: canonical patch, numpy forward, roll choice in the pipeline and tracker."""

import numpy as np
import pytest

from xwing.errors import XwingError
from xwing.geometry.camera import seed_camera
from xwing.geometry.metrics import rotation_error_deg
from xwing.geometry.pose import make_T, rotvec_to_R
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.infer.oracle import OracleDetector
from xwing.infer.side import (
    GRID_Z,
    SIDE_FORMAT,
    SIDE_FORMAT_PROFILE,
    SideClassifier,
    sample_patch,
    side_file_for,
)
from xwing.model.symmetry import T_ROLL180, choose_roll, top_faces_camera


def _pose(rotvec, t=(0.01, -0.02, 1.2)):
    return make_T(rotvec_to_R(np.asarray(rotvec, float)), np.asarray(t, float))


def test_the_other_roll_samples_the_mirrored_patch():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (256, 256, 3)).astype(np.uint8)
    cam = seed_camera()
    T = _pose([0.3, 0.5, -0.2])
    a = sample_patch(image, T, cam.K)
    b = sample_patch(image, T @ T_ROLL180, cam.K)
    assert a.shape == (36, 12, 3)
    assert np.abs(a.astype(int) - b[:, ::-1].astype(int)).max() <= 1  # bilinear rounding only
    # Behind the camera or outside the image: black, not garbage.
    assert not sample_patch(image, _pose([0, 0, 0], (5.0, 0, 1.0)), cam.K).any()
    # The profile (symmetry plane x = 0) mirrors too (z -> -z): both halves reversed column-wise.
    a = sample_patch(image, T, cam.K, grid_z=GRID_Z)
    b = sample_patch(image, T @ T_ROLL180, cam.K, grid_z=GRID_Z)
    assert a.shape == (36, 12, 6)
    assert np.abs(a.astype(int) - b[:, ::-1].astype(int)).max() <= 1


def test_top_facing_and_choose_roll():
    T_top = _pose([np.pi, 0, 0])  # +z of the model points at the camera (camera looks along +z)
    assert top_faces_camera(T_top) and not top_faces_camera(T_top @ T_ROLL180)
    assert choose_roll(0.95, T_top, T_top @ T_ROLL180) == 0
    assert choose_roll(0.05, T_top, T_top @ T_ROLL180) == 1
    assert choose_roll(0.55, T_top, T_top @ T_ROLL180) is None  # unsure
    assert choose_roll(0.95, T_top, T_top) is None  # both show the same side: no evidence


def _random_weights(rng):
    shapes = {"conv1.w": (16, 3, 3, 3), "conv1.b": (16,), "conv2.w": (32, 16, 3, 3), "conv2.b": (32,),
              "conv3.w": (32, 32, 3, 3), "conv3.b": (32,), "fc.w": (1, 96), "fc.b": (1,)}
    w = {k: (rng.normal(size=s) * 0.3).astype(np.float32) for k, s in shapes.items()}
    w.update({"format": np.array(SIDE_FORMAT), "grid_x": np.array([-0.045, 0.045, 12.0]),
              "grid_y": np.array([-0.11, 0.12, 36.0])})
    return w


@pytest.mark.parametrize("profile", [False, True], ids=["mid-plane", "mid-plane and profile"])
def test_numpy_forward_equals_the_torch_network(tmp_path, profile):
    torch = pytest.importorskip("torch")
    from xwing.learn.side_train import _torch_net, numpy_weights

    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    net = _torch_net(profile)
    w = {**_random_weights(rng), **numpy_weights(net)}
    if profile:
        w.update({"format": np.array(SIDE_FORMAT_PROFILE), "grid_z": np.array(GRID_Z, float)})
    path = tmp_path / "s.side.npz"
    np.savez(path, **w)
    clf = SideClassifier.load(path)
    assert (clf.grid_z is not None) == profile
    patches = rng.integers(0, 255, (5, 36, 12, 6 if profile else 3)).astype(np.uint8)
    from xwing.infer.side import normalise_patches

    with torch.no_grad():
        ref = net(torch.from_numpy(normalise_patches(patches))).numpy()
    assert np.allclose(clf._forward(patches), ref, atol=1e-4)
    image = rng.integers(0, 255, (256, 256, 3)).astype(np.uint8)
    cam = seed_camera()
    T = _pose([0.3, 0.5, -0.2])
    if not profile:
        assert np.allclose(clf.logits(patches), ref[:, 0], atol=1e-4)
        return
    # Format 2 answers for the roll it is given: the other roll (its patch mirrored, its facing
    # negated) gets exactly the opposite logit, and both rolls give the same top/bottom answer.
    facing = rng.uniform(-1, 1, 5)
    np.testing.assert_allclose(clf.roll_logits(patches[:, :, ::-1], -facing), -clf.roll_logits(patches, facing),
                               atol=1e-5)
    assert clf.p_top(image, T, cam.K) == pytest.approx(clf.p_top(image, T @ T_ROLL180, cam.K), abs=0.02)
    with pytest.raises(ValueError, match="facing"):
        clf.logits(patches)


def test_bad_side_files_are_one_line_errors(tmp_path):
    with pytest.raises(XwingError, match="nothing.side.npz"):
        SideClassifier.load(tmp_path / "nothing.side.npz")
    bad = tmp_path / "bad.side.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(XwingError, match="bad.side.npz"):
        SideClassifier.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(XwingError, match="not an xwing side classifier"):
        SideClassifier.load(other)
    assert side_file_for("models/xwing.onnx").name == "xwing.side.npz"


class TruthSide:
    """A side classifier that knows the answer (or its opposite): tests the plumbing."""

    edge_on_weight = 0.0

    def __init__(self, T_true, liar=False):
        self.T_true, self.liar = T_true, liar

    def p_top(self, image, T, K, dist=None):
        top = top_faces_camera(self.T_true) != self.liar
        return 0.97 if top else 0.03


def test_pipeline_lets_the_side_classifier_settle_the_roll():
    cam = seed_camera()
    T = _pose([0.4, 2.6, 0.3])  # a view from below: the detector's unsure labellings matter
    image = np.zeros((256, 256, 3), np.uint8)
    errs = {}
    for name, side in (("none", None), ("truth", TruthSide(T)), ("liar", TruthSide(T, liar=True))):
        det = OracleDetector(input_size=128, noise_px=0.5, seed=2, flip_rate=1.0)  # always the wrong labelling
        det.set_truth(T, cam)
        est = PoseEstimator(det, cam, PipelineConfig(refine="zoom", side="none"))
        est.side = side
        e = est.estimate(image)
        assert e.ok
        errs[name] = rotation_error_deg(e.T_cam_obj[:3, :3], T[:3, :3])
    assert errs["none"] > 150  # the detector's wrong guess stands
    assert errs["truth"] < 5
    assert errs["liar"] > 150


def test_tracker_roll_vote_turns_a_wrong_track_over():
    from xwing.track.tracker import Tracker, TrackerConfig

    cam = seed_camera()
    image = np.zeros((256, 256, 3), np.uint8)
    frames = [_pose([0.3 + 0.01 * i, 2.7, 0.2], (0.0, 0.0, 1.3)) for i in range(12)]
    det = OracleDetector(input_size=128, noise_px=0.3, seed=4, flip_rate=1.0)
    est = PoseEstimator(det, cam, PipelineConfig(side="none"))
    tracker = Tracker(est, TrackerConfig())
    side = TruthSide(frames[0])
    errs, rolled = [], []
    for i, T in enumerate(frames):
        det.set_truth(T, cam)
        side.T_true = T
        # The first detection takes the wrong roll (no classifier yet); the vote starts after it.
        est.side = side if i > 0 else None
        r = tracker.step(image, i, i / 30)
        errs.append(rotation_error_deg(r.T_cam_obj[:3, :3], T[:3, :3]))
        rolled.append(r.rolled)
    assert errs[0] > 150
    assert any(rolled) and rolled.count(True) == 1
    assert max(errs[-3:]) < 10


def test_the_classifier_runs_without_torch_or_moderngl(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "m.side.npz"
    np.savez(path, **_random_weights(np.random.default_rng(3)))
    code = ("import sys, numpy as np\n"
            "from xwing.geometry.camera import seed_camera\n"
            "from xwing.infer.side import SideClassifier\n"
            f"c = SideClassifier.load({str(path)!r})\n"
            "T = np.eye(4); T[2, 3] = 1.2\n"
            "p = c.p_top(np.full((256, 256, 3), 90, np.uint8), T, seed_camera().K)\n"
            "assert 0.0 <= p <= 1.0\n"
            "bad = [m for m in ('torch', 'moderngl') if m in sys.modules]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]


class SharpSide:
    """A side cue that is right where the pose it is asked at is within a degree of the truth
    (up to the roll) and unsure elsewhere: it reads its patches well only where they belong."""

    edge_on_weight = 0.0

    def __init__(self, T_true):
        self.T_true = T_true

    def p_top(self, image, T, K, dist=None):
        from xwing.model.symmetry import rolled

        near = min(rotation_error_deg(T[:3, :3], self.T_true[:3, :3]),
                   rotation_error_deg(rolled(T)[:3, :3], self.T_true[:3, :3])) < 1.0
        return (0.97 if top_faces_camera(self.T_true) else 0.03) if near else 0.5


def test_the_aligned_pose_is_turned_over_where_the_cue_at_it_says_so():
    """The detector's wrong roll stands through the rough passes (the cue is unsure there); at
    the aligned pose the cue is sure, and the pipeline turns the pose over and aligns it again."""
    from _synthetic import ship_image

    cam = seed_camera()
    T = _pose([0.5, 2.5, 0.3], (0.02, -0.01, 1.1))
    est0 = PoseEstimator(OracleDetector(input_size=128), cam, PipelineConfig(refine="full", side="none"))
    image = ship_image(est0.object_model.mesh, T, cam, np.random.default_rng(3))
    errs = {}
    for refine in ("zoom", "full"):
        det = OracleDetector(input_size=128, noise_px=4.0, seed=2, flip_rate=1.0)  # always the wrong labelling
        det.set_truth(T, cam)
        est = PoseEstimator(det, cam, PipelineConfig(refine=refine, side="none"))
        est.side = SharpSide(T)
        e = est.estimate(image)
        assert e.ok
        errs[refine] = rotation_error_deg(e.T_cam_obj[:3, :3], T[:3, :3])
    assert errs["zoom"] > 150  # no aligned pose: the wrong roll stands
    assert errs["full"] < 2, errs
