"""The renderer's pixels agree with the labels' geometry (headless EGL; never skipped under CI)."""

import json
import pickle

import numpy as np
import pytest

from _gl import require_gl  # noqa: E402
from xwing.geometry.camera import T_cam_obj_from_model_matrix, seed_camera
from xwing.geometry.pose import make_T
from xwing.geometry.projection import project_points
from xwing.model.mesh import xwing_mesh
from xwing.render.sampler import random_rotation


@pytest.fixture(scope="module")
def ship():
    return xwing_mesh()


def _poses(seed_reference):
    poses = [T_cam_obj_from_model_matrix(np.array(json.loads((seed_reference / f"{i}_mat.json").read_text())))
             for i in (0, 1)]
    rng = np.random.default_rng(5)
    for _ in range(3):
        poses.append(make_T(random_rotation(rng), [rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2),
                                                   rng.uniform(0.7, 1.5)]))
    return poses


def test_supersampled_silhouette_matches_projected_vertices(seed_reference, ship):
    """8x supersampled, the silhouette's bounding box equals the projected vertices' box
    within 0.1 px of the 256-px frame, and lies inside the projected 3D box."""
    require_gl()
    from xwing.render import make_renderer

    cam, S = seed_camera(256, 256), 8
    hi = cam.resized(256 * S, 256 * S)  # the matching K: u_hi = (u + 0.5) S - 0.5
    renderer = make_renderer(hi, ship, samples=0)  # one sample per pixel centre: exact coverage
    for T in _poses(seed_reference):
        _, cov = renderer.render(T)
        ys, xs = np.nonzero(cov > 0.5)
        # Outer edges of the covered hi-res pixels, mapped to 256-px coordinates.
        lo_px = (np.array([xs.min(), ys.min()]) - 0.5 + 0.5) / S - 0.5
        hi_px = (np.array([xs.max(), ys.max()]) + 0.5 + 0.5) / S - 0.5
        uv = project_points(ship.vertices, T, cam.K)
        np.testing.assert_allclose(lo_px, uv.min(axis=0), atol=0.1)
        np.testing.assert_allclose(hi_px, uv.max(axis=0), atol=0.1)
        corners = project_points(ship.box_corners(), T, cam.K)
        assert (lo_px >= corners.min(axis=0) - 0.1).all() and (hi_px <= corners.max(axis=0) + 0.1).all()


def test_half_pixel_shift_would_fail(ship):
    """The 0.1 px tolerance above is meaningful: a K off by half a pixel moves the box by 0.5 px."""
    cam = seed_camera()
    T = make_T(np.eye(3), [0.0, 0.0, 1.0])
    K = cam.K.copy()
    K[:2, 2] += 0.5
    shift = project_points(ship.vertices, T, K).min(axis=0) - project_points(ship.vertices, T, cam.K).min(axis=0)
    np.testing.assert_allclose(shift, 0.5)


def test_background_composite_and_coverage(ship):
    require_gl()
    from xwing.render import make_renderer

    cam = seed_camera(128, 128)
    r = make_renderer(cam, ship, samples=4)
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    T = make_T(random_rotation(rng), [0.0, 0.0, 1.2])
    rgb, cov = r.render(T, background=bg)
    assert rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8 and cov.dtype == np.float32
    assert 0 <= cov.min() and cov.max() <= 1 and cov.max() == 1
    assert ((cov > 0) & (cov < 1)).any()  # anti-aliased edges
    np.testing.assert_array_equal(rgb[cov == 0], bg[cov == 0])  # untouched where no ship
    # Coverage sits inside the projected box (rounded out to whole pixels).
    uv = project_points(ship.box_corners(), T, cam.K)
    ys, xs = np.nonzero(cov)
    assert xs.min() >= np.floor(uv[:, 0].min()) and xs.max() <= np.ceil(uv[:, 0].max())
    assert ys.min() >= np.floor(uv[:, 1].min()) and ys.max() <= np.ceil(uv[:, 1].max())
    # Over black, the image is the ship premultiplied by coverage; same coverage either way.
    rgb0, cov0 = r.render(T)
    np.testing.assert_array_equal(cov0, cov)
    assert rgb0[cov == 0].max() == 0


def test_ship_out_of_view_renders_nothing(ship):
    require_gl()
    from xwing.render import make_renderer

    cam = seed_camera(64, 64)
    r = make_renderer(cam, ship)
    bg = np.full((64, 64, 3), 7, np.uint8)
    for T in (make_T(np.eye(3), [3.0, 0.0, 1.0]), make_T(np.eye(3), [0.0, 0.0, -1.0])):
        rgb, cov = r.render(T, background=bg)
        assert cov.max() == 0
        np.testing.assert_array_equal(rgb, bg)


def test_top_view_shows_the_top(ship, seed_reference):
    """At the seed's identity pose the camera looks at the ship's top: the droid's dome
    (the box's +z face) is visible, i.e. depth test and facing are right."""
    require_gl()
    from xwing.model.mesh import DROID
    from xwing.render import make_renderer
    from xwing.render.appearance import Appearance

    cam = seed_camera()
    T = _poses(seed_reference)[0]
    app = Appearance()
    albedo = np.zeros_like(app.albedo)
    albedo[DROID] = 1.0  # only the droid is bright
    flat = Appearance(albedo=albedo, specular=np.zeros(8), emission=np.zeros((8, 3)),
                      light_dirs=np.array([[0, 0, 1.0]] * 3), light_colors=np.array([[1.0, 1, 1], [0, 0, 0],
                                                                                      [0, 0, 0]]),
                      ambient=np.zeros(3), panel_amp=0.0)
    rgb, _ = make_renderer(cam, ship).render(T, appearance=flat)
    dome = project_points(np.array([[0.0, 0.082, 0.034]]), T, cam.K)[0]
    u, v = np.round(dome).astype(int)
    assert rgb[v - 1:v + 2, u - 1:u + 2].mean() > 100
    # Seen from below (rolled 180 degrees about y), the dome is hidden by the hull.
    T_below = T @ np.diag([-1.0, 1.0, -1.0, 1.0])
    rgb_b, _ = make_renderer(cam, ship).render(T_below, appearance=flat)
    dome_b = project_points(np.array([[0.0, 0.082, 0.034]]), T_below, cam.K)[0]
    ub, vb = np.round(dome_b).astype(int)
    assert rgb_b[vb - 1:vb + 2, ub - 1:ub + 2].mean() < 20


def test_renderer_pickles_without_gl_state(ship):
    require_gl()
    from xwing.render import make_renderer

    cam = seed_camera(64, 64)
    r = make_renderer(cam, ship)
    T = make_T(np.eye(3), [0.0, 0.0, 1.0])
    a = r.render(T)[0]
    r2 = pickle.loads(pickle.dumps(r))
    assert r2._gl is None
    np.testing.assert_array_equal(r2.render(T)[0], a)
