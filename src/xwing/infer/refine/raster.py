"""A small software rasteriser (numpy + OpenCV): anti-aliased silhouettes and depth, no GL.

The refiner needs the mesh's silhouette at the current pose many times per image,
in the light inference stack (no moderngl), with sub-pixel accuracy. Triangles are
filled with OpenCV's fixed-point ``fillConvexPoly`` on a canvas ``supersample``
times finer than the image, far to near (painter's order), each writing its face
index; coverage is the area average of the covered sub-pixels and depth comes
from intersecting each pixel's ray with the plane of the face seen there.

Convention: pixel centres at integers (see :mod:`xwing.geometry.camera`); the sub-pixel
grid of pixel ``u`` has centres ``u + (k + 0.5) / s - 0.5``, ``k = 0 .. s - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xwing.geometry.pose import transform_points
from xwing.geometry.projection import project_camera_points

_SHIFT = 4  # fixed-point bits for vertex coordinates (1/16 sub-pixel)


def _compensate_fill_rule(tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shrink triangles (F, 3, 2) to cancel OpenCV's inclusive fill rule.

    ``fillConvexPoly`` fills, on each row, the pixels from ``round(x_left)`` to
    ``round(x_right)`` inclusive, and the rows from ``round(y_min)`` to
    ``round(y_max)``: about half a pixel more than the pixels whose centres are
    inside, on every side. Moving each edge inward by ``0.5 max(|n_x|, |n_y|)``
    along its normal cancels that, so silhouettes come out unbiased (the check is in
    ``docs/refinement.md``). Returns the shrunk triangles and a (F,) mask of those still
    valid (slivers thinner than the offset vanish; they covered no pixel centre anyway).
    """
    P = tri.astype(np.float64)
    e = np.roll(P, -1, axis=1) - P  # (F, 3, 2) edge i from P_i to P_i+1
    area2 = e[:, 0, 0] * e[:, 1, 1] - e[:, 0, 1] * e[:, 1, 0]
    sign = np.where(area2 >= 0, 1.0, -1.0)[:, None]
    length = np.linalg.norm(e, axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        # inward normal for counter-clockwise (area2 > 0) triangles is (-ey, ex)
        n = np.stack([-e[:, :, 1], e[:, :, 0]], axis=2) * sign[:, :, None] / length[:, :, None]
    off = 0.5 * np.abs(n).max(axis=2)
    c = np.einsum("fij,fij->fi", n, P) + off  # line i: n_i . p = c_i
    # vertex i is where edge i-1 and edge i meet
    n_prev, c_prev = np.roll(n, 1, axis=1), np.roll(c, 1, axis=1)
    det = n_prev[:, :, 0] * n[:, :, 1] - n_prev[:, :, 1] * n[:, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (c_prev * n[:, :, 1] - c * n_prev[:, :, 1]) / det
        y = (n_prev[:, :, 0] * c - n[:, :, 0] * c_prev) / det
        out = np.stack([x, y], axis=2)
        e2 = np.roll(out, -1, axis=1) - out  # inf - inf for degenerate slivers: marked invalid below
        area2_new = e2[:, 0, 0] * e2[:, 1, 1] - e2[:, 0, 1] * e2[:, 1, 0]
    valid = np.isfinite(out).all(axis=(1, 2)) & (area2_new * area2 > 0) & (np.abs(area2_new) <= np.abs(area2))
    return out, valid


@dataclass
class Raster:
    """Attributes:
        coverage: (H, W) float32 in [0, 1], share of each pixel the mesh covers.
        face: (H, W) int32 index of the face seen at the pixel centre (-1: none), or None where
            the compiled rasteriser was asked for no depth (its z-buffer gives both).
        depth: (H, W) float32 camera-frame z at the pixel centre (inf: none), or None.
    """

    coverage: np.ndarray
    face: np.ndarray
    depth: np.ndarray | None


def rasterize(vertices: np.ndarray, faces: np.ndarray, T_cam_obj: np.ndarray, K: np.ndarray,
              width: int, height: int, supersample: int = 4, want_depth: bool = True,
              near: float = 1e-3) -> Raster:
    """Rasterise a mesh at a pose.

    Args:
        vertices: (V, 3) model points; faces: (F, 3) vertex indices.
        T_cam_obj: (4, 4) pose; K: (3, 3) intrinsics of the (width, height) image.
        supersample: sub-pixels per pixel along each axis (coverage has
            ``supersample**2 + 1`` levels).
        want_depth: also compute per-pixel depth of the visible face.
        near: faces with a vertex closer than this are skipped.
    """
    s = int(supersample)
    X = transform_points(T_cam_obj, vertices)  # (V, 3) camera frame
    z = X[:, 2]
    uv = project_camera_points(X, K)  # (V, 2) pixels; nan behind the camera, whose faces are skipped
    # Sub-pixel canvas coordinates: u_ss = (u + 0.5) s - 0.5, in 1/16 fixed point.
    uv_ss = (uv + 0.5) * s - 0.5
    tri_z = z[faces]  # (F, 3)
    tri = uv_ss[faces]  # (F, 3, 2)
    W, H = width * s, height * s
    keep = (tri_z.min(axis=1) > near) & np.isfinite(tri).all(axis=(1, 2))
    lo, hi = tri.min(axis=1), tri.max(axis=1)
    keep &= (hi[:, 0] >= -1) & (hi[:, 1] >= -1) & (lo[:, 0] <= W) & (lo[:, 1] <= H)
    # Clamp far-off vertices so fixed-point coordinates cannot overflow; a clamped
    # triangle only ever lies partly outside the canvas, where nothing is drawn.
    tri = np.clip(tri, -4 * W - 64, 5 * W + 64)
    tri, valid = _compensate_fill_rule(tri)
    keep &= valid
    idx = np.flatnonzero(keep)
    coverage = np.zeros((height, width), np.float32)
    face = np.full((height, width), -1, np.int32)
    if len(idx) == 0:
        return Raster(coverage, face, np.full((height, width), np.inf, np.float32) if want_depth else None)
    # Draw only inside the pixel-aligned box around the visible triangles.
    x0 = int(max(0, np.floor(lo[idx, 0].min() / s) - 1))
    y0 = int(max(0, np.floor(lo[idx, 1].min() / s) - 1))
    x1 = int(min(width, np.ceil(hi[idx, 0].max() / s) + 2))
    y1 = int(min(height, np.ceil(hi[idx, 1].max() / s) + 2))
    order = idx[np.argsort(-tri_z[idx].mean(axis=1), kind="stable")]  # far to near
    pts = np.round((tri[order] - [x0 * s, y0 * s]) * (1 << _SHIFT)).astype(np.int32)  # (F', 3, 2)
    import cv2

    canvas = np.full(((y1 - y0) * s, (x1 - x0) * s), -1.0, np.float32)
    for f, p in zip(order.tolist(), pts):
        cv2.fillConvexPoly(canvas, p, float(f), cv2.LINE_8, _SHIFT)
    covered = (canvas >= 0).astype(np.float32)
    # INTER_AREA with an integer factor is an exact block mean.
    coverage[y0:y1, x0:x1] = cv2.resize(covered, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    face[y0:y1, x0:x1] = canvas[s // 2::s, s // 2::s]
    # With an even s the pixel centre falls between sub-pixels; s // 2 picks one of
    # the two nearest, which only matters exactly on a face boundary.
    depth = face_depth(face, X, faces, K) if want_depth else None
    return Raster(coverage, face, depth)


def face_depth(face: np.ndarray, X_cam: np.ndarray, faces: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Depth (H, W) of each pixel centre's ray on the plane of face ``face`` (H, W);
    ``X_cam`` (V, 3) are the vertices in the camera frame."""
    depth = np.full(face.shape, np.inf, np.float32)
    ys, xs = np.nonzero(face >= 0)
    if len(ys) == 0:
        return depth
    f = face[ys, xs]
    a, b, c = X_cam[faces[f, 0]], X_cam[faces[f, 1]], X_cam[faces[f, 2]]  # (N, 3) each
    n = np.cross(b - a, c - a)  # plane normals (N, 3)
    rays = np.stack([xs, ys, np.ones_like(xs)], axis=1).astype(np.float64) @ np.linalg.inv(K).T  # (N, 3), z = 1
    denom = np.einsum("ij,ij->i", n, rays)
    num = np.einsum("ij,ij->i", n, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        zc = num / denom
    # Edge-on faces (denom ~ 0) fall back to the face's mean depth.
    bad = ~np.isfinite(zc) | (np.abs(denom) < 1e-12 * np.linalg.norm(n, axis=1)) | (zc <= 0)
    zc[bad] = (a[bad, 2] + b[bad, 2] + c[bad, 2]) / 3.0
    # A pixel centre just off a thin, steep face extrapolates its plane far away:
    # keep the depth within the face's own depth range.
    tz = np.stack([a[:, 2], b[:, 2], c[:, 2]], axis=1)
    zc = np.clip(zc, tz.min(axis=1), tz.max(axis=1))
    depth[ys, xs] = zc
    return depth
