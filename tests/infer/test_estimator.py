"""xwing.infer.estimator: one image -> pose, with the oracle detector in place of a network."""

import numpy as np
import pytest

from xwing.errors import XwingError
from xwing.geometry.camera import Camera, seed_camera
from xwing.geometry.crop import CropMap
from xwing.geometry.metrics import rotation_error_deg
from xwing.geometry.pose import make_T, rotvec_to_R
from xwing.geometry.projection import project_points
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.infer.factory import load_detector
from xwing.infer.oracle import OracleDetector
from xwing.model.keypoints import SEED_BOX_CORNERS


def random_pose(rng, z=(1.5, 2.8), xy=0.25):
    return make_T(rotvec_to_R(rng.normal(size=3)), [rng.uniform(-xy, xy), rng.uniform(-xy, xy), rng.uniform(*z)])


def corner_err(est, T, cam):
    return np.linalg.norm(est.corners_px - project_points(SEED_BOX_CORNERS, T, cam.K, cam.dist), axis=1)


@pytest.mark.parametrize("size", [(256, 256), (640, 480), (200, 120)])
def test_perfect_keypoints_give_the_exact_pose_at_any_frame_size(size, rng):
    w, h = size
    cam = seed_camera().for_frame_size(w, h)
    det = OracleDetector(input_size=128)
    est = PoseEstimator(det, cam, PipelineConfig(refine="zoom"))
    image = np.zeros((h, w, 3), np.uint8)
    for _ in range(5):
        T = random_pose(rng)
        det.set_truth(T, cam)
        e = est.estimate(image)
        assert e.ok, e.reason
        assert np.abs(e.T_cam_obj - T).max() < 1e-6
        assert corner_err(e, T, cam).max() < 1e-4
        assert e.quality > 0.8
        # every pass's keypoints were mapped back to the same image pixels
        for p in e.passes:
            assert np.abs(p.uv_px - project_points(SEED_BOX_CORNERS, T, cam.K)).max() < 1e-9
    if w > 128 / 0.75:  # large frames: found at low resolution, then a native-resolution crop
        assert "locate" in [p.stage for p in e.passes]


def test_lens_distortion_is_honoured(rng):
    base = seed_camera()
    cam = Camera(base.K, 256, 256, np.array([-0.2, 0.05, 0.001, -0.001]))
    det = OracleDetector(input_size=256)
    est = PoseEstimator(det, cam, PipelineConfig())
    T = random_pose(rng)
    det.set_truth(T, cam)
    e = est.estimate(np.zeros((256, 256, 3), np.uint8))
    assert e.ok and np.abs(e.T_cam_obj - T).max() < 1e-6


def test_zoom_lowers_the_error_of_noisy_keypoints():
    cam = seed_camera()
    rng = np.random.default_rng(7)
    poses = [random_pose(rng) for _ in range(30)]
    image = np.zeros((256, 256, 3), np.uint8)
    medians = {}
    for refine in ("none", "zoom"):
        det = OracleDetector(input_size=256, noise_px=1.0, seed=3)
        est = PoseEstimator(det, cam, PipelineConfig(refine=refine))
        errs = []
        for T in poses:
            det.set_truth(T, cam)
            e = est.estimate(image)
            errs.append(corner_err(e, T, cam).mean() if e.ok else np.inf)
        medians[refine] = np.median(errs)
    # a ship ~40 px long seen in a crop it fills: ~2.5x larger, so ~2.5x smaller image-pixel error
    assert medians["zoom"] < 0.6 * medians["none"]


def test_confident_outliers_are_rejected():
    cam = seed_camera()
    rng = np.random.default_rng(2)
    det = OracleDetector(input_size=256, noise_px=0.3, outlier_rate=0.15, outlier_px=25, seed=1)
    est = PoseEstimator(det, cam, PipelineConfig())
    errs = []
    for _ in range(30):
        T = random_pose(rng)
        det.set_truth(T, cam)
        e = est.estimate(np.zeros((256, 256, 3), np.uint8))
        errs.append(rotation_error_deg(e.T_cam_obj[:3, :3], T[:3, :3]) if e.ok else 180.0)
    assert np.median(errs) < 2.0
    assert np.mean(np.array(errs) < 5.0) > 0.85


