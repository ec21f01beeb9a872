"""The procedural X-wing and mesh loading (numpy only: no GL needed)."""

import numpy as np
import pytest

from xwing.errors import XwingError
from xwing.model.keypoints import SEED_BOX, SEED_BOX_CORNERS, SEED_LASERS
from xwing.model.mesh import CANOPY, DROID, PART_NAMES, Mesh, load_mesh, xwing_mesh


@pytest.fixture(scope="module")
def ship():
    return xwing_mesh()


def test_box_is_the_seed_box(ship):
    np.testing.assert_allclose(ship.box, SEED_BOX, atol=1e-4)
    np.testing.assert_allclose(ship.box_corners(), SEED_BOX_CORNERS, atol=1e-4)


def test_arrays_and_normals(ship):
    assert ship.vertices.dtype == np.float32 and ship.vertices.shape[1] == 3
    assert ship.faces.dtype == np.int32 and ship.faces.max() < len(ship.vertices)
    assert ship.parts.shape == (len(ship.faces),) and set(np.unique(ship.parts)) <= set(range(len(PART_NAMES)))
    np.testing.assert_allclose(np.linalg.norm(ship.normals, axis=1), 1.0, atol=1e-5)
    assert ship.face_areas().min() >= 0 and ship.face_areas().sum() > 0.01


def test_cannon_tips_are_the_seed_laser_origins(ship):
    v = ship.vertices.astype(np.float64)
    for origin, direction_point in SEED_LASERS:
        assert np.linalg.norm(v - origin, axis=1).min() < 1e-6
        # Nothing of the cannon sticks out ahead of its tip (toward the direction point).
        near_axis = np.linalg.norm(v[:, [0, 2]] - origin[[0, 2]], axis=1) < 0.006
        assert (v[near_axis, 1] >= origin[1] - 1e-6).all()
        assert direction_point[1] < origin[1]


def test_top_is_distinguishable_from_bottom(ship):
    v = ship.vertices[ship.faces]  # (F, 3, 3)
    for part in (CANOPY, DROID):
        assert (v[ship.parts == part][..., 2] > 0).all(), PART_NAMES[part]
    # A 180-degree roll about y, (x, y, z) -> (-x, y, -z), does not map the ship onto itself.
    rolled = ship.vertices * np.array([-1, 1, -1], np.float32)
    assert rolled[:, 2].max() < ship.vertices[:, 2].max() - 1e-3


def test_surface_points_even_and_reproducible(ship):
    a = ship.surface_points(4000, seed=0)
    b = ship.surface_points(4000, seed=0)
    c = ship.surface_points(4000, seed=1)
    assert a.shape == (4000, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    lo, hi = SEED_BOX
    assert ((a >= lo - 1e-6) & (a <= hi + 1e-6)).all()
    # Even: every part gets points in proportion to its area (systematic sampling
    # misses by less than one point per contiguous run of faces).
    pts, face = ship.surface_sample(4000, seed=0)
    np.testing.assert_array_equal(pts, a)
    area = ship.face_areas()
    for part in range(len(PART_NAMES)):
        expected = 4000 * area[ship.parts == part].sum() / area.sum()
        assert abs((ship.parts[face] == part).sum() - expected) <= max(2.0, 0.03 * expected), PART_NAMES[part]
    # Points lie on their faces: distance to the face's plane is ~0.
    tri = ship.vertices.astype(np.float64)[ship.faces[face]]
    nrm = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    assert np.abs(np.einsum("nd,nd->n", pts - tri[:, 0], nrm)).max() < 1e-9


def _box_obj(path, size=(2.0, 1.0, 0.5)):
    sx, sy, sz = size
    v = [(x, y, z) for z in (0, sz) for y in (0, sy) for x in (0, sx)]
    f = [(1, 3, 4, 2), (5, 6, 8, 7), (1, 2, 6, 5), (3, 7, 8, 4), (1, 5, 7, 3), (2, 4, 8, 6)]
    lines = [f"v {x} {y} {z}" for x, y, z in v] + [f"f {a} {b} {c} {d}" for a, b, c, d in f]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_load_mesh_own_box_and_fit_seed_box(tmp_path):
    path = _box_obj(tmp_path / "box.obj")
    m = load_mesh(path)
    np.testing.assert_allclose(m.box, [[0, 0, 0], [2.0, 1.0, 0.5]], atol=1e-6)
    assert len(m.faces) == 12
    fit = load_mesh(path, fit_seed_box=True)
    np.testing.assert_allclose(fit.box, SEED_BOX, atol=1e-6)
    np.testing.assert_allclose(fit.box_corners(), SEED_BOX_CORNERS, atol=1e-6)


@pytest.mark.parametrize("content", [b"", b"this is not a mesh\n", b"\x00\x01\x02garbage" * 10])
def test_load_mesh_bad_files(tmp_path, content):
    path = tmp_path / "bad.obj"
    path.write_bytes(content)
    with pytest.raises(XwingError) as e:
        load_mesh(path)
    assert "bad.obj" in str(e.value) and "\n" not in str(e.value)


def test_load_mesh_missing(tmp_path):
    with pytest.raises(XwingError, match="not found"):
        load_mesh(tmp_path / "nope.glb")


def test_mesh_rejects_mismatched_parts():
    with pytest.raises(ValueError):
        Mesh(np.zeros((3, 3)), [[0, 1, 2]], parts=[0, 1])


def test_ship_variants_keep_the_box_and_the_held_out_one_is_never_drawn():
    from xwing.model.mesh import HELD_OUT_VARIANT, ShipVariant, sample_ship_variant

    default = xwing_mesh(ShipVariant())
    np.testing.assert_array_equal(default.vertices, xwing_mesh().vertices)
    rng = np.random.default_rng(0)
    variants = [sample_ship_variant(rng) for _ in range(300)]
    for v in variants[:20] + [HELD_OUT_VARIANT]:
        m = xwing_mesh(v)
        np.testing.assert_allclose(m.box, SEED_BOX, atol=1e-6)
        # the details that tell top from bottom stay on top
        v = m.vertices[m.faces]  # (F, 3, 3)
        assert (v[m.parts == CANOPY][..., 2] > 0).all() and (v[m.parts == DROID][..., 2] > 0).all()
    h = HELD_OUT_VARIANT
    for v in variants:  # the held-out canopy is further back and longer, its droid further back and smaller
        assert sum(v.canopy_y) < sum(h.canopy_y) and v.canopy_y[1] - v.canopy_y[0] < h.canopy_y[1] - h.canopy_y[0]
        assert v.droid_y < h.droid_y and v.droid_r > h.droid_r and v.canopy_height < h.canopy_height
    assert len({v.canopy_y for v in variants}) == len(variants)
