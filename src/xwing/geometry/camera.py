"""Cameras: intrinsics ``K``, image size, lens distortion, and the seed's OpenGL files.

Convention (read this before touching a pixel)
----------------------------------------------
* **Pixel centres sit at integer coordinates** (OpenCV's convention) everywhere
  in xwing: keypoints, heatmaps, crops and ``K``. Pixel ``(u, v) = (0, 0)`` is the
  centre of the top-left pixel; the image spans ``[-0.5, W - 0.5]``.
* The seed's projection maps NDC -1 to the image *edge*, so every seed pixel
  figure equals ours + 0.5. For the seed camera at 256 x 256:
  ``fx = fy = 1.9444443 * 128 = 248.889`` and ``cx = cy = 127.5``.
* Two camera frames meet here. **OpenGL** (the seed's files, the renderer): the
  camera looks down its -z axis, y up. **OpenCV** (PnP, everything in xwing):
  looks down +z, y down. They differ by ``D = diag(1, -1, -1)``; the conversion
  lives in exactly one place, :data:`T_CV_GL` and the two functions below it.
* The seed's world: ``N_mat.json`` is the model matrix (object -> world) and
  ``camera_info.json``'s ``model_view_matrix`` is the view matrix (world ->
  OpenGL camera), so ``T_cam_obj = T_CV_GL @ view @ model``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.pose import invert_T

#: The seed camera: ``projection_matrix[0][0]`` of its ``camera_info.json``.
SEED_P00 = 1.9444442987442017
SEED_SIZE = 256
SEED_NEAR, SEED_FAR = 0.1, 100.0
#: The seed's view matrix (world -> OpenGL camera): camera at world (0, 0, 1).
SEED_VIEW_MATRIX = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, -1.0], [0, 0, 0, 1.0]])

#: OpenGL camera frame -> OpenCV camera frame (its own inverse).
T_CV_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def gl_to_cv_pose(T_glcam_x: np.ndarray) -> np.ndarray:
    """Pose of frame x in the OpenGL camera (4, 4) -> in the OpenCV camera (4, 4)."""
    return T_CV_GL @ np.asarray(T_glcam_x, dtype=np.float64)


def cv_to_gl_pose(T_cam_x: np.ndarray) -> np.ndarray:
    """Pose of frame x in the OpenCV camera (4, 4) -> in the OpenGL camera (4, 4)."""
    return T_CV_GL @ np.asarray(T_cam_x, dtype=np.float64)


def T_cam_obj_from_model_matrix(model_matrix: np.ndarray,
                                view_matrix: np.ndarray = SEED_VIEW_MATRIX) -> np.ndarray:
    """Seed model matrix (object -> world, 4x4) -> ``T_cam_obj`` (OpenCV camera, 4x4)."""
    return gl_to_cv_pose(np.asarray(view_matrix, dtype=np.float64) @ model_matrix)


def model_matrix_from_T_cam_obj(T_cam_obj: np.ndarray,
                                view_matrix: np.ndarray = SEED_VIEW_MATRIX) -> np.ndarray:
    """``T_cam_obj`` (OpenCV, 4x4) -> seed model matrix (object -> world, 4x4)."""
    return invert_T(np.asarray(view_matrix, dtype=np.float64)) @ cv_to_gl_pose(T_cam_obj)


def K_from_gl_projection(P: np.ndarray, width: int, height: int) -> np.ndarray:
    """OpenGL projection (4, 4) + image size -> ``K`` (3, 3), pixel centres at integers.

    The seed's rule (``u_edge = (ndc_x / 2 + 0.5) W``, ``v_edge = (-ndc_y / 2 + 0.5) H``)
    gives ``fx = P00 W / 2``, ``cx = (1 - P02) W / 2 - 0.5``, ``fy = P11 H / 2``,
    ``cy = (1 + P12) H / 2 - 0.5`` and skew ``-P01 W / 2``.
    """
    P = np.asarray(P, dtype=np.float64)
    K = np.eye(3)
    K[0, 0] = P[0, 0] * width / 2.0
    K[0, 1] = -P[0, 1] * width / 2.0
    K[0, 2] = (1.0 - P[0, 2]) * width / 2.0 - 0.5
    K[1, 1] = P[1, 1] * height / 2.0
    K[1, 2] = (1.0 + P[1, 2]) * height / 2.0 - 0.5
    return K


def gl_projection_from_K(K: np.ndarray, width: int, height: int,
                         near: float = SEED_NEAR, far: float = SEED_FAR) -> np.ndarray:
    """``K`` (3, 3) + size + clip planes -> OpenGL projection (4, 4); inverse of
    :func:`K_from_gl_projection`. Rendering with it puts pixel centres where ``K`` says."""
    K = np.asarray(K, dtype=np.float64)
    P = np.zeros((4, 4))
    P[0, 0] = 2.0 * K[0, 0] / width
    P[0, 1] = -2.0 * K[0, 1] / width
    P[0, 2] = 1.0 - 2.0 * (K[0, 2] + 0.5) / width
    P[1, 1] = 2.0 * K[1, 1] / height
    P[1, 2] = 2.0 * (K[1, 2] + 0.5) / height - 1.0
    P[2, 2] = -(far + near) / (far - near)
    P[2, 3] = -2.0 * far * near / (far - near)
    P[3, 2] = -1.0
    return P


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera with optional lens distortion.

    Attributes:
        K: (3, 3) intrinsics, pixel centres at integers.
        width, height: image size in pixels.
        dist: (N,) OpenCV distortion coefficients (k1, k2, p1, p2[, k3, ...]); empty
            or all zero for none.
        view_matrix: (4, 4) world -> OpenGL camera; only the seed's file format
            needs it (``N_mat.json`` holds object -> world).
        near, far: clip planes for rendering.
    """

    K: np.ndarray
    width: int
    height: int
    dist: np.ndarray = field(default_factory=lambda: np.zeros(0))
    view_matrix: np.ndarray = field(default_factory=lambda: SEED_VIEW_MATRIX.copy())
    near: float = SEED_NEAR
    far: float = SEED_FAR

    def __post_init__(self):
        K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "dist", np.asarray(self.dist, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "view_matrix", np.asarray(self.view_matrix, dtype=np.float64).reshape(4, 4))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        if self.width <= 0 or self.height <= 0:
            raise XwingError(f"image size must be positive, got {self.width} x {self.height}")
        if not (np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0):
            raise XwingError(f"camera matrix must be finite with positive focal lengths, got {K.tolist()}")
        if not np.all(np.isfinite(self.dist)):
            raise XwingError(f"distortion coefficients must be finite, got {self.dist.tolist()}")

    @property
    def has_distortion(self) -> bool:
        return bool(self.dist.size and np.any(self.dist != 0))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.width, self.height

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2 * math.atan2(self.width / 2.0, self.K[0, 0]))

    def gl_projection(self) -> np.ndarray:
        """OpenGL projection (4, 4) for the renderer (distortion is not rendered)."""
        return gl_projection_from_K(self.K, self.width, self.height, self.near, self.far)

    def with_K(self, K: np.ndarray, width: int, height: int) -> Camera:
        """Same camera (distortion, view, clip planes) with new intrinsics and size."""
        return Camera(K, width, height, self.dist, self.view_matrix, self.near, self.far)

    def resized(self, width: int, height: int) -> Camera:
        """This camera for an image resized to ``width`` x ``height``.

        Each axis maps pixel centres as ``u' = (u + 0.5) s - 0.5`` with
        ``s = width / self.width`` (resp. height); distortion is unchanged since it
        acts on normalised coordinates.
        """
        sx, sy = width / self.width, height / self.height
        S = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
        return self.with_K(S @ self.K, width, height)

    def for_frame_size(self, width: int, height: int) -> Camera:
        """This camera carried to another frame size keeping the horizontal field
        of view, square pixels and the principal point at the image centre.

        This is the documented guess for a video of unknown calibration:
        ``f' = fx * width / self.width``, ``c' = ((W - 1) / 2, (H - 1) / 2)``.
        """
        f = self.K[0, 0] * width / self.width
        K = np.array([[f, 0, (width - 1) / 2.0], [0, f, (height - 1) / 2.0], [0, 0, 1.0]])
        return self.with_K(K, width, height)

    def undistort_points(self, uv: np.ndarray) -> np.ndarray:
        """Distorted pixels (N, 2) -> ideal pinhole pixels (N, 2) under the same ``K``."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        if not self.has_distortion or len(uv) == 0:
            return uv.copy()
        import cv2

        # The criteria form iterates to convergence (the default stops after 5 steps).
        out = cv2.undistortPoints(uv.reshape(-1, 1, 2), self.K, self.dist, None, self.K,
                                  criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10))
        return out.reshape(-1, 2)

    def distort_points(self, uv: np.ndarray) -> np.ndarray:
        """Ideal pinhole pixels (N, 2) -> distorted pixels (N, 2) (for drawing)."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        if not self.has_distortion or len(uv) == 0:
            return uv.copy()
        import cv2

        xn = (uv - self.K[:2, 2]) @ np.linalg.inv(self.K[:2, :2]).T  # (N, 2) normalised
        pts = np.concatenate([xn, np.ones((len(xn), 1))], axis=1)
        out, _ = cv2.projectPoints(pts.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), self.K, self.dist)
        return out.reshape(-1, 2)

    def to_dict(self) -> dict:
        """Plain-JSON description (the ``xwing`` JSON calibration format plus extras)."""
        return {"K": self.K.tolist(), "dist": self.dist.tolist(), "width": self.width,
                "height": self.height, "view_matrix": self.view_matrix.tolist(),
                "near": self.near, "far": self.far}

    @classmethod
    def from_dict(cls, d: dict, source: str | Path = "camera") -> Camera:
        try:
            K = np.asarray(d["K"], dtype=np.float64)
            width, height = int(d["width"]), int(d["height"])
        except (KeyError, TypeError, ValueError) as e:
            raise XwingError(f"camera needs 'K' (3x3), 'width' and 'height' ({e})", source) from None
        if K.shape != (3, 3):
            raise XwingError(f"'K' must be 3x3, got shape {K.shape}", source)
        return cls(K, width, height, np.asarray(d.get("dist", []), dtype=np.float64),
                   np.asarray(d.get("view_matrix", SEED_VIEW_MATRIX), dtype=np.float64),
                   float(d.get("near", SEED_NEAR)), float(d.get("far", SEED_FAR)))

    # --- the seed's camera_info.json -------------------------------------------------

    def to_camera_info(self) -> dict:
        """The seed's ``camera_info.json`` content (three 4x4 row-major lists)."""
        return {"camera_world_matrix": invert_T(self.view_matrix).tolist(),
                "model_view_matrix": self.view_matrix.tolist(),
                "projection_matrix": self.gl_projection().tolist()}


def seed_camera(width: int = SEED_SIZE, height: int = SEED_SIZE) -> Camera:
    """The seed dataset's camera, for an image of the given size."""
    P = np.array([[SEED_P00, 0, 0, 0], [0, SEED_P00, 0, 0], [0, 0, -1.0020020008087158, -0.20020020008087158],
                  [0, 0, -1.0, 0]])
    return Camera(K_from_gl_projection(P, width, height), width, height)
