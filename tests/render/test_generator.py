"""Pose sampler statistics, generated samples' labels, crop view, on-the-fly dataset."""

import pickle

import numpy as np
import pytest

from _gl import require_gl  # noqa: E402
from xwing.geometry.camera import seed_camera
from xwing.geometry.projection import project_points
from xwing.model.keypoints import SEED_BOX_CORNERS
from xwing.render.sampler import PoseSampler, PoseSamplerConfig, random_rotation


def test_pose_sampler_distribution():
    from xwing.geometry.projection import in_image
    from xwing.model.mesh import xwing_mesh

    cam = seed_camera()
    ship = xwing_mesh()
    sampler = PoseSampler(cam, PoseSamplerConfig(), SEED_BOX_CORNERS, ship.vertices)
    rng = np.random.default_rng(0)
    poses = [sampler.sample(rng) for _ in range(2000)]
    cats = np.array([p.category for p in poses])
    assert abs((cats == "out").mean() - 0.05) < 0.015
    assert abs((cats == "cut").mean() - 0.04) < 0.015
    assert abs((cats == "truncated").mean() - 0.16) < 0.025
    for p in poses[:300]:  # each sample is what its category says, checked on all vertices
        corners = project_points(SEED_BOX_CORNERS, p.T_cam_obj, cam.K)
        np.testing.assert_allclose(p.corners_px, corners)
        corners_in = in_image(corners, 256, 256)
        verts_in = in_image(project_points(ship.vertices, p.T_cam_obj, cam.K), 256, 256)
        if p.category == "inside":
            assert corners_in.all()
        elif p.category == "truncated":
            assert not corners_in.all() and verts_in.all()
        elif p.category == "cut":
            assert verts_in.any() and not verts_in.all()
        else:
            assert not verts_in.any()
    z = np.array([p.T_cam_obj[2, 3] for p in poses])
    assert z.min() >= 0.6 and z.max() <= 2.5
    # log-uniform: the median depth is the geometric mean of the range
    assert abs(np.median(z) - np.sqrt(0.6 * 2.5)) < 0.08
    # uniform rotations: the mean rotation matrix is ~0
    R = np.stack([p.T_cam_obj[:3, :3] for p in poses])
    assert np.abs(R.mean(axis=0)).max() < 0.05
    np.testing.assert_allclose(R[0] @ R[0].T, np.eye(3), atol=1e-12)


def test_edge_on_oversampling_and_the_default_stream():
    from xwing.model.symmetry import EDGE_COS, facing_cos

    cam = seed_camera()
    edge = PoseSampler(cam, PoseSamplerConfig(p_edge_on=0.5), SEED_BOX_CORNERS)
    plain = PoseSampler(cam, PoseSamplerConfig(), SEED_BOX_CORNERS)
    share = {name: np.mean([abs(facing_cos(s.sample(np.random.default_rng([1, i])).T_cam_obj)) < EDGE_COS
                            for i in range(600)]) for name, s in (("edge", edge), ("plain", plain))}
    assert 0.12 < share["plain"] < 0.28  # uniform rotations: |cos| < 0.2 for about 20 %
    assert share["edge"] > share["plain"] + 0.25  # half drawn edge-on
    # p_edge_on = 0 draws nothing extra: the poses of every existing dataset stay the same
    zero = PoseSampler(cam, PoseSamplerConfig(p_edge_on=0.0), SEED_BOX_CORNERS)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert all(np.array_equal(zero.sample(rng_a).T_cam_obj, plain.sample(rng_b).T_cam_obj) for _ in range(20))
    with pytest.raises(ValueError, match="p_edge_on"):
        PoseSamplerConfig(p_edge_on=1.5)


def test_random_rotation_is_proper():
    rng = np.random.default_rng(1)
    for _ in range(20):
        R = random_rotation(rng)
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(R), 1.0)


def test_ship_size_at_the_documented_distances():
    """About 140, 86 and 34 px long at 0.6, 1.0 and 2.5 (seed camera, seen from above)."""
    cam = seed_camera()
    from xwing.geometry.pose import make_T

    ends = np.array([[0.0, -0.182, 0.0], [0.0, 0.163, 0.0]])  # nose tip and tail, on the length axis
    for z, length in ((0.6, 140), (1.0, 86), (2.5, 34)):
        uv = project_points(ends, make_T(np.eye(3), [0, 0, z]), cam.K)
        assert abs(np.ptp(uv[:, 1]) - length) < 0.03 * length


