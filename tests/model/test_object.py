"""xwing.model.object: the object model, loaded once and passed down."""

import numpy as np

from xwing.model.keypoints import SEED_BOX_CORNERS, model_diameter
from xwing.model.object import N_MODEL_POINTS, ObjectModel


def test_the_procedural_ship_reports_the_seed_box_and_is_loaded_once():
    a, b = ObjectModel.load(), ObjectModel.load("", False)
    assert a is b
    np.testing.assert_array_equal(a.box_corners, SEED_BOX_CORNERS)
    assert a.vertices.dtype == np.float64 and a.vertices.shape[1] == 3 and a.faces.shape[1] == 3
    assert a.model_points.shape == (N_MODEL_POINTS, 3)
    assert abs(a.diameter - model_diameter(a.model_points)) < 1e-12
    # the mesh fits in the seed box
    assert np.all(a.vertices.min(axis=0) >= SEED_BOX_CORNERS.min(axis=0) - 1e-6)
    assert np.all(a.vertices.max(axis=0) <= SEED_BOX_CORNERS.max(axis=0) + 1e-6)
