"""xwing.model.symmetry: the mirror and the 180-degree roll, owned in one place."""

import numpy as np

from xwing.geometry.camera import seed_camera
from xwing.geometry.pose import make_T, rotvec_to_R
from xwing.geometry.projection import project_points
from xwing.model.keypoints import SEED_BOX_CORNERS
from xwing.model.points import point_set
from xwing.model.symmetry import (
    MIRROR_SIGNS,
    ROLL180_SIGNS,
    T_ROLL180,
    choose_roll,
    pick_roll,
    rolled,
    symmetry_permutation,
    top_faces_camera,
)


def _face_on(top: bool) -> np.ndarray:
    """The ship 2 m ahead, its +z axis towards the camera (top) or away (bottom)."""
    R = np.diag([1.0, -1.0, -1.0]) if top else np.eye(3)
    return make_T(R, [0.0, 0.0, 2.0])


def test_rolled_is_an_involution_and_flips_the_side():
    T = _face_on(True)
    assert top_faces_camera(T) and not top_faces_camera(rolled(T))
    np.testing.assert_allclose(rolled(rolled(T)), T)
    np.testing.assert_allclose(rolled(T), T @ T_ROLL180)


def test_box_permutations_match_the_seed_pairs():
    pts = point_set("corners")
    np.testing.assert_array_equal(symmetry_permutation(SEED_BOX_CORNERS, MIRROR_SIGNS, 1e-9), pts.mirror_perm)
    # the box is only nearly roll-symmetric (z -0.032 vs +0.034)
    assert symmetry_permutation(SEED_BOX_CORNERS, ROLL180_SIGNS, 1e-3) is None
    np.testing.assert_array_equal(symmetry_permutation(SEED_BOX_CORNERS, ROLL180_SIGNS, 0.01), pts.roll180_perm)


def test_choose_and_pick_roll_follow_the_evidence():
    T = _face_on(True)
    assert choose_roll(0.9, T, rolled(T)) == 0 and choose_roll(0.1, T, rolled(T)) == 1
    assert choose_roll(0.55, T, rolled(T)) is None  # unsure
    uv = project_points(SEED_BOX_CORNERS, T, seed_camera().K)
    assert pick_roll(0.9, T, rolled(T), uv, SEED_BOX_CORNERS) == 0
    assert pick_roll(0.1, T, rolled(T), uv, SEED_BOX_CORNERS) == 1
    assert pick_roll(0.5, T, rolled(T), uv, SEED_BOX_CORNERS) == 0  # no evidence: keep the first


def test_pick_roll_falls_back_on_the_keypoint_arrangement_when_both_poses_show_one_side():
    T = make_T(rotvec_to_R([0.3, 0.0, 0.0]) @ np.diag([1.0, -1.0, -1.0]), [0.0, 0.0, 2.0])
    uv = project_points(SEED_BOX_CORNERS, T, seed_camera().K)
    # a second pose showing the camera the same side: choose_roll cannot tell them apart
    assert choose_roll(0.95, T, T) is None
    assert pick_roll(0.95, T, T, uv, SEED_BOX_CORNERS) == 0
    assert pick_roll(0.05, T, T, uv, SEED_BOX_CORNERS) == 1
