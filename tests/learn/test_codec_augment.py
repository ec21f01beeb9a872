"""The heatmap codec and label-exact augmentation."""

import numpy as np
import pytest

from xwing.geometry.camera import seed_camera
from xwing.geometry.pose import make_T, rotvec_to_R
from xwing.geometry.projection import project_points
from xwing.infer.codec import HeatmapCodec, sigmoid
from xwing.learn.augment import AugmentConfig, augment, hflip, hflip_exact, rot90, rot90_exact, similarity
from xwing.model.keypoints import SEED_BOX_CORNERS
from xwing.model.points import PointSet, point_set
from xwing.model.symmetry import MIRROR_PAIRS, ROLL180_PAIRS, T_ROLL180, resolve_roll, side_of


def _log(h):
    return np.log(np.maximum(np.asarray(h, np.float64), 1e-300))


@pytest.mark.parametrize("stride,margin,sigma", [(4, 8, 1.5), (4, 0, 2.0), (2, 4, 1.0), (1, 0, 3.0)])
def test_round_trip_subpixel_including_off_image(stride, margin, sigma, rng):
    codec = HeatmapCodec(stride=stride, margin=margin, sigma=sigma)
    h, w = 96, 128
    lo, hi = -margin * stride, np.array([w, h]) - 1 + margin * stride
    uv = rng.uniform(lo, hi, (64, 2))
    heat, weight = codec.encode(uv, h, w)
    assert heat.shape == (64, *codec.canvas_shape(h, w))
    inside = weight > 0
    assert inside.mean() > 0.9
    uv_dec, conf = codec.decode(_log(heat))
    err = np.linalg.norm(uv_dec - uv, axis=1)[inside]
    assert err.max() < 0.05
    assert conf[inside].min() > 0.9
    # keypoints on the margin really are outside the image, and come back there (never clamped)
    off = inside & ((uv[:, 0] < -0.5) | (uv[:, 0] > w - 0.5))
    if margin:
        assert off.any()
        assert np.all((uv_dec[off, 0] < -0.5) | (uv_dec[off, 0] > w - 0.5))


def test_far_off_canvas_is_unsupervised_and_nan_safe():
    codec = HeatmapCodec()
    heat, weight = codec.encode(np.array([[-500.0, 10.0], [np.nan, 3.0], [50.0, 60.0]]), 128, 128)
    assert weight.tolist() == [0.0, 0.0, 1.0]
    assert heat[0].max() == 0 and heat[1].max() == 0 and heat[2].max() == pytest.approx(1.0, abs=0.05)


def test_cell_convention_commutes_with_flip(rng):
    codec = HeatmapCodec(stride=4, margin=8, sigma=1.5)
    w = 128
    uv = rng.uniform(0, w - 1, (5, 2))
    heat, _ = codec.encode(uv, w, w)
    flipped, _ = codec.encode(np.stack([w - 1 - uv[:, 0], uv[:, 1]], axis=1), w, w)
    np.testing.assert_allclose(flipped, heat[:, :, ::-1], atol=1e-6)
    # pixel centre of cell `margin` is the mean of input pixels 0..stride-1
    assert codec.cell_to_px(np.array([8.0, 8.0])).tolist() == [1.5, 1.5]


def test_batch_decode_and_confidence_levels(rng):
    codec = HeatmapCodec()
    uv = rng.uniform(10, 110, (2, 3, 2))
    heat = np.stack([codec.encode(u, 128, 128)[0] for u in uv])  # (2, 3, Hc, Wc)
    logits = _log(heat) / (2 * 1.0)  # log-Gaussian rescaled: still a peak at the same place
    uv_dec, conf = codec.decode(_log(heat))
    assert uv_dec.shape == (2, 3, 2) and conf.shape == (2, 3)
    np.testing.assert_allclose(uv_dec, uv, atol=0.05)
    flat = np.zeros((1, 1, 48, 48))  # uniform logits: no idea where the point is
    _, conf_flat = codec.decode(flat)
    assert conf_flat[0, 0] < 0.05
    two_peaks = np.maximum(heat[0, 0], heat[0, 1])  # bimodal map: half the mass at the peak
    _, conf_two = codec.decode(_log(two_peaks)[None])
    assert 0.3 < conf_two[0] < 0.7
    assert np.all(np.isfinite(codec.decode(logits)[0]))


def test_seed_codec_reproduces_truncation_and_corner_labels():
    codec = HeatmapCodec(stride=1, margin=0, sigma=10.0, decode_mode="argmax", seed_targets=True)
    uv = np.array([[10.3, 20.8], [-5.0, 40.0]])
    heat, weight = codec.encode(uv, 64, 64)
    assert weight.tolist() == [1.0, 1.0]  # the seed supervised off-frame points too...
    assert np.unravel_index(heat[1].argmax(), heat[1].shape) == (0, 0)  # ...at the top-left corner
    uv_dec, _ = codec.decode(heat)
    # integer argmax of the truncated label, read in the seed's edge convention
    np.testing.assert_allclose(uv_dec[0], [9.5, 20.5])


def test_sigmoid_is_stable():
    assert sigmoid(np.array([-1000.0, 0.0, 1000.0])).tolist() == [0.0, 0.5, 1.0]


# --- augmentation -------------------------------------------------------------------------------


def _scene(rng, size=128):
    cam = seed_camera(size, size)
    T = make_T(rotvec_to_R(rng.normal(size=3)), [0.05, -0.03, 1.1])
    uv = project_points(SEED_BOX_CORNERS, T, cam.K)
    img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    return cam, T, uv, img