def test_no_ship_gives_no_pose_and_a_reason():
    cam = seed_camera()
    det = OracleDetector(input_size=256)
    est = PoseEstimator(det, cam, PipelineConfig(refine="zoom"))
    det.set_truth(None, cam)
    e = est.estimate(np.zeros((256, 256, 3), np.uint8))
    assert not e.ok and "not in view" in e.reason and e.quality == 0.0
    assert np.isnan(e.corners_px).all()
    # a ship entirely behind the camera is not in view either
    det.set_truth(make_T(np.eye(3), [0, 0, -2.0]), cam)
    assert not est.estimate(np.zeros((256, 256, 3), np.uint8)).ok


def test_image_of_the_wrong_size_is_a_user_error():
    est = PoseEstimator(OracleDetector(), seed_camera(), PipelineConfig())
    with pytest.raises(XwingError, match="camera is 256 x 256"):
        est.estimate(np.zeros((100, 120, 3), np.uint8))
    with pytest.raises(XwingError, match="refine"):
        PipelineConfig(refine="full-please")
    with pytest.raises(XwingError, match="multiple of 32"):
        PipelineConfig(input_size=100)


def test_roll_relabelled_keypoints_are_resolved_by_the_prior(rng):
    cam = seed_camera()
    det = OracleDetector(input_size=128, flip_rate=1.0, noise_px=0.2)  # always the wrong labelling first
    est = PoseEstimator(det, cam, PipelineConfig())
    T = random_pose(rng)
    det.set_truth(T, cam)
    crop = est.zoom_crop(T, 128)
    p = est.run_pass(np.zeros((256, 256, 3), np.uint8), crop, "track", T_init=T)
    assert p.ok
    assert rotation_error_deg(p.T_cam_obj[:3, :3], T[:3, :3]) < 3.0


def test_a_closer_look_decides_the_roll_itself(rng):
    """Zoom and locate passes use the coarse pass's pose to start PnP, not to pick the
    roll: a rolled coarse pose must not drag a correct zoomed detection along."""
    from xwing.model.symmetry import T_ROLL180

    cam = seed_camera()
    det = OracleDetector(input_size=128, flip_rate=0.0, noise_px=0.2)  # right labelling, confident
    est = PoseEstimator(det, cam, PipelineConfig())
    T = random_pose(rng)
    det.set_truth(T, cam)
    crop = est.zoom_crop(T, 128)
    T_rolled = T @ T_ROLL180
    img = np.zeros((256, 256, 3), np.uint8)
    zoomed = est.run_pass(img, crop, "zoom1", T_init=T_rolled, roll_prior=False)
    assert zoomed.ok and rotation_error_deg(zoomed.T_cam_obj[:3, :3], T[:3, :3]) < 3.0
    tracked = est.run_pass(img, crop, "track", T_init=T_rolled)  # a temporal prior does decide
    assert tracked.ok and rotation_error_deg(tracked.T_cam_obj[:3, :3], T_rolled[:3, :3]) < 3.0


def test_crop_map_round_trip_is_exact(rng):
    crop = CropMap(2.37, -101.3, 55.25, 128, 128)
    uv = rng.uniform(-50, 300, (100, 2))
    assert np.abs(crop.crop_to_image(crop.image_to_crop(uv)) - uv).max() < 1e-9


def test_load_detector_errors(tmp_path):
    with pytest.raises(XwingError, match="not found"):
        load_detector(str(tmp_path / "missing.onnx"))
    with pytest.raises(XwingError, match="unknown oracle option"):
        load_detector("oracle:nosie=1")
    o = load_detector("oracle:noise=1.5,outliers=0.1,seed=4,size=96")
    assert isinstance(o, OracleDetector) and o.noise_px == 1.5 and o.input_size == 96
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(XwingError, match="model.onnx"):
        load_detector(str(bad))


