"""Properties of the geometry over random cameras, poses and point sets (hypothesis).

Strategies: :func:`cameras` draws intrinsics over the sizes and fields of view a
real camera has, :func:`rotations` draws uniformly from SO(3), :func:`visible_poses`
puts an object in front of a camera at a size a detector would see, and
:func:`point_sets` draws well-spread model points. Every test is derandomised
(same examples on every run) and keeps no example database, so a run is a pure
function of the code.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from xwing.geometry.camera import (
    Camera,
    K_from_gl_projection,
    T_cam_obj_from_model_matrix,
    cv_to_gl_pose,
    gl_projection_from_K,
    gl_to_cv_pose,
    model_matrix_from_T_cam_obj,
)
from xwing.geometry.crop import crop_around, crop_for_points, letterbox
from xwing.geometry.perturb import perturb_to_error
from xwing.geometry.pnp import refine_lm, reprojection_errors, solve_pnp
from xwing.geometry.pose import (
    R_to_quat,
    R_to_rotvec,
    invert_T,
    is_rigid,
    make_T,
    orthonormalize,
    quat_to_R,
    rotation_angle_deg,
    rotvec_to_R,
    se3_exp,
    se3_log,
    skew,
    transform_points,
)
from xwing.geometry.projection import in_image, project_camera_points, project_points, project_points_seed
from xwing.model.keypoints import SEED_BOX_CORNERS


def seeded(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None)


def unit(lo: float = 0.0, hi: float = 1.0) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def rotation_error_rad(R_a: np.ndarray, R_b: np.ndarray) -> float:
    # Through the rotation vector: arccos of the trace (rotation_angle_deg) cannot
    # resolve angles below ~1e-8 rad, far above what PnP achieves without noise.
    return float(np.linalg.norm(R_to_rotvec(R_a @ R_b.T)))


# --- strategies --------------------------------------------------------------------


@st.composite
def cameras(draw) -> Camera:
    """Pinhole cameras from 64 px to 4K wide, landscape up to 2:1, horizontal field of
    view 20..100 degrees, near-square pixels, principal point within 5 % of the centre,
    a pixel of skew at most."""
    width = draw(st.integers(64, 4096))
    height = max(48, round(width * draw(unit(0.5, 1.0))))
    fx = width / 2.0 / math.tan(math.radians(draw(unit(20.0, 100.0))) / 2.0)
    K = np.array([[fx, draw(unit(-1.0, 1.0)), (width - 1) / 2.0 + draw(unit(-0.05, 0.05)) * width],
                  [0.0, fx * draw(unit(0.98, 1.02)), (height - 1) / 2.0 + draw(unit(-0.05, 0.05)) * height],
                  [0.0, 0.0, 1.0]])
    return Camera(K, width, height)


@st.composite
def rotations(draw) -> np.ndarray:
    """(3, 3) rotations, uniform on SO(3): Shoemake's unit quaternion from three
    uniform numbers (no rejection, so nothing is filtered away)."""
    u1, u2, u3 = draw(unit()), draw(unit()), draw(unit())
    a, b = math.sqrt(1.0 - u1), math.sqrt(u1)
    q = [a * math.sin(2 * math.pi * u2), a * math.cos(2 * math.pi * u2),
         b * math.sin(2 * math.pi * u3), b * math.cos(2 * math.pi * u3)]
    return quat_to_R(np.array(q))


@st.composite
def axes(draw) -> np.ndarray:
    """(3,) unit vectors, uniform on the sphere."""
    z, phi = draw(unit(-1.0, 1.0)), draw(unit(0.0, 2 * math.pi))
    r = math.sqrt(max(0.0, 1.0 - z * z))
    return np.array([r * math.cos(phi), r * math.sin(phi), z])


#: Rotation angles in [0, pi] with the ends (where the rotation-vector formulas change
#: branch and lose digits) drawn as often as the middle.
angles = st.one_of(unit(0.0, math.pi), unit(0.0, 1e-3), st.floats(0.0, 1e-3).map(lambda d: math.pi - d))


@st.composite
def rotvecs(draw) -> np.ndarray:
    """(3,) rotation vectors, angles in [0, pi] as :data:`angles` draws them."""
    return draw(axes()) * draw(angles)


@st.composite
def rigid_transforms(draw, scale: float = 10.0) -> np.ndarray:
    """(4, 4) rigid transforms, rotation uniform, translation within ``scale``."""
    t = [draw(unit(-scale, scale)) for _ in range(3)]
    return make_T(draw(rotations()), t)


@st.composite
def visible_poses(draw, cam: Camera, pts: np.ndarray = SEED_BOX_CORNERS) -> np.ndarray:
    """``T_cam_obj`` (4, 4) with the points ``pts`` (N, 3) in front of ``cam`` and inside
    its image: the object's origin seen in the central half of the image, the points'
    enclosing sphere 24 px to half the image across."""
    r = float(np.linalg.norm(pts, axis=1).max())
    u = draw(unit(0.25, 0.75)) * cam.width
    v = draw(unit(0.25, 0.75)) * cam.height
    across_px = draw(unit(24.0, 0.5 * min(cam.width, cam.height)))
    distance = cam.K[0, 0] * 2.0 * r / across_px
    ray = np.linalg.solve(cam.K, [u, v, 1.0])
    T = make_T(draw(rotations()), ray / np.linalg.norm(ray) * distance)
    # In front by construction (the distance is at least 1.6 r); the image bounds can
    # still clip a large object off-centre, which is the one case filtered out.
    assume(in_image(project_points(pts, T, cam.K), cam.width, cam.height).all())
    return T


@st.composite
def point_sets(draw, min_size: int = 6, max_size: int = 16) -> np.ndarray:
    """(N, 3) model points in a 40 cm cube, spread in all three directions (the
    smallest principal extent at least a tenth of the largest), so PnP is well posed."""
    n = draw(st.integers(min_size, max_size))
    pts = np.array([[draw(unit(-0.2, 0.2)) for _ in range(3)] for _ in range(n)])
    s = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
    assume(s[2] > 0.1 * s[0])
    return pts


# --- poses ---------------------------------------------------------------------------


@seeded(200)
@given(rigid_transforms(), rigid_transforms())
def test_invert_T_is_the_inverse_and_composition_is_transform_order(T, U):
    np.testing.assert_allclose(invert_T(T) @ T, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(T @ invert_T(T), np.eye(4), atol=1e-12)
    assert is_rigid(T) and is_rigid(invert_T(T)) and is_rigid(T @ U)
    X = SEED_BOX_CORNERS
    np.testing.assert_allclose(transform_points(T @ U, X), transform_points(T, transform_points(U, X)), atol=1e-12)
    np.testing.assert_allclose(transform_points(invert_T(T), transform_points(T, X)), X, atol=1e-12)


@seeded(300)
@given(rotvecs())
def test_rotation_vector_round_trips(w):
    R = rotvec_to_R(w)
    assert is_rigid(make_T(R, np.zeros(3)), tol=1e-12)
    np.testing.assert_allclose(rotvec_to_R(R_to_rotvec(R)), R, atol=1e-12)
    theta = float(np.linalg.norm(w))
    # At pi, w and -w are one rotation; just below it the sign still rests on an
    # antisymmetric part of size pi - theta, readable while that exceeds rounding.
    if theta < math.pi - 1e-9:
        np.testing.assert_allclose(R_to_rotvec(R), w, atol=1e-12)
    # arccos of the trace resolves angles to about 1e-8 rad (~1e-6 degrees) near 0 and pi.
    assert rotation_angle_deg(R) == pytest.approx(math.degrees(theta), abs=2e-6)


@seeded(200)
@given(rotations())
def test_quaternion_round_trips(R):
    q = R_to_quat(R)
    assert q[0] >= 0 and np.linalg.norm(q) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(quat_to_R(q), R, atol=1e-12)
    np.testing.assert_allclose(orthonormalize(R), R, atol=1e-12)


@seeded(200)
@given(rotvecs(), st.lists(unit(-10.0, 10.0), min_size=3, max_size=3))
def test_se3_exp_is_the_matrix_exponential_and_log_inverts_it(w, v):
    expm = pytest.importorskip("scipy.linalg").expm
    xi = np.concatenate([v, w])
    twist = np.zeros((4, 4))  # (4, 4) the twist as a Lie algebra element
    twist[:3, :3], twist[:3, 3] = skew(w), v
    T = se3_exp(xi)
    np.testing.assert_allclose(T, expm(twist), atol=1e-11)
    np.testing.assert_allclose(se3_exp(se3_log(T)), T, atol=1e-10)
    if np.linalg.norm(w) < math.pi - 1e-9:  # the log is unique below pi (see the rotation vectors)
        np.testing.assert_allclose(se3_log(T), xi, atol=1e-10)


# --- the two camera conventions ------------------------------------------------------


@seeded(200)
@given(rigid_transforms(), rigid_transforms())
def test_opencv_opengl_pose_conversions_round_trip(T, view):
    np.testing.assert_array_equal(cv_to_gl_pose(gl_to_cv_pose(T)), T)
    np.testing.assert_array_equal(gl_to_cv_pose(cv_to_gl_pose(T)), T)
    np.testing.assert_allclose(model_matrix_from_T_cam_obj(T_cam_obj_from_model_matrix(T, view), view), T,
                               atol=1e-12)
    np.testing.assert_allclose(T_cam_obj_from_model_matrix(model_matrix_from_T_cam_obj(T, view), view), T,
                               atol=1e-12)


@st.composite
def seed_scenes(draw):
    cam = draw(cameras())
    return cam, draw(visible_poses(cam)), draw(rigid_transforms(scale=5.0))


@seeded(150)
@given(seed_scenes(), unit(0.01, 1.0), unit(10.0, 1000.0))
def test_the_seed_pipeline_projects_where_K_does(scene, near, far):
    """The seed's OpenGL chain (model, view, projection matrix, pixel edges) and ours
    (T_cam_obj, K, pixel centres) put every point half a pixel apart, for any camera
    and any world frame."""
    cam, T_cam_obj, view = scene
    P = gl_projection_from_K(cam.K, cam.width, cam.height, near, far)
    np.testing.assert_allclose(K_from_gl_projection(P, cam.width, cam.height), cam.K, rtol=1e-12, atol=1e-9)
    model = model_matrix_from_T_cam_obj(T_cam_obj, view)
    seed_uv = project_points_seed(SEED_BOX_CORNERS, model, view, P, cam.width, cam.height)
    np.testing.assert_allclose(project_points(SEED_BOX_CORNERS, T_cam_obj, cam.K), seed_uv - 0.5, atol=1e-7)
    # The OpenGL camera looks down -z: everything visible has negative z there.
    X_gl = transform_points(cv_to_gl_pose(T_cam_obj), SEED_BOX_CORNERS)
    assert (X_gl[:, 2] < 0).all()


@seeded(100)
@given(cameras(), st.integers(32, 4096), st.integers(32, 4096))
def test_camera_resize_maps_pixel_centres_and_round_trips(cam, width, height):
    small = cam.resized(width, height)
    np.testing.assert_allclose(small.resized(cam.width, cam.height).K, cam.K, rtol=1e-12, atol=1e-9)
    sx, sy = width / cam.width, height / cam.height
    T = make_T(np.eye(3), [0.02, -0.01, 1.5])
    uv, uv_small = project_points(SEED_BOX_CORNERS, T, cam.K), project_points(SEED_BOX_CORNERS, T, small.K)
    np.testing.assert_allclose(uv_small, (uv + 0.5) * [sx, sy] - 0.5, rtol=1e-12, atol=1e-9)
    back = Camera.from_dict(cam.to_dict())
    np.testing.assert_array_equal(back.K, cam.K)
    assert back.size == cam.size


# --- projection: points behind the camera ---------------------------------------------


in_front = unit(1e-3, 100.0)
behind_or_on = st.one_of(st.just(0.0), st.just(-0.0), unit(-100.0, 0.0))


@st.composite
def camera_points(draw) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) camera-frame points, some in front and some at or behind the camera plane,
    and (N,) bool: which are in front."""
    n = draw(st.integers(1, 12))
    front = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    X = np.array([[draw(unit(-100.0, 100.0)), draw(unit(-100.0, 100.0)), draw(in_front if f else behind_or_on)]
                  for f in front])
    return X, front


