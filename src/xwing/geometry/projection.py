"""Projecting model points into images.

Convention: output pixels have their centres at integer coordinates (see
:mod:`xwing.geometry.camera`); :func:`project_points_seed` reproduces the seed's own
formula, whose figures are ours + 0.5, and exists to prove that.
"""

from __future__ import annotations

import numpy as np

from xwing.geometry.pose import transform_points


def project_points(pts_obj: np.ndarray, T_cam_obj: np.ndarray, K: np.ndarray,
                   dist: np.ndarray | None = None) -> np.ndarray:
    """Project model points (N, 3) with pose ``T_cam_obj`` (4, 4) -> pixels (N, 2).

    ``dist`` (OpenCV coefficients) applies lens distortion. Points at or behind the
    camera plane (z <= 0 in the camera frame) come out nan in both coordinates, with
    or without distortion, so callers can mask them (:func:`in_image` calls them outside).
    """
    X = transform_points(T_cam_obj, pts_obj)  # (N, 3) camera frame
    if dist is not None and np.size(dist) and np.any(np.asarray(dist) != 0):
        import cv2

        uv, _ = cv2.projectPoints(X.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K,
                                  np.asarray(dist, dtype=np.float64))
        uv = uv.reshape(-1, 2)
        uv[X[:, 2] <= 0] = np.nan
        return uv
    return project_camera_points(X, K)


def project_camera_points(X_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points (N, 3) -> pixels (N, 2); points at or
    behind the camera plane come out nan. For callers that need the camera frame too
    (the rasterisers' depths) without transforming twice."""
    X = np.asarray(X_cam, dtype=np.float64).reshape(-1, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(X[:, 2] > 0, X[:, 2], np.nan)
        xn = X[:, :2] / z[:, None]  # (N, 2) normalised image coordinates
    return xn @ K[:2, :2].T + K[:2, 2]


def projection_jacobian(X_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """d(pixel)/d(xi) (N, 2, 6) of camera-frame points ``X_cam`` (N, 3) (pinhole ``K``, no distortion).

    Convention: a left perturbation of the pose, ``T <- exp(xi) T`` with the twist
    ``xi = (v, w)`` (translation first, :func:`xwing.geometry.pose.se3_exp`), so a
    point moves by ``dX = v + w x X`` and ``d(pixel)/d(w) = X x d(pixel)/d(X)``.
    PnP (:mod:`xwing.geometry.pnp`) and the silhouette aligner share this one definition.
    """
    X = np.asarray(X_cam, np.float64).reshape(-1, 3)
    x, y, z = X[:, 0], X[:, 1], X[:, 2]
    fx, s, fy = K[0, 0], K[0, 1], K[1, 1]
    iz = 1.0 / z
    J = np.empty((len(X), 2, 6))
    a, b, c = fx * iz, s * iz, -(fx * x + s * y) * iz * iz  # du/dX
    J[:, 0, 0], J[:, 0, 1], J[:, 0, 2] = a, b, c
    J[:, 0, 3], J[:, 0, 4], J[:, 0, 5] = y * c - z * b, z * a - x * c, x * b - y * a
    b, c = fy * iz, -fy * y * iz * iz  # dv/dX = (0, b, c)
    J[:, 1, 0], J[:, 1, 1], J[:, 1, 2] = 0.0, b, c
    J[:, 1, 3], J[:, 1, 4], J[:, 1, 5] = y * c - z * b, -x * c, x * b
    return J


def depths(pts_obj: np.ndarray, T_cam_obj: np.ndarray) -> np.ndarray:
    """Camera-frame depth z (N,) of model points (N, 3)."""
    return transform_points(T_cam_obj, pts_obj)[:, 2]


def project_points_seed(pts_obj: np.ndarray, model_matrix: np.ndarray, view_matrix: np.ndarray,
                        projection_matrix: np.ndarray, width: int, height: int) -> np.ndarray:
    """The seed's projection, verbatim (pixel-*edge* convention): points (N, 3) -> (N, 2).

    ``clip = P @ V @ M @ [X, 1]``; ``u = (clip.x / clip.w / 2 + 0.5) W``,
    ``v = (-clip.y / clip.w / 2 + 0.5) H``. Our :func:`project_points` gives these
    values minus 0.5.
    """
    pts = np.asarray(pts_obj, dtype=np.float64).reshape(-1, 3)
    Xh = np.concatenate([pts, np.ones((len(pts), 1))], axis=1)  # (N, 4)
    clip = Xh @ (projection_matrix @ view_matrix @ model_matrix).T
    ndc_x = clip[:, 0] / clip[:, 3]
    ndc_y = -clip[:, 1] / clip[:, 3]
    return np.stack([(ndc_x / 2 + 0.5) * width, (ndc_y / 2 + 0.5) * height], axis=1)


def seed_normalised(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """Our pixels (N, 2), centres at integers -> the seed's normalised coordinates (N, 2).

    Convention: the seed measured pixels from the image *edge* (its figures are
    ours + 0.5, :func:`project_points_seed`) and divided them by the image's width and
    height, so the image spans [0, 1] on both axes: ``x = (u + 0.5) / W``,
    ``y = (v + 0.5) / H``. Non-finite pixels stay non-finite.
    """
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    return (uv + 0.5) / np.array([width, height], dtype=np.float64)


def in_image(uv: np.ndarray, width: int, height: int, margin: float = 0.0) -> np.ndarray:
    """(N,) bool: pixels (N, 2) inside the image ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``
    grown by ``margin`` pixels on each side; non-finite points are outside."""
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    lo = -0.5 - margin
    with np.errstate(invalid="ignore"):
        return (np.isfinite(uv).all(axis=1) & (uv[:, 0] >= lo) & (uv[:, 1] >= lo)
                & (uv[:, 0] <= width - 0.5 + margin) & (uv[:, 1] <= height - 0.5 + margin))
