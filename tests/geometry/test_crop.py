import numpy as np

from xwing.geometry.camera import seed_camera
from xwing.geometry.crop import crop_around, crop_for_points, letterbox
from xwing.geometry.pose import make_T, random_rotation
from xwing.geometry.projection import project_points
from xwing.model.keypoints import SEED_BOX_CORNERS


def test_round_trip_is_exact(rng):
    for _ in range(50):
        m = crop_around(rng.uniform(-50, 300, 2), rng.uniform(10, 400), int(rng.choice([96, 128, 160, 192])))
        uv = rng.uniform(-100, 400, (20, 2))
        assert np.abs(m.crop_to_image(m.image_to_crop(uv)) - uv).max() < 1e-6


def test_crop_K_agrees_with_the_map(rng):
    cam = seed_camera()
    T = make_T(random_rotation(rng), [0.1, -0.05, 2.0])
    uv = project_points(SEED_BOX_CORNERS, T, cam.K)
    m = crop_for_points(uv, 128)
    np.testing.assert_allclose(project_points(SEED_BOX_CORNERS, T, m.crop_K(cam.K)), m.image_to_crop(uv), atol=1e-9)
    c = m.image_to_crop(uv)
    assert c.min() > 0 and c.max() < 127  # the ship fills the crop with a margin


def test_warp_follows_pixel_centres():
    # one bright pixel at (40, 30) lands where the map says, at 2x zoom
    img = np.zeros((64, 64), np.float32)
    img[30, 40] = 1.0
    m = crop_around((40.0, 30.0), 16, 32)
    out = m.warp(img)
    ys, xs = np.nonzero(out > 0)
    centroid = np.array([np.average(xs, weights=out[ys, xs]), np.average(ys, weights=out[ys, xs])])
    np.testing.assert_allclose(centroid, m.image_to_crop([[40.0, 30.0]])[0], atol=1e-6)


def test_letterbox_is_a_resize_for_equal_aspect():
    m = letterbox(512, 512, 256)
    np.testing.assert_allclose(m.image_to_crop([[0, 0], [511, 511]]), [[-0.25, -0.25], [255.25, 255.25]])
    # u' = (u + 0.5) s - 0.5
    np.testing.assert_allclose(m.image_to_crop([[100.0, 7.0]]), [[(100.5) * 0.5 - 0.5, 7.5 * 0.5 - 0.5]])
    wide = letterbox(640, 360, 256)
    top_left, bottom_right = wide.image_to_crop([[-0.5, -0.5], [639.5, 359.5]])
    np.testing.assert_allclose(top_left[0], -0.5) and np.testing.assert_allclose(bottom_right[0], 255.5)
    assert abs((top_left[1] + 0.5) - (255.5 - bottom_right[1])) < 1e-9  # centred vertically
