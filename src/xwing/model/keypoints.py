"""The ship as data: the seed's 8 box corners, the laser cannons and the box's edges.

Its symmetries are :mod:`xwing.model.symmetry`'s; the point sets a network predicts,
:mod:`xwing.model.points`'.

Model frame (``docs/seed-facts.md``): x = wingspan, y = length (nose toward -y), z = height
(top, with canopy and astromech droid, toward +z). Units are the seed's.

Corner order (the seed's): corner ``i`` takes x from bit 0, y from bit 1 and z
from bit 2 of ``i`` (0 = min, 1 = max), so corner 0 is (-x, -y, -z) and corner 7
is (+x, +y, +z).
"""

from __future__ import annotations

import numpy as np

#: (8, 3) the seed's box corners, in the seed's order.
SEED_BOX_CORNERS = np.array([
    [-0.156, -0.182, -0.032],
    [+0.156, -0.182, -0.032],
    [-0.156, +0.163, -0.032],
    [+0.156, +0.163, -0.032],
    [-0.156, -0.182, +0.034],
    [+0.156, -0.182, +0.034],
    [-0.156, +0.163, +0.034],
    [+0.156, +0.163, +0.034],
])
#: (2, 3) min and max of the seed's axis-aligned box.
SEED_BOX = np.array([SEED_BOX_CORNERS.min(axis=0), SEED_BOX_CORNERS.max(axis=0)])

#: (4, 2, 3) laser cannons: [origin, direction point] per cannon, model frame.
SEED_LASERS = np.array([
    [[-0.145, -0.1, -0.01], [-0.145, -0.3, -0.01]],
    [[-0.145, -0.1, +0.01], [-0.145, -0.3, +0.01]],
    [[+0.145, -0.1, -0.01], [+0.145, -0.3, -0.01]],
    [[+0.145, -0.1, +0.01], [+0.145, -0.3, +0.01]],
])

#: The 12 edges of the box as corner index pairs (for drawing).
BOX_EDGES = ((0, 1), (2, 3), (4, 5), (6, 7), (0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7))


def box_corners(box_min: np.ndarray, box_max: np.ndarray) -> np.ndarray:
    """Axis-aligned box -> its (8, 3) corners in the seed's order."""
    lo, hi = np.asarray(box_min, dtype=np.float64), np.asarray(box_max, dtype=np.float64)
    corners = np.empty((8, 3))
    for i in range(8):
        corners[i] = [(lo, hi)[(i >> axis) & 1][axis] for axis in range(3)]
    return corners


def box_corners_of_points(vertices: np.ndarray) -> np.ndarray:
    """Any mesh's vertices (N, 3) -> the (8, 3) corners of their axis-aligned box, seed order."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    return box_corners(v.min(axis=0), v.max(axis=0))


def model_diameter(pts: np.ndarray) -> float:
    """Largest distance between two of ``pts`` (N, 3): the ADD threshold's reference."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
    if len(pts) > 2000:
        # Diameter is attained on the convex hull; a hull keeps this exact and fast.
        try:
            from scipy.spatial import ConvexHull

            pts = pts[ConvexHull(pts).vertices]
        except Exception:  # scipy is optional; fall back to blocks
            pass
    best = 0.0
    for start in range(0, len(pts), 1024):
        d = np.linalg.norm(pts[start:start + 1024, None, :] - pts[None, :, :], axis=-1)
        best = max(best, float(d.max()))
    return best
