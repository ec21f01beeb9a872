import numpy as np

from xwing.geometry.pose import (
    R_to_quat,
    R_to_rotvec,
    invert_T,
    is_rigid,
    make_T,
    quat_to_R,
    random_rotation,
    rotation_angle_deg,
    rotvec_to_R,
    se3_exp,
    se3_log,
)


def test_rotvec_round_trip_including_pi(rng):
    for angle in (0.0, 1e-9, 0.3, 2.0, np.pi - 1e-6, np.pi):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        R = rotvec_to_R(axis * angle)
        np.testing.assert_allclose(rotvec_to_R(R_to_rotvec(R)), R, atol=1e-6)
        assert abs(rotation_angle_deg(R) - np.degrees(angle)) < 1e-5


def test_se3_exp_log_and_inverse(rng):
    for _ in range(50):
        xi = rng.normal(size=6)
        xi[3:] *= 0.9
        T = se3_exp(xi)
        assert is_rigid(T)
        np.testing.assert_allclose(se3_log(T), xi, atol=1e-9)
        np.testing.assert_allclose(invert_T(T) @ T, np.eye(4), atol=1e-12)


def test_quaternions(rng):
    for _ in range(20):
        R = random_rotation(rng)
        np.testing.assert_allclose(quat_to_R(R_to_quat(R)), R, atol=1e-12)


def test_is_rigid():
    assert is_rigid(np.eye(4))
    assert not is_rigid(np.diag([2.0, 1, 1, 1]))
    assert not is_rigid(np.diag([-1.0, 1, 1, 1]))  # a reflection
    T = make_T(np.eye(3), [0, 0, np.nan])
    assert not is_rigid(T)
