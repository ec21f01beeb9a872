"""The object model: one value that carries everything the pipeline knows of the object.

Loaded once (:meth:`ObjectModel.load`, cached per file) and passed down: the
estimator, the aligner, the tracker and eval read the same arrays instead of
each loading the mesh again. The arrays are shared; nobody modifies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from xwing.model.keypoints import SEED_BOX_CORNERS, SEED_LASERS, model_diameter
from xwing.model.mesh import Mesh, load_mesh, xwing_mesh

#: Surface points for ADD/ADI and the 2D projection metric (evenly sampled, seed 0).
N_MODEL_POINTS = 500


@dataclass(frozen=True, eq=False)
class ObjectModel:
    """Attributes:
        mesh: the :class:`~xwing.model.mesh.Mesh` (the procedural X-wing by default).
        source: the mesh file ("" for the procedural ship) and whether it was fitted
            to the seed's box: the key it was loaded under.
        box_corners: (8, 3) the corners reported in every output, seed order (the seed's
            own box for the procedural ship, which is built inside it; else the mesh's box).
        lasers: (4, 2, 3) [origin, direction point] per cannon (the seed's).
    """

    mesh: Mesh
    source: tuple[str, bool]
    box_corners: np.ndarray
    lasers: np.ndarray

    @classmethod
    def load(cls, mesh_path: str = "", fit_seed_box: bool = False) -> ObjectModel:
        """The object model of ``mesh_path`` ("" : the procedural X-wing, numpy only; a file
        is read with trimesh, ``xwing[render]``), built once per process."""
        return _load(str(mesh_path or ""), bool(fit_seed_box))

    @cached_property
    def vertices(self) -> np.ndarray:
        """(V, 3) float64 mesh vertices (the aligner runs on every frame: converted once)."""
        return np.asarray(self.mesh.vertices, np.float64)

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) triangle vertex indices."""
        return self.mesh.faces

    @cached_property
    def model_points(self) -> np.ndarray:
        """(N_MODEL_POINTS, 3) points on the surface, for ADD, ADI and proj-2D."""
        return self.mesh.surface_points(N_MODEL_POINTS, seed=0)

    @cached_property
    def diameter(self) -> float:
        """Diameter of :attr:`model_points`: the reference of the ADD-0.1d threshold."""
        return model_diameter(self.model_points)


@lru_cache(maxsize=4)
def _load(mesh_path: str, fit_seed_box: bool) -> ObjectModel:
    if mesh_path:
        mesh = load_mesh(mesh_path, fit_seed_box=fit_seed_box)
        corners = mesh.box_corners()
    else:
        mesh, corners = xwing_mesh(), SEED_BOX_CORNERS
    return ObjectModel(mesh, (mesh_path, fit_seed_box), np.asarray(corners, np.float64).reshape(8, 3),
                       SEED_LASERS.copy())
