import numpy as np
import pytest

from xwing.geometry import metrics
from xwing.geometry.pose import random_rotation, rotvec_to_R
from xwing.model.keypoints import SEED_BOX_CORNERS, model_diameter
from xwing.model.symmetry import T_ROLL180


def test_identity_is_zero(rng):
    R, t = random_rotation(rng), np.array([0.1, 0.0, 1.5])
    assert metrics.add(R, t, R, t, SEED_BOX_CORNERS) == 0
    assert metrics.adi(R, t, R, t, SEED_BOX_CORNERS) == 0
    assert metrics.rotation_error_deg(R, R) == pytest.approx(0, abs=1e-6)
    assert metrics.translation_error(t, t) == 0 and metrics.speed_score(R, t, R, t) == pytest.approx(0, abs=1e-7)
    K = np.array([[250.0, 0, 127.5], [0, 250, 127.5], [0, 0, 1]])
    assert metrics.proj_2d(R, t, R, t, K, SEED_BOX_CORNERS) == 0


def test_known_values(rng):
    R90 = rotvec_to_R([0, 0, np.pi / 2])
    assert metrics.rotation_error_deg(R90, np.eye(3)) == pytest.approx(90)
    t_gt, t_est = np.array([0, 0, 2.0]), np.array([0, 0.2, 2.0])
    assert metrics.translation_error_rel(t_est, t_gt) == pytest.approx(0.1)
    assert metrics.speed_score(R90, t_est, np.eye(3), t_gt) == pytest.approx(np.pi / 2 + 0.1)
    # a pure translation moves every point by the same amount
    assert metrics.add(np.eye(3), t_est, np.eye(3), t_gt, SEED_BOX_CORNERS) == pytest.approx(0.2)
    for _ in range(20):
        R1, R2 = random_rotation(rng), random_rotation(rng)
        assert metrics.adi(R1, t_gt, R2, t_gt, SEED_BOX_CORNERS) <= metrics.add(R1, t_gt, R2, t_gt, SEED_BOX_CORNERS)


def test_adi_forgives_the_roll_symmetry():
    # the box is symmetric under the 180-degree roll up to its z offset (-0.032 / +0.034)
    R = T_ROLL180[:3, :3]
    t = np.array([0, 0, 1.0])
    assert metrics.add(R, t, np.eye(3), t, SEED_BOX_CORNERS) > 0.1
    assert metrics.adi(R, t, np.eye(3), t, SEED_BOX_CORNERS) < 0.005


def test_keypoint_errors_and_pck():
    gt = np.zeros((4, 2))
    est = np.array([[0.5, 0], [0, 1.5], [3, 4], [np.nan, 0]])
    e = metrics.keypoint_errors_px(est, gt)
    np.testing.assert_allclose(e, [0.5, 1.5, 5.0, np.inf])
    assert metrics.pck(est, gt, 1.0) == 0.25
    assert metrics.pck(est, gt, 5.0) == 0.75
    assert metrics.pck(est, gt, 2.0, mask=[True, True, False, False]) == 1.0


def test_diameter():
    d = model_diameter(SEED_BOX_CORNERS)
    assert d == pytest.approx(np.linalg.norm([0.312, 0.345, 0.066]))
    assert metrics.within_diameter(0.1 * d - 1e-6, d) and not metrics.within_diameter(0.1 * d, d)


def test_keypoint_nmae_known_value_on_a_non_square_image():
    # 256 x 128: a 2.56 px shift in u is 0.01 of the width, a 1.28 px shift in v 0.01 of the height.
    gt = np.array([[10.0, 20.0], [100.0, 50.0]])
    est = gt + np.array([[2.56, 0.0], [0.0, -1.28]])
    # |dx|, |dy| per keypoint: (0.01, 0), (0, 0.01): mean of the four = 0.005
    assert metrics.keypoint_nmae(est, gt, 256, 128) == pytest.approx(0.005)
    assert metrics.keypoint_nmae(gt, gt, 256, 128) == 0.0
    stacked = np.stack([est, gt])  # (M, N, 2) images are pooled
    assert metrics.keypoint_nmae(stacked, np.stack([gt, gt]), 256, 128) == pytest.approx(0.0025)
    assert metrics.keypoint_nmae(np.full((2, 2), np.nan), gt, 256, 128) == np.inf
    assert np.isnan(metrics.keypoint_nmae(np.zeros((0, 2)), np.zeros((0, 2)), 256, 128))


def test_keypoint_nmae_in_the_seeds_own_coordinates(rng):
    # The seed's projection (pixel edges) divided by W, H gives the same figure as ours.
    from xwing.geometry.camera import model_matrix_from_T_cam_obj, seed_camera
    from xwing.geometry.pose import make_T
    from xwing.geometry.projection import project_points, project_points_seed, seed_normalised

    cam = seed_camera(320, 240)
    P = cam.gl_projection()
    T_gt = make_T(random_rotation(rng), [0.05, -0.03, 1.6])
    T_est = make_T(rotvec_to_R([0.02, -0.01, 0.03]), [0.01, 0.0, 0.02]) @ T_gt
    seed_uv = {name: project_points_seed(SEED_BOX_CORNERS, model_matrix_from_T_cam_obj(T, cam.view_matrix),
                                         cam.view_matrix, P, cam.width, cam.height)
               for name, T in (("est", T_est), ("gt", T_gt))}
    ours = {name: project_points(SEED_BOX_CORNERS, T, cam.K) for name, T in (("est", T_est), ("gt", T_gt))}
    np.testing.assert_allclose(seed_normalised(ours["gt"], cam.width, cam.height),
                               seed_uv["gt"] / [cam.width, cam.height], atol=1e-9)
    by_hand = np.mean(np.abs(seed_uv["est"] - seed_uv["gt"]) / [cam.width, cam.height])
    assert by_hand > 1e-3
    assert metrics.keypoint_nmae(ours["est"], ours["gt"], cam.width, cam.height) == pytest.approx(by_hand, rel=1e-9)
