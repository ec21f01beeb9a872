"""xwing.geometry.projection: projections and the one projection Jacobian."""

import numpy as np

from xwing.geometry.camera import seed_camera
from xwing.geometry.pose import make_T, rotvec_to_R, se3_exp, transform_points
from xwing.geometry.projection import project_points, projection_jacobian


def test_projection_jacobian_matches_finite_differences(rng):
    K = seed_camera().K.copy()
    K[0, 1] = 3.0  # a skewed camera exercises every term
    T = make_T(rotvec_to_R(rng.normal(size=3)), [0.1, -0.05, 1.8])
    pts = rng.uniform(-0.15, 0.15, (12, 3))
    J = projection_jacobian(transform_points(T, pts), K)  # (N, 2, 6)
    eps = 1e-6
    for k in range(6):
        xi = np.zeros(6)
        xi[k] = eps
        num = (project_points(pts, se3_exp(xi) @ T, K) - project_points(pts, se3_exp(-xi) @ T, K)) / (2 * eps)
        np.testing.assert_allclose(J[:, :, k], num, rtol=1e-5, atol=1e-4)


def test_points_behind_the_camera_are_not_finite():
    T = make_T(np.eye(3), [0.0, 0.0, -1.0])
    uv = project_points(np.zeros((1, 3)), T, seed_camera().K)
    assert not np.isfinite(uv).all()