def test_full_refinement_aligns_the_silhouette_or_keeps_the_zoomed_pose():
    """A GL-free image: the X-wing's anti-aliased coverage, light on dark (xwing.infer.refine.raster)."""
    pytest.importorskip("xwing.infer.refine.align")
    from xwing.infer.refine.raster import rasterize
    from xwing.model.object import ObjectModel

    cam = seed_camera()
    V, F = ObjectModel.load().vertices, ObjectModel.load().faces
    T = make_T(rotvec_to_R([0.6, -0.3, 0.4]), [0.03, -0.02, 1.4])
    cov = rasterize(V, F, T, cam.K, 256, 256, 4).coverage
    image = (20 + 200 * cov[..., None] * np.array([1.0, 0.95, 0.9])).astype(np.uint8)
    det = OracleDetector(input_size=128, noise_px=1.5, seed=5)
    det.set_truth(T, cam)
    e = PoseEstimator(det, cam, PipelineConfig(refine="full")).estimate(image)
    stages = [p.stage for p in e.passes]
    assert stages[0] == "first" and "zoom1" in stages and stages[-1] == "align"
    zoomed = [p for p in e.passes if p.stage.startswith("zoom") and p.ok][-1]
    err_zoom = np.linalg.norm(project_points(SEED_BOX_CORNERS, zoomed.T_cam_obj, cam.K)
                              - project_points(SEED_BOX_CORNERS, T, cam.K), axis=1).mean()
    assert e.ok
    if e.passes[-1].ok:  # an accepted alignment must not make the pose worse
        assert corner_err(e, T, cam).mean() <= err_zoom + 0.05
    else:
        assert np.array_equal(e.T_cam_obj, zoomed.T_cam_obj)


def _write_obj(path, vertices, faces):
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")


def test_full_refinement_aligns_a_user_mesh_given_with_mesh(tmp_path):
    """Alignment must use the user's model, not the procedural X-wing: a wedge-shaped ship
    aligns with its own mesh and is not improved (or is rejected) with the X-wing's."""
    pytest.importorskip("trimesh")
    from xwing.infer.refine.raster import rasterize
    from xwing.model.keypoints import box_corners_of_points

    # An asymmetric wedge (a triangular prism with a fin): nothing like the X-wing.
    V = np.array([[-0.12, -0.15, -0.02], [0.12, -0.15, -0.02], [0.0, 0.17, -0.02],
                  [-0.12, -0.15, 0.03], [0.12, -0.15, 0.03], [0.0, 0.17, 0.03],
                  [0.0, -0.15, 0.03], [0.0, -0.05, 0.03], [0.0, -0.15, 0.10]])
    F = np.array([[0, 2, 1], [3, 4, 5], [0, 1, 4], [0, 4, 3], [1, 2, 5], [1, 5, 4], [2, 0, 3], [2, 3, 5],
                  [6, 7, 8], [6, 8, 7]])
    path = tmp_path / "wedge.obj"
    _write_obj(path, V, F)
    cam = seed_camera()
    T = make_T(rotvec_to_R([0.7, -0.2, 0.5]), [0.02, -0.01, 1.1])
    cov = rasterize(V, F, T, cam.K, 256, 256, 4).coverage
    image = (15 + 210 * cov[..., None] * np.array([0.9, 0.95, 1.0])).astype(np.uint8)
    corners = box_corners_of_points(V)

    def run(mesh: str):
        det = OracleDetector(points_3d=corners, input_size=128, noise_px=1.5, seed=3)
        det.set_truth(T, cam)
        cfg = PipelineConfig(refine="full", mesh=mesh)
        e = PoseEstimator(det, cam, cfg, corners_3d=corners).estimate(image)
        err = np.linalg.norm(project_points(corners, e.T_cam_obj, cam.K) - project_points(corners, T, cam.K),
                             axis=1).mean()
        zoomed = [p for p in e.passes if p.stage.startswith("zoom") and p.ok][-1]
        err_zoom = np.linalg.norm(project_points(corners, zoomed.T_cam_obj, cam.K)
                                  - project_points(corners, T, cam.K), axis=1).mean()
        return e, err, err_zoom

    own, err_own, err_zoom = run(str(path))
    assert own.passes[-1].stage == "align" and own.passes[-1].ok
    assert err_own < 0.5 and err_own < err_zoom
    wrong, err_wrong, _ = run("")
    assert (not wrong.passes[-1].ok) or err_wrong > err_own
    with pytest.raises(XwingError, match="nothing.obj"):
        PoseEstimator(OracleDetector(), cam, PipelineConfig(refine="full", mesh=str(tmp_path / "nothing.obj"))
                      ).estimate(image)


