import numpy as np

from xwing.geometry.camera import Camera, seed_camera
from xwing.geometry.metrics import rotation_error_deg
from xwing.geometry.pnp import refine_irls, solve_pnp
from xwing.geometry.pose import make_T, random_rotation, rotvec_to_R, se3_exp
from xwing.geometry.projection import project_points
from xwing.model.keypoints import SEED_BOX_CORNERS


def random_pose(rng, cam, dmin=0.6, dmax=2.5):
    """A pose whose origin projects inside the image, at distance dmin..dmax."""
    d = rng.uniform(dmin, dmax)
    uv = rng.uniform([0, 0], [cam.width - 1, cam.height - 1])
    ray = np.linalg.solve(cam.K, [uv[0], uv[1], 1.0])
    t = ray / np.linalg.norm(ray) * d
    return make_T(random_rotation(rng), t)


def test_exact_round_trip_1000_poses(rng):
    cam = seed_camera()
    for _ in range(1000):
        T = random_pose(rng, cam)
        uv = project_points(SEED_BOX_CORNERS, T, cam.K)
        res = solve_pnp(uv, SEED_BOX_CORNERS, cam.K)
        assert res.ok and res.inliers.all()
        assert rotation_error_deg(res.T_cam_obj[:3, :3], T[:3, :3]) < 1e-4
        assert np.linalg.norm(res.T_cam_obj[:3, 3] - T[:3, 3]) / np.linalg.norm(T[:3, 3]) < 1e-6
        assert res.reproj_err_px < 1e-6


def test_ransac_flags_outliers(rng):
    cam = seed_camera()
    flagged, rot_err = 0, []
    n = 300
    for k in range(n):
        T = random_pose(rng, cam)
        uv = project_points(SEED_BOX_CORNERS, T, cam.K) + rng.normal(0, 0.5, (8, 2))
        bad = rng.choice(8, 2, replace=False)
        angle = rng.uniform(0, 2 * np.pi, 2)
        uv[bad] += rng.uniform(10, 50, (2, 1)) * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        res = solve_pnp(uv, SEED_BOX_CORNERS, cam.K, seed=k)
        assert res.ok
        flagged += int(not res.inliers[bad].any())
        rot_err.append(rotation_error_deg(res.T_cam_obj[:3, :3], T[:3, :3]))
    assert flagged / n >= 0.95
    assert np.median(rot_err) < 1.0


def test_too_few_points_is_no_pose():
    cam = seed_camera()
    uv = project_points(SEED_BOX_CORNERS, make_T(np.eye(3), [0, 0, 1.0]), cam.K)
    conf = np.array([1, 1, 1, 0, 0, 0, 0, 0.05])
    res = solve_pnp(uv, SEED_BOX_CORNERS, cam.K, conf=conf)
    assert not res.ok and "usable" in res.reason and res.inliers.shape == (8,) and not res.inliers.any()
    uv[:5] = np.nan
    assert not solve_pnp(uv, SEED_BOX_CORNERS, cam.K).ok


def test_confidence_weights_prefer_confident_points(rng):
    cam = seed_camera()
    T = make_T(random_rotation(rng), [0.02, -0.03, 1.2])
    uv = project_points(SEED_BOX_CORNERS, T, cam.K)
    uv[3] += [3.0, -2.0]  # a small error, inside the inlier threshold
    conf = np.ones(8)
    conf[3] = 0.11
    weighted = solve_pnp(uv, SEED_BOX_CORNERS, cam.K, conf=conf)
    plain = solve_pnp(uv, SEED_BOX_CORNERS, cam.K)
    err = lambda r: rotation_error_deg(r.T_cam_obj[:3, :3], T[:3, :3])
    assert err(weighted) < err(plain)


def test_lens_distortion_is_honoured(rng):
    cam = Camera(np.array([[500, 0, 320], [0, 500, 240], [0, 0, 1.0]]), 640, 480, [-0.25, 0.08, 0.001, 0.0005, 0])
    T = make_T(random_rotation(rng), [0.1, 0.05, 1.0])
    uv = project_points(SEED_BOX_CORNERS, T, cam.K, cam.dist)
    res = solve_pnp(uv, SEED_BOX_CORNERS, cam.K, dist=cam.dist)
    assert res.ok and rotation_error_deg(res.T_cam_obj[:3, :3], T[:3, :3]) < 1e-4