def test_full_view_sample_labels():
    require_gl()
    from xwing.render.generator import GeneratorConfig, SampleGenerator

    gen = SampleGenerator(GeneratorConfig(seed=3), seed_camera(128, 128))
    n_visible = 0
    for i in range(12):
        s = gen.sample_index(i)
        assert s.image.shape == (128, 128, 3) and s.image.dtype == np.uint8
        assert s.mask.shape == (128, 128) and s.camera is gen.camera
        np.testing.assert_allclose(s.keypoints, project_points(SEED_BOX_CORNERS, s.T_cam_obj, s.camera.K))
        if s.ship_visible:
            n_visible += 1
            ys, xs = np.nonzero(s.mask > 0)
            lo, hi = s.keypoints.min(axis=0), s.keypoints.max(axis=0)
            assert xs.min() >= np.floor(lo[0]) - 1 and xs.max() <= np.ceil(hi[0]) + 1
            assert ys.min() >= np.floor(lo[1]) - 1 and ys.max() <= np.ceil(hi[1]) + 1
        if s.category == "out":
            assert not s.ship_visible
    assert n_visible >= 8
    # Reproducible per index, whatever was drawn before.
    fresh = SampleGenerator(GeneratorConfig(seed=3), seed_camera(128, 128))
    np.testing.assert_array_equal(gen.sample_index(5).image, fresh.sample_index(5).image)


def test_crop_view_camera_and_fill():
    require_gl()
    from xwing.render.generator import GeneratorConfig, SampleGenerator

    cfg = GeneratorConfig(seed=4, view="crop", crop_size=128, p_out_of_view=0.0, p_truncated=0.0)
    gen = SampleGenerator(cfg, seed_camera(256, 256))
    for i in range(10):
        s = gen.sample_index(i)
        assert s.image.shape == (128, 128, 3) and s.camera.width == 128
        # The crop camera is the full camera through the crop map.
        np.testing.assert_allclose(s.camera.K, s.crop.crop_K(gen.camera.K))
        full = project_points(SEED_BOX_CORNERS, s.T_cam_obj, gen.camera.K)
        np.testing.assert_allclose(s.keypoints, s.crop.image_to_crop(full), atol=1e-9)
        extent = np.ptp(s.keypoints, axis=0).max()
        assert 0.5 * 128 - 1e-6 <= extent <= 0.625 * 128 + 1e-6
        assert s.ship_visible and s.mask.sum() > 50


def test_rendered_dataset_for_dataloaders():
    require_gl()
    from xwing.render.generator import GeneratorConfig, RenderedDataset, SampleGenerator

    gen = SampleGenerator(GeneratorConfig(seed=2, view="crop", crop_size=64), seed_camera(128, 128))
    ds = RenderedDataset(gen, length=4)
    item = ds[1]
    assert item["image"].shape == (64, 64, 3) and item["keypoints"].shape == (8, 2) and item["K"].shape == (3, 3)
    clone = pickle.loads(pickle.dumps(ds))  # what a DataLoader worker receives
    np.testing.assert_array_equal(clone[1]["image"], item["image"])
    ds.set_epoch(1)
    assert not np.array_equal(ds[1]["image"], item["image"])
    with pytest.raises(IndexError):
        ds[4]


def test_looks_paint_where_they_say():
    import colorsys

    from xwing.model.mesh import HULL
    from xwing.render.appearance import HELD_OUT_HUES, sample_appearance
    from xwing.render.generator import GeneratorConfig

    def hull_hue(a):
        h, s, _ = colorsys.rgb_to_hsv(*a.albedo[HULL])
        return 360 * h, s

    rng = np.random.default_rng(4)
    lo, hi = HELD_OUT_HUES
    wide = [hull_hue(sample_appearance(rng, "wide")) for _ in range(300)]
    held = [hull_hue(sample_appearance(rng, "held_out")) for _ in range(100)]
    # a hue is only defined where there is colour
    assert not any(lo + 1 < h < hi - 1 for h, s in wide if s > 0.05)
    assert all(lo - 1 <= h <= hi + 1 for h, s in held if s > 0.05)
    assert np.ptp([h for h, s in wide if s > 0.05]) > 180  # far beyond the X-wing's grey
    # The default look draws as it always did: the same first hull colour for the same seed.
    a = sample_appearance(np.random.default_rng(3))
    np.testing.assert_allclose(a.albedo[HULL], [0.51904517, 0.55534964, 0.54125704], atol=1e-7)
    with pytest.raises(ValueError, match="look"):
        sample_appearance(rng, "plaid")
    with pytest.raises(ValueError, match="look"):
        GeneratorConfig(look="plaid")