class _MissesWhenShrunk(OracleDetector):
    """The oracle, blind on inputs smaller than the frame (a small ship at low resolution)."""

    def __call__(self, image_rgb):
        det = super().__call__(image_rgb)
        if image_rgb.shape[0] < 256:
            det.presence = 0.0
        return det


def test_a_ship_missed_at_low_resolution_is_searched_again_at_native_resolution():
    cam = seed_camera()
    T = make_T(rotvec_to_R([0.3, 0.2, 0.1]), [0.05, 0.02, 2.2])
    image = np.zeros((256, 256, 3), np.uint8)
    det = _MissesWhenShrunk(input_size=128, noise_px=0.5, seed=1)
    det.set_truth(T, cam)
    e = PoseEstimator(det, cam, PipelineConfig()).estimate(image)
    assert [p.stage for p in e.passes][:2] == ["first", "first_native"] and e.ok
    assert rotation_error_deg(e.T_cam_obj[:3, :3], T[:3, :3]) < 5
    det.set_truth(T, cam)
    off = PoseEstimator(det, cam, PipelineConfig(native_retry=False)).estimate(image)
    assert not off.ok and [p.stage for p in off.passes] == ["first"]


def test_the_native_search_of_a_4k_frame_is_capped():
    cam = seed_camera().for_frame_size(3840, 2160)
    T = make_T(rotvec_to_R([0.3, 0.2, 0.1]), [0.05, 0.02, 2.2])
    image = np.zeros((2160, 3840, 3), np.uint8)
    det = _MissesWhenShrunk(input_size=128, noise_px=0.5, seed=1)
    det.set_truth(T, cam)
    e = PoseEstimator(det, cam, PipelineConfig(refine="none")).estimate(image)
    native = next(p for p in e.passes if p.stage == "first_native")
    assert (native.crop.width, native.crop.height) == (1024, 1024)  # not 3840 x 3840
    assert e.ok and rotation_error_deg(e.T_cam_obj[:3, :3], T[:3, :3]) < 5


def test_with_a_prior_the_other_tilt_nearer_to_it_wins():
    """A flat object's two PnP minima: given the tracker's prior, the one near it is kept."""
    from xwing.geometry.pnp import planar_alternatives

    cam = seed_camera()
    T = make_T(rotvec_to_R([0.8, 0.1, 0.2]), [0.0, 0.0, 2.4])
    det = OracleDetector(input_size=128, noise_px=0.0, seed=0)
    est = PoseEstimator(det, cam, PipelineConfig())
    uv = project_points(est.points_3d, T, cam.K)
    alt = planar_alternatives(T, uv, est.points_3d, cam.K)
    assert alt, "the test pose must have a second minimum"
    from xwing.geometry.crop import letterbox

    res = est._solve("track", letterbox(256, 256, 128), uv, np.ones(len(uv)), 1.0, None)
    res.T_cam_obj = alt[0]  # as if PnP had landed in the other minimum
    fixed = est._nearest_tilt(res, T)
    assert rotation_error_deg(fixed.T_cam_obj[:3, :3], T[:3, :3]) < 1.0