@seeded(200)
@given(cameras(), camera_points())
def test_points_at_or_behind_the_camera_project_to_nan(cam, points):
    """Documented in :func:`project_camera_points` and :func:`project_points`: z <= 0 in
    the camera frame gives nan in both coordinates; points in front get the pinhole
    projection, whatever their neighbours."""
    X, front = points
    uv = project_camera_points(X, cam.K)
    assert np.isnan(uv[~front]).all()
    expected = X[front] @ cam.K.T  # (M, 3) homogeneous pixels
    np.testing.assert_allclose(uv[front], expected[:, :2] / expected[:, 2:], rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(project_points(X, np.eye(4), cam.K), uv)
    distorted = project_points(X, np.eye(4), cam.K, np.array([-0.1, 0.01, 0.0, 0.0, 0.0]))
    assert np.isnan(distorted[~front]).all() and np.isfinite(distorted[front]).all()
    assert not in_image(uv[~front], cam.width, cam.height).any()
    # PnP's reprojection error refuses them too (inf, never a finite distance).
    assert np.isinf(reprojection_errors(np.eye(4), X, np.zeros((len(X), 2)), cam.K)[~front]).all()


# --- PnP -------------------------------------------------------------------------------


@st.composite
def pnp_scenes(draw, random_points: bool):
    cam = draw(cameras())
    pts = draw(point_sets()) if random_points else SEED_BOX_CORNERS
    return cam, pts, draw(visible_poses(cam, pts))


def assert_same_pose(T_est: np.ndarray, T: np.ndarray, tol: float) -> None:
    # Noise-free points leave only rounding: the solvers land within ~1e-11 of the truth
    # (worst of 6,000 random draws); the tolerance keeps a wide margin over that.
    assert rotation_error_rad(T_est[:3, :3], T[:3, :3]) < tol
    assert np.linalg.norm(T_est[:3, 3] - T[:3, 3]) < tol * np.linalg.norm(T[:3, 3])


@seeded(120)
@given(pnp_scenes(random_points=False), st.booleans())
def test_pnp_recovers_the_exact_pose_of_the_box(scene, fast):
    """Both of solve_pnp's ways (the fast SQPnP + Gauss-Newton path, RANSAC + LM)."""
    cam, pts, T = scene
    res = solve_pnp(project_points(pts, T, cam.K), pts, cam.K, fast=fast)
    assert res.ok and res.inliers.all() and res.reproj_err_px < 1e-6
    assert_same_pose(res.T_cam_obj, T, 1e-9)


@seeded(80)
@given(pnp_scenes(random_points=True))
def test_pnp_recovers_the_exact_pose_of_random_points(scene):
    cam, pts, T = scene
    res = solve_pnp(project_points(pts, T, cam.K), pts, cam.K)
    assert res.ok and res.inliers.all()
    assert_same_pose(res.T_cam_obj, T, 1e-9)


@seeded(60)
@given(pnp_scenes(random_points=False), unit(-0.2, 0.2), unit(-0.05, 0.05), unit(-1e-3, 1e-3), unit(-1e-3, 1e-3))
def test_pnp_undoes_lens_distortion(scene, k1, k2, p1, p2):
    cam, pts, T = scene
    dist = np.array([k1, k2, p1, p2, 0.0])
    uv = project_points(pts, T, cam.K, dist)
    res = solve_pnp(uv, pts, cam.K, dist)
    assert res.ok and res.inliers.all()
    # The undistortion iterates to 1e-10 in normalised coordinates, not to rounding.
    assert_same_pose(res.T_cam_obj, T, 1e-8)


@seeded(60)
@given(pnp_scenes(random_points=False), rigid_transforms(), unit(0.5, 5.0), st.integers(0, 2**32 - 1))
def test_pnp_ignores_a_wrong_prior_and_lm_converges_from_nearby(scene, prior, start_px, seed):
    cam, pts, T = scene
    uv = project_points(pts, T, cam.K)
    res = solve_pnp(uv, pts, cam.K, T_prior=prior)
    assert res.ok
    assert_same_pose(res.T_cam_obj, T, 1e-9)
    # Levenberg-Marquardt alone, from a start a few pixels off (mean over the corners).
    T0, err_px = perturb_to_error(T, cam.K, pts, start_px, np.random.default_rng(seed))
    assume(abs(err_px - start_px) < 0.1)  # perturb_to_error found such a start
    assert_same_pose(refine_lm(T0, pts, uv, cam.K, iterations=50), T, 1e-9)


# --- crop maps -------------------------------------------------------------------------


crop_sizes = st.one_of(st.integers(16, 512), st.tuples(st.integers(16, 512), st.integers(16, 512)))
image_points = st.lists(st.tuples(unit(-2000.0, 6000.0), unit(-2000.0, 6000.0)), min_size=1, max_size=20)


@seeded(200)
@given(st.tuples(unit(-500.0, 4500.0), unit(-500.0, 4500.0)), unit(4.0, 5000.0), crop_sizes, image_points)
def test_crop_maps_invert(center, extent_px, size, uv):
    m = crop_around(center, extent_px, size)
    uv = np.array(uv)
    crop_uv = m.image_to_crop(uv)
    np.testing.assert_allclose(m.crop_to_image(crop_uv), uv, rtol=0, atol=1e-7)
    np.testing.assert_allclose(m.image_to_crop(m.crop_to_image(crop_uv)), crop_uv, rtol=0, atol=1e-7)
    # The matrices are the same map: A (as warpAffine takes it) forwards, S^-1 back.
    homogeneous = np.concatenate([uv, np.ones((len(uv), 1))], axis=1)  # (N, 3)
    np.testing.assert_allclose(homogeneous @ m.A.T, crop_uv, rtol=0, atol=1e-7)
    crop_homogeneous = np.concatenate([crop_uv, np.ones((len(uv), 1))], axis=1)  # (N, 3)
    np.testing.assert_allclose(crop_homogeneous @ np.linalg.inv(m.S).T, homogeneous, rtol=0, atol=1e-7)
    # The requested centre lands on the crop's centre, and the extent spans its larger side.
    np.testing.assert_allclose(m.image_to_crop([center])[0], [(m.width - 1) / 2, (m.height - 1) / 2], atol=1e-9)
    assert m.scale * extent_px == pytest.approx(max(m.width, m.height), rel=1e-12)


@seeded(100)
@given(st.data())
def test_crop_K_sees_what_the_crop_map_sees(data):
    cam = data.draw(cameras())
    T = data.draw(visible_poses(cam))
    uv = project_points(SEED_BOX_CORNERS, T, cam.K)
    fill = data.draw(unit(0.3, 1.0))
    m = crop_for_points(uv, data.draw(crop_sizes), fill=fill)
    crop_uv = m.image_to_crop(uv)
    np.testing.assert_allclose(project_points(SEED_BOX_CORNERS, T, m.crop_K(cam.K)), crop_uv,
                               rtol=1e-12, atol=1e-8)
    # The points' box spans `fill` of the crop's larger side (or less, when the
    # minimum extent stops the zoom), centred.
    span = (crop_uv.max(axis=0) - crop_uv.min(axis=0)).max()
    assert span <= fill * max(m.width, m.height) * (1 + 1e-9)
    centre = (crop_uv.max(axis=0) + crop_uv.min(axis=0)) / 2
    np.testing.assert_allclose(centre, [(m.width - 1) / 2, (m.height - 1) / 2], atol=1e-8)


@seeded(150)
@given(st.integers(16, 4096), st.integers(16, 4096), crop_sizes)
def test_letterbox_fits_the_whole_image_centred(width, height, size):
    m = letterbox(width, height, size)
    lo, hi = m.image_to_crop([[-0.5, -0.5], [width - 0.5, height - 0.5]])  # the image's outer edges
    tol = 1e-9 * max(width, height, m.width, m.height)
    assert (lo >= -0.5 - tol).all() and (hi <= np.array([m.width, m.height]) - 0.5 + tol).all()
    # It touches the crop's edges along one axis at least, and is centred on both.
    assert min(abs(lo[0] + 0.5), abs(lo[1] + 0.5)) < tol
    np.testing.assert_allclose(lo + 0.5, np.array([m.width, m.height]) - 0.5 - hi, atol=tol)
    np.testing.assert_allclose(m.crop_to_image(m.image_to_crop([[0.0, 0.0], [width - 1.0, height - 1.0]])),
                               [[0.0, 0.0], [width - 1.0, height - 1.0]], atol=tol)