def test_fast_pnp_agrees_with_the_foundation_solver(rng):
    cam = seed_camera()
    for _ in range(10):
        T = random_pose(rng, cam)
        uv = project_points(SEED_BOX_CORNERS, T, cam.K) + rng.normal(0, 0.5, (8, 2))
        conf = rng.uniform(0.5, 1.0, 8)
        fast = solve_pnp(uv, SEED_BOX_CORNERS, cam.K, conf=conf, threshold_px=4.0)
        ref = solve_pnp(uv, SEED_BOX_CORNERS, cam.K, conf=conf, threshold_px=4.0, fast=False)
        assert fast.ok and fast.fast and ref.ok and not ref.fast
        assert rotation_error_deg(fast.T_cam_obj[:3, :3], ref.T_cam_obj[:3, :3]) < 0.5
        assert abs(fast.reproj_err_px - ref.reproj_err_px) < 0.1


def test_irls_converges_from_a_prior_and_ignores_an_outlier(rng):
    cam = seed_camera()
    T = random_pose(rng, cam)
    uv = project_points(SEED_BOX_CORNERS, T, cam.K)
    uv[3] += [30.0, -20.0]
    start = se3_exp(np.array([0.02, -0.01, 0.05, 0.03, -0.04, 0.02])) @ T
    out = refine_irls(start, SEED_BOX_CORNERS, uv, cam.K, np.ones(8), scale_px=2.0, iterations=30)
    assert np.abs(out - T).max() < 3e-3  # Cauchy: the outlier keeps a small pull
    sol = solve_pnp(uv, SEED_BOX_CORNERS, cam.K, threshold_px=4.0, T_prior=start)
    assert sol.ok and not sol.inliers[3] and sol.inliers.sum() == 7
    assert np.abs(sol.T_cam_obj - T).max() < 1e-6  # finished on the inliers alone: exact


def test_too_few_confident_keypoints(rng):
    cam = seed_camera()
    uv = project_points(SEED_BOX_CORNERS, random_pose(rng, cam), cam.K)
    conf = np.array([0.9, 0.9, 0.9, 0.05, 0.05, 0.05, 0.05, 0.05])
    sol = solve_pnp(uv, SEED_BOX_CORNERS, cam.K, conf=conf, min_conf=0.3, threshold_px=4.0)
    assert not sol.ok and "need 4" in sol.reason


def test_degenerate_points_do_not_raise():
    """Four identical points (or zero weights) make the normal equations singular: the
    solver must answer, not crash."""
    from xwing.geometry.pnp import refine_lm

    cam = seed_camera()
    T = make_T(np.eye(3), [0.0, 0.0, 1.0])
    X = np.zeros((4, 3))
    uv = project_points(X, T, cam.K)
    out = refine_lm(T, X, uv, cam.K, np.ones(4))
    assert np.all(np.isfinite(out))
    out = refine_lm(T, SEED_BOX_CORNERS[:4], project_points(SEED_BOX_CORNERS[:4], T, cam.K) + 3, cam.K, np.zeros(4))
    assert np.all(np.isfinite(out))
    res = solve_pnp(np.tile(uv[:1], (8, 1)), SEED_BOX_CORNERS, cam.K)
    assert isinstance(res.ok, bool)


def test_planar_alternatives_find_the_other_tilt_of_a_flat_object():
    from xwing.geometry.pnp import planar_alternatives, reprojection_errors

    rng = np.random.default_rng(11)
    pts = np.column_stack([rng.uniform(-0.15, 0.15, 16), rng.uniform(-0.17, 0.17, 16), rng.uniform(-0.01, 0.01, 16)])
    K = seed_camera().K
    T = make_T(rotvec_to_R(np.array([0.7, 0.2, 0.3])), np.array([0.05, -0.03, 2.4]))  # small, tilted 40 deg
    uv = project_points(pts, T, K)
    alts = planar_alternatives(T, uv, pts, K)
    assert len(alts) >= 1
    from xwing.geometry.pose import rotation_angle_deg

    for A in alts:
        assert rotation_angle_deg(A[:3, :3] @ T[:3, :3].T) > 10.0  # a different pose ...
        assert np.sqrt(np.mean(reprojection_errors(A, pts, uv, K) ** 2)) < 1.0  # ... that fits almost as well
    assert planar_alternatives(T, uv[:3], pts[:3], K) == []  # too few points: nothing
