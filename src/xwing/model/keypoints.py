"""The ship as data: the seed's 8 box corners, their symmetries, and the laser cannons.

Model frame (``docs/seed-facts.md``): x = wingspan, y = length (nose toward -y), z = height
(top, with canopy and astromech droid, toward +z). Units are the seed's.

Corner order (the seed's): corner ``i`` takes x from bit 0, y from bit 1 and z
from bit 2 of ``i`` (0 = min, 1 = max), so corner 0 is (-x, -y, -z) and corner 7
is (+x, +y, +z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xwing.model.symmetry import (
    MIRROR_PAIRS,
    MIRROR_SIGNS,
    ROLL180_PAIRS,
    ROLL180_SIGNS,
    pairs_to_permutation,
    symmetry_permutation,
)

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


# --- the points a network predicts ----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PointSet:
    """The model points a network predicts and their symmetries.

    Attributes:
        name: ``"corners"`` (the seed's 8 box corners) or ``"surfaceN"``.
        points_3d: (K, 3) model points.
        mirror_perm: (K,) ``new[i] = old[p[i]]`` under the mirror x -> -x.
        roll180_perm: (K,) the same under the 180-degree roll (x, y, z) -> (-x, y, -z).
    """

    name: str
    points_3d: np.ndarray
    mirror_perm: np.ndarray
    roll180_perm: np.ndarray

    def to_dict(self) -> dict:
        return {"name": self.name, "points_3d": np.asarray(self.points_3d).tolist(),
                "mirror_perm": np.asarray(self.mirror_perm).tolist(),
                "roll180_perm": np.asarray(self.roll180_perm).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> PointSet:
        return cls(d["name"], np.asarray(d["points_3d"], np.float64), np.asarray(d["mirror_perm"], np.int64),
                   np.asarray(d["roll180_perm"], np.int64))


def point_set(name: str = "corners", mesh=None) -> PointSet:
    """Build a named point set.

    ``"corners"``: the seed's 8 box corners. ``"surfaceN"`` (N a multiple of 4):
    N points on the mesh's surface (default: the procedural X-wing), farthest-point
    sampled (PVNet) among surface points at least 3 cm off the mirror plane whose mirror and roll images also lie on
    the surface (within 3 mm), then closed under both symmetries, so that flips
    and the roll-symmetric loss stay exact.
    """
    if name == "corners":
        return PointSet(name, SEED_BOX_CORNERS.copy(), pairs_to_permutation(MIRROR_PAIRS),
                        pairs_to_permutation(ROLL180_PAIRS))
    if not name.startswith("surface"):
        raise ValueError(f"unknown point set {name!r}")
    n = int(name[len("surface"):])
    if n % 4:
        raise ValueError("surface point count must be a multiple of 4")
    if mesh is None:
        from xwing.model.mesh import xwing_mesh

        mesh = xwing_mesh()
    surf = np.asarray(mesh.surface_points(8000, seed=0), np.float64)
    signs = [np.array(s) for s in ((-1, 1, 1), (-1, 1, -1), (1, 1, -1))]

    def nn_dist(q):
        best = np.full(len(q), np.inf)
        for start in range(0, len(surf), 4096):
            d = np.linalg.norm(q[:, None, :] - surf[None, start:start + 4096], axis=-1)
            best = np.minimum(best, d.min(axis=1))
        return best

    # One quadrant (its orbit fills the rest), away from the mirror plane so that
    # mirror partners are distinct points in the image (>= 6 cm apart).
    cand = surf[(surf[:, 0] > 0.03) & (surf[:, 2] > 1e-3)]
    cand = cand[::max(1, len(cand) // 1000)]
    ok = np.ones(len(cand), bool)
    for s in signs:
        ok &= nn_dist(cand * s) < 3e-3
    cand = cand[ok]
    # Farthest-point sampling, starting from the point farthest from the centre.
    chosen = [int(np.linalg.norm(cand, axis=1).argmax())]
    d = np.linalg.norm(cand - cand[chosen[0]], axis=1)
    while len(chosen) < n // 4:
        chosen.append(int(d.argmax()))
        d = np.minimum(d, np.linalg.norm(cand - cand[chosen[-1]], axis=1))
    base = cand[chosen]
    pts = np.concatenate([base] + [base * s for s in signs])  # (N, 3): orbit blocks
    return PointSet(name, pts, _closed_perm(pts, MIRROR_SIGNS), _closed_perm(pts, ROLL180_SIGNS))


def _closed_perm(points: np.ndarray, signs: np.ndarray) -> np.ndarray:
    perm = symmetry_permutation(points, signs, tol=1e-6)
    if perm is None:
        raise ValueError("point set is not closed under the symmetry")
    return perm
