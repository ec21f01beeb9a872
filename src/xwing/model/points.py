"""The point sets a keypoint network predicts, closed under the ship's symmetries.

``corners``: the seed's 8 box corners. ``surfaceN``: N points on the mesh's surface
(PVNet-style farthest-point sampling), closed under the mirror and the roll so that
training flips and the roll-symmetric loss stay exact (:mod:`xwing.model.symmetry`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xwing.model.keypoints import SEED_BOX_CORNERS
from xwing.model.mesh import xwing_mesh
from xwing.model.symmetry import (
    MIRROR_PAIRS,
    MIRROR_SIGNS,
    ROLL180_PAIRS,
    ROLL180_SIGNS,
    pairs_to_permutation,
    symmetry_permutation,
)


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
