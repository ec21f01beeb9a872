"""The pose sampler: which poses the training and test data show (numpy only).

The distribution (defaults of :class:`PoseSamplerConfig`), drawn per sample:

1. **Category** (shares of all samples):

   * ``inside`` (75 %): all 8 box corners inside the image;
   * ``truncated`` (16 %): at least one box corner outside the image, but the
     ship itself wholly inside (the labels leave the frame, the pixels don't);
   * ``cut`` (4 % = ``cut_share`` 0.2 of the 20 %): the ship itself cut by the
     image border (its origin inside the image);
   * ``out`` (``p_out_of_view`` = 5 %): the whole projected box outside the
     image, next to it (the pose is still written; such samples teach "no ship").

   So ``p_truncated`` = 20 % of samples have a box corner outside the image
   without being out of view; ``truncated`` + ``cut`` share it.
2. **Rotation**: uniform on SO(3) (a normalised 4-D Gaussian quaternion): every
   attitude, including from below and nose-on, equally likely.
3. **Distance**: the depth ``z`` of the ship's origin in the camera frame,
   log-uniform on ``distance`` = [0.6, 2.5] (the seed's identity pose is at
   1.0). Log-uniform gives each octave of apparent size the same share; with
   the seed camera the ship is about 140, 86 and 34 px long at 0.6, 1.0, 2.5.
4. **Position**: the origin's pixel ``(u, v)`` uniform over the positions that
   give the category (inside the image; for ``out``, within one ship size of
   it); ``T = z K^-1 (u, v, 1)``. Positions are proposed from the shapes
   projected at the image centre and each accepted only after an exact check;
   when a rotation and distance allow no such position (a close ship too big
   for ``inside``, a far one too compact to be ``truncated`` without being
   cut), they are redrawn, so the categories' distances differ a little
   (median depth ~1.2 for ``inside``, ~1.0 for ``truncated``).
5. **Edge-on oversampling** (``p_edge_on``, 0 by default and in the test set): that
   share of samples is drawn edge-on (``|facing_cos| < EDGE_COS``, :mod:`xwing.model.symmetry`:
   rotations redrawn until edge-on from the image centre, positions kept only where the
   ship is still edge-on from the camera there), where the uniform
   rotation gives about 20 %: the hard case for the keypoints' labelling. With 0 no
   random number is drawn for it, so existing datasets stay the same.

Everything is a function of the ``numpy.random.Generator`` passed in, so a
per-sample generator seeded from ``(seed, index)`` makes each sample
reproducible on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xwing.geometry.camera import Camera
from xwing.geometry.pose import make_T, random_rotation
from xwing.geometry.projection import in_image, project_points
from xwing.model.keypoints import SEED_BOX_CORNERS
from xwing.model.symmetry import EDGE_COS, facing_cos

CATEGORIES = ("inside", "truncated", "cut", "out")


@dataclass(frozen=True)
class PoseSamplerConfig:
    """Parameters of the pose distribution (see the module docstring)."""

    distance: tuple[float, float] = (0.6, 2.5)
    p_truncated: float = 0.20
    cut_share: float = 0.2
    p_out_of_view: float = 0.05
    p_edge_on: float = 0.0
    max_tries: int = 64

    def __post_init__(self):
        lo, hi = self.distance
        if not 0 < lo <= hi:
            raise ValueError(f"distance range must satisfy 0 < min <= max, got {self.distance}")
        if not (0 <= self.p_truncated and 0 <= self.p_out_of_view and self.p_truncated + self.p_out_of_view <= 1):
            raise ValueError("p_truncated and p_out_of_view must be >= 0 and sum to <= 1")
        if not 0 <= self.p_edge_on <= 1:
            raise ValueError(f"p_edge_on must be in [0, 1], got {self.p_edge_on}")
        if not 0 <= self.cut_share <= 1:
            raise ValueError("cut_share (of the truncated samples, the ship itself cut) must be in [0, 1]")


@dataclass(frozen=True)
class PoseSample:
    """A sampled pose.

    Attributes:
        T_cam_obj: (4, 4) object -> OpenCV camera.
        category: one of :data:`CATEGORIES` (what it was drawn as and satisfies).
        corners_px: (8, 2) projected box corners, pixel centres at integers.
    """

    T_cam_obj: np.ndarray
    category: str
    corners_px: np.ndarray


def extreme_points(points: np.ndarray, n_directions: int = 512) -> np.ndarray:
    """The points of ``points`` (N, 3) that are farthest along any of ``n_directions``
    directions spread evenly over the sphere: nearly the convex hull's vertices, the
    only points that can bound a projection. Cheap (numpy), used to *propose* poses;
    the exact check uses every point."""
    pts = np.unique(np.asarray(points, dtype=np.float64).reshape(-1, 3), axis=0)
    k = np.arange(n_directions) + 0.5
    polar, azimuth = np.arccos(1 - 2 * k / n_directions), np.pi * (1 + 5 ** 0.5) * k  # Fibonacci sphere
    dirs = np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1)
    return pts[np.unique(np.argmax(pts @ dirs.T, axis=0))]


class PoseSampler:
    """Draws poses of a model for ``camera`` (see the module docstring).

    Args:
        corners: (8, 3) the model's box corners (the labels).
        points: (N, 3) points whose projection bounds the ship's silhouette (its
            mesh vertices); default: the corners (then ``truncated`` never happens).
    """

    def __init__(self, camera: Camera, config: PoseSamplerConfig = PoseSamplerConfig(),
                 corners: np.ndarray = SEED_BOX_CORNERS, points: np.ndarray | None = None):
        self.camera = camera
        self.config = config
        self.corners = np.asarray(corners, dtype=np.float64).reshape(8, 3)
        pts = self.corners if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 3)
        self.points = np.unique(pts, axis=0)  # (N, 3) for the exact category check
        self._extremes = extreme_points(self.points)  # (M, 3) M << N, for proposals
        self._K_inv = np.linalg.inv(camera.K)

    def category(self, rng: np.random.Generator) -> str:
        c = self.config
        u = rng.random()
        p_cut = c.p_truncated * c.cut_share
        for name, p in (("out", c.p_out_of_view), ("cut", p_cut), ("truncated", c.p_truncated - p_cut)):
            if u < p:
                return name
            u -= p
        return "inside"

    def _place(self, R, z, u, v):
        t = z * (self._K_inv @ np.array([u, v, 1.0]))
        return make_T(R, t)

    def classify(self, corners_px: np.ndarray, T_cam_obj: np.ndarray | None = None) -> str:
        """The category of a pose from its projected corners (8, 2); ``T_cam_obj`` (4, 4)
        tells ``truncated`` from ``cut`` (every model point checked), else ``cut``."""
        W, H = self.camera.width, self.camera.height
        if in_image(corners_px, W, H).all():
            return "inside"
        uv = corners_px[np.isfinite(corners_px).all(axis=1)]
        if len(uv) == 8:
            lo, hi = uv.min(axis=0), uv.max(axis=0)
            if hi[0] < -0.5 or hi[1] < -0.5 or lo[0] > W - 0.5 or lo[1] > H - 0.5:
                return "out"
        if T_cam_obj is not None and in_image(project_points(self.points, T_cam_obj, self.camera.K), W, H).all():
            return "truncated"
        return "cut"

    def classify_pose(self, T_cam_obj: np.ndarray) -> str:
        return self.classify(project_points(self.corners, T_cam_obj, self.camera.K), T_cam_obj)

    def _propose(self, rng, cat, box_c, box_m):
        """A pixel (u, v) for the origin, given the corners' and the silhouette's pixel
        extents (2, 2) [lo, hi] relative to the origin's pixel; None if the category
        looks infeasible. Plain floats: this runs for every sample."""
        W, H = float(self.camera.width), float(self.camera.height)
        (cx0, cy0), (cx1, cy1) = box_c.tolist()
        (mx0, my0), (mx1, my1) = box_m.tolist()
        # Origin pixels that keep the corners (c) or the silhouette (m) inside, per axis.
        cu0, cu1, cv0, cv1 = -0.5 - cx0, W - 0.5 - cx1, -0.5 - cy0, H - 0.5 - cy1
        mu0, mu1, mv0, mv1 = -0.5 - mx0, W - 0.5 - mx1, -0.5 - my0, H - 0.5 - my1
        uniform = rng.uniform
        if cat == "inside":
            if cu1 < cu0 or cv1 < cv0:
                return None
            return uniform(cu0, cu1), uniform(cv0, cv1)
        if cat == "out":
            m = max(cx1 - cx0, cy1 - cy0)
            for _ in range(16):
                u, v = uniform(-0.5 - m, W - 0.5 + m), uniform(-0.5 - m, H - 0.5 + m)
                if u + cx1 < -0.5 or v + cy1 < -0.5 or u + cx0 > W - 0.5 or v + cy0 > H - 0.5:
                    return u, v
            return None
        if cat == "truncated":
            u0, u1, v0, v1 = max(mu0, -0.5), min(mu1, W - 0.5), max(mv0, -0.5), min(mv1, H - 0.5)
            if u1 < u0 or v1 < v0:
                return None
            for _ in range(16):
                u, v = uniform(u0, u1), uniform(v0, v1)
                if u < cu0 or u > cu1 or v < cv0 or v > cv1:
                    return u, v
            return None
        for _ in range(16):  # cut: origin inside the image, silhouette not
            u, v = uniform(-0.5, W - 0.5), uniform(-0.5, H - 0.5)
            if u < mu0 or u > mu1 or v < mv0 or v > mv1:
                return u, v
        return None

    def sample(self, rng: np.random.Generator, category: str | None = None) -> PoseSample:
        """One pose; ``category`` forces the category (else drawn with the config's odds)."""
        cat = category or self.category(rng)
        if cat not in CATEGORIES:
            raise ValueError(f"category must be one of {CATEGORIES}, got {cat!r}")
        K = self.camera.K
        centre = K[:2, 2]
        lo, hi = np.log(self.config.distance[0]), np.log(self.config.distance[1])
        T = None
        edge_on = self.config.p_edge_on > 0 and rng.random() < self.config.p_edge_on
        for _attempt in range(self.config.max_tries):
            R = random_rotation(rng)
            z = float(np.exp(rng.uniform(lo, hi)))
            T0 = self._place(R, z, *centre)
            for _ in range(64 if edge_on else 0):
                if abs(facing_cos(T0)) < EDGE_COS:
                    break
                R = random_rotation(rng)
                T0 = self._place(R, z, *centre)
            dc = project_points(self.corners, T0, K) - centre  # (8, 2) offsets from the origin's pixel
            dm = project_points(self._extremes, T0, K) - centre  # (M, 2)
            box_c = np.stack([dc.min(axis=0), dc.max(axis=0)])
            box_m = np.stack([dm.min(axis=0), dm.max(axis=0)])
            for _ in range(4):
                p = self._propose(rng, cat, box_c, box_m)
                if p is None:
                    break
                T = self._place(R, z, *p)
                uv = project_points(self.corners, T, K)
                if self.classify(uv, T) == cat and (not edge_on or abs(facing_cos(T)) < EDGE_COS):
                    return PoseSample(T, cat, uv)
        # Only for impossible requests (a camera far too small for the ship): the last
        # draw, labelled with what it is.
        if T is None:
            T = self._place(random_rotation(rng), float(np.exp(lo)), *centre)
        return PoseSample(T, self.classify_pose(T), project_points(self.corners, T, K))
