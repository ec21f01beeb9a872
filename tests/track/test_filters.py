"""xwing.track.filters: both pose filters behind one interface."""

import numpy as np
import pytest

from xwing.geometry.pose import make_T, rotvec_to_R
from xwing.track.filters import FILTERS, PoseFilter


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_every_filter_has_the_interface_and_follows_a_still_ship(name):
    f = FILTERS[name](3.0, 5.0, 20.0, 1.0)
    for method in ("reset", "predict", "update", "coast"):
        assert callable(getattr(f, method))
    assert isinstance(f, PoseFilter)
    T = make_T(rotvec_to_R([0.2, 0.1, 0.0]), [0.0, 0.0, 2.0])
    for _ in range(5):
        out = f.update(T, 1 / 30)
    np.testing.assert_allclose(out, T, atol=1e-9)
    f.coast(T)
    pred = f.predict()
    assert pred is None or np.allclose(pred, T, atol=1e-9)
    f.reset()
    assert f.T is None and f.predict() is None