def test_corner_point_set_symmetries():
    pts = point_set("corners")
    mirrored = SEED_BOX_CORNERS * [-1, 1, 1]
    np.testing.assert_allclose(mirrored, SEED_BOX_CORNERS[pts.mirror_perm])
    rolled = SEED_BOX_CORNERS @ T_ROLL180[:3, :3].T  # the box is 2 mm off z-symmetric
    np.testing.assert_allclose(rolled, SEED_BOX_CORNERS[pts.roll180_perm], atol=0.0021)
    for a, b in MIRROR_PAIRS:
        assert pts.mirror_perm[a] == b
    for a, b in ROLL180_PAIRS:
        assert pts.roll180_perm[a] == b


def test_surface_point_set_is_closed_under_both_symmetries():
    class Blob:  # a mirror- and roll-symmetric cloud standing in for a mesh
        def surface_points(self, n, seed=0):
            r = np.random.default_rng(seed).uniform([0.03, -0.2, 0.0], [0.15, 0.2, 0.03], (n // 4, 3))
            return np.concatenate([r * s for s in ((1, 1, 1), (-1, 1, 1), (-1, 1, -1), (1, 1, -1))])

    pts = point_set("surface8", mesh=Blob())
    assert pts.points_3d.shape == (8, 3)
    np.testing.assert_allclose(pts.points_3d * [-1, 1, 1], pts.points_3d[pts.mirror_perm])
    np.testing.assert_allclose(pts.points_3d * [-1, 1, -1], pts.points_3d[pts.roll180_perm])
    assert PointSet.from_dict(pts.to_dict()).points_3d.tolist() == pts.points_3d.tolist()


def test_hflip_swaps_mirror_pairs_and_mirrors_the_pose(rng):
    cam, T, uv, img = _scene(rng)
    pts = point_set("corners")
    assert hflip_exact(cam.K, 128, 128)
    img2, uv2, K2, T2 = hflip(img, uv, cam.K, T, pts.mirror_perm)
    np.testing.assert_array_equal(img2, img[:, ::-1])
    # the new labels are exactly the projections of the corners under the mirrored pose
    np.testing.assert_allclose(uv2, project_points(SEED_BOX_CORNERS, T2, K2), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(T2[:3, :3]), 1.0)
    # corner 0 now sits where corner 1 was seen, mirrored
    assert uv2[0, 0] == pytest.approx(127 - uv[1, 0]) and uv2[0, 1] == pytest.approx(uv[1, 1])


def test_rot90_is_a_camera_roll(rng):
    cam, T, uv, img = _scene(rng)
    assert rot90_exact(cam.K, 128, 128)
    for k in range(4):
        img2, uv2, K2, T2 = rot90(img, uv, cam.K, T, k)
        np.testing.assert_array_equal(img2, np.rot90(img, k))
        np.testing.assert_allclose(uv2, project_points(SEED_BOX_CORNERS, T2, K2), atol=1e-9)
    # a pixel follows its label: the image value under keypoint 0 moves with it
    x = np.zeros((128, 128, 3), np.uint8)
    u, v = 30, 70
    x[v, u] = 255
    x2, uv2, _, _ = rot90(x, np.array([[u, v]], float), cam.K, T, 1)
    assert x2[int(uv2[0, 1]), int(uv2[0, 0])].max() == 255


def test_flips_refused_for_off_centre_principal_point():
    K = seed_camera(128, 128).K.copy()
    K[0, 2] += 3
    assert not hflip_exact(K, 128, 128) and not rot90_exact(K, 128, 128)
    K2 = seed_camera(128, 128).K.copy()
    K2[1, 1] *= 1.1
    assert hflip_exact(K2, 128, 128) and not rot90_exact(K2, 128, 128)


def test_similarity_and_random_augment_keep_labels_exact(rng):
    cam, T, uv, img = _scene(rng)
    img2, uv2, K2 = similarity(img, uv, cam.K, 1.3, -10.0, 5.0)
    np.testing.assert_allclose(uv2, project_points(SEED_BOX_CORNERS, T, K2), atol=1e-9)
    pts = point_set("corners")
    for seed in range(10):
        img3, uv3, K3, T3 = augment(img, uv, cam.K, T, pts, np.random.default_rng(seed),
                                    AugmentConfig(hflip=0.5, rot90=0.5))
        assert img3.shape == img.shape and img3.dtype == np.uint8
        np.testing.assert_allclose(uv3, project_points(SEED_BOX_CORNERS, T3, K3), atol=1e-8)


def test_side_of_tells_the_roll_relabelling_apart_and_resolve_picks_the_agreeing_one(rng):
    pts = point_set("corners")
    cam = seed_camera(128, 128)
    for _ in range(20):
        T = make_T(rotvec_to_R(rng.normal(size=3) * 2), [0.0, 0.0, 1.0])
        uv = project_points(SEED_BOX_CORNERS, T, cam.K)
        s_true, s_rolled = side_of(uv, SEED_BOX_CORNERS), side_of(uv[pts.roll180_perm], SEED_BOX_CORNERS)
        assert np.sign(s_true) == -np.sign(s_rolled)
        # top facing the camera <=> model +z points towards the camera (negative camera z)
        top_visible = (T[:3, :3] @ [0, 0, 1.0])[2] < 0
        seen = [uv[None], uv[pts.roll180_perm][None]]  # the net may output either labelling
        p_side = np.array([0.9997 if s_true > 0 else 0.0003])  # sigmoid(+-8)
        for guess in seen:
            got, _, alt, _, flip = resolve_roll(guess, np.ones((1, 8)), p_side, SEED_BOX_CORNERS, pts.roll180_perm)
            np.testing.assert_allclose(got[0], uv)
            np.testing.assert_allclose(alt[0], uv[pts.roll180_perm])
        assert (s_true < 0) == top_visible  # image y grows downwards
