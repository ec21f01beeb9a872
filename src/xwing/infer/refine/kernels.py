"""Compiled kernels of the silhouette aligner (numba): rasteriser, colour unmixing, Jacobian.

:mod:`xwing.infer.refine.raster` and the numpy functions of
:mod:`xwing.infer.refine.align` stay the reference these are tested against.

Rasteriser conventions (pixel centres at integers, :mod:`xwing.geometry.camera`):

* coverage: the share of a pixel's ``s x s`` sub-pixel centres
  (``u + (k + 0.5) / s - 0.5``) inside the union of the triangles. Scanline spans
  are half-open (a centre exactly on a left or top edge is in, on a right or bottom
  edge out), so a shared edge counts once and a closed mesh has no cracks.
* face and depth: a z-buffer at the pixel centres themselves; depth is the
  perspective-correct interpolation (``1/z`` is affine on screen), which is the
  reference's ray-plane intersection inside the face.

Compiled once per machine into numba's on-disk cache (``cache=True``); the first
call of a new process only loads it.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from xwing.geometry.pose import transform_points
from xwing.geometry.projection import project_camera_points
from xwing.infer.refine.raster import Raster

_NJIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")


@nb.njit(**_NJIT)
def _fill_spans(ax, ay, bx, by, cx, cy, width, height, out, k0):
    """Scanline spans of triangle abc on the integer grid ``width x height`` (sample
    centres at integers): for each row ``y`` with samples inside, ``out[k] = (y, x0, x1)``
    (inclusive) from row ``k0`` on -> the next free row. Half-open in both directions:
    a sample exactly on a left or top edge is in, on a right or bottom edge out."""
    # sort by y: (x0, y0) <= (x1, y1) <= (x2, y2)
    if ay > by:
        ax, ay, bx, by = bx, by, ax, ay
    if by > cy:
        bx, by, cx, cy = cx, cy, bx, by
    if ay > by:
        ax, ay, bx, by = bx, by, ax, ay
    if cy == ay:
        return k0
    s02 = (cx - ax) / (cy - ay)
    s01 = (bx - ax) / (by - ay) if by > ay else 0.0
    s12 = (cx - bx) / (cy - by) if cy > by else 0.0
    y_first = max(0, int(math.ceil(ay)))
    y_last = min(height - 1, int(math.ceil(cy)) - 1)
    k = k0
    for y in range(y_first, y_last + 1):
        fy = float(y)
        xl = ax + (fy - ay) * s02
        xr = ax + (fy - ay) * s01 if fy < by else bx + (fy - by) * s12
        if xl > xr:
            xl, xr = xr, xl
        x0 = max(0, int(math.ceil(xl)))
        x1 = min(width - 1, int(math.ceil(xr)) - 1)
        if x1 >= x0:
            out[k, 0], out[k, 1], out[k, 2] = y, x0, x1
            k += 1
    return k


@nb.njit(**_NJIT)
def _raster_kernel(uv, z, faces, width, height, s, near, want_depth, coverage, face, depth):
    """Fill ``coverage`` (H, W) float32, ``face`` (H, W) int32 and ``depth`` (H, W) float32
    (inf where empty) for the projected mesh ``uv`` (V, 2) pixels, ``z`` (V,) camera depths;
    without ``want_depth`` only ``coverage`` (the z-buffer costs about as much as the coverage)."""
    Ws, Hs = width * s, height * s
    mask = np.zeros((Hs, Ws), np.uint8)
    x_lo, y_lo, x_hi, y_hi = Ws, Hs, -1, -1
    inv_z = np.zeros((height, width))  # z-buffer on 1/z: larger is nearer
    spans = np.empty((max(Hs, height) + 2, 3), np.int64)
    for f in range(faces.shape[0]):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        z0, z1, z2 = z[i0], z[i1], z[i2]
        if not (z0 > near and z1 > near and z2 > near):
            continue
        u0, v0, u1, v1, u2, v2 = uv[i0, 0], uv[i0, 1], uv[i1, 0], uv[i1, 1], uv[i2, 0], uv[i2, 1]
        area2 = (u1 - u0) * (v2 - v0) - (u2 - u0) * (v1 - v0)
        if not math.isfinite(area2) or area2 == 0.0:
            continue
        if max(u0, u1, u2) < -1.0 or max(v0, v1, v2) < -1.0 or min(u0, u1, u2) > width or min(v0, v1, v2) > height:
            continue
        # coverage: sub-pixel centres, in sub-pixel units (centres at integers); the union of
        # the triangles in ``mask``, counted per pixel at the end
        n = _fill_spans((u0 + 0.5) * s - 0.5, (v0 + 0.5) * s - 0.5, (u1 + 0.5) * s - 0.5, (v1 + 0.5) * s - 0.5,
                        (u2 + 0.5) * s - 0.5, (v2 + 0.5) * s - 0.5, Ws, Hs, spans, 0)
        if n > 0:
            y_lo, y_hi = min(y_lo, spans[0, 0]), max(y_hi, spans[n - 1, 0])
        for k in range(n):
            ys, xa, xb = spans[k, 0], spans[k, 1], spans[k, 2]
            for xs in range(xa, xb + 1):  # a loop, not a slice: no view per span
                mask[ys, xs] = 1
            x_lo, x_hi = min(x_lo, xa), max(x_hi, xb)
        if not want_depth:
            continue
        # face and depth at pixel centres; 1/z is affine on screen: iz = w0 + a (x - u0) + b (y - v0)
        w0, w1, w2 = 1.0 / z0, 1.0 / z1, 1.0 / z2
        a = ((v2 - v0) * (w1 - w0) - (v1 - v0) * (w2 - w0)) / area2
        b = ((u1 - u0) * (w2 - w0) - (u2 - u0) * (w1 - w0)) / area2
        n = _fill_spans(u0, v0, u1, v1, u2, v2, width, height, spans, 0)
        for k in range(n):
            yp, xa, xb = spans[k, 0], spans[k, 1], spans[k, 2]
            row = w0 + b * (yp - v0) - a * u0
            for xp in range(xa, xb + 1):
                iz = row + a * xp
                if iz > inv_z[yp, xp]:
                    inv_z[yp, xp] = iz
                    face[yp, xp] = f
    inv = 1.0 / (s * s)
    if x_hi >= 0:
        for y in range(y_lo // s, y_hi // s + 1):
            for x in range(x_lo // s, x_hi // s + 1):
                c = 0
                for dy in range(y * s, y * s + s):
                    for dx in range(x * s, x * s + s):
                        c += mask[dy, dx]
                coverage[y, x] = c * inv
    for y in range(height):
        for x in range(width):
            if inv_z[y, x] > 0.0:
                depth[y, x] = 1.0 / inv_z[y, x]


def rasterize(vertices: np.ndarray, faces: np.ndarray, T_cam_obj: np.ndarray, K: np.ndarray,
              width: int, height: int, supersample: int = 4, want_depth: bool = True,
              near: float = 1e-3) -> Raster:
    """:func:`xwing.infer.refine.raster.rasterize`, compiled (same arguments and result)."""
    X = transform_points(T_cam_obj, vertices)  # (V, 3) camera frame
    z = np.ascontiguousarray(X[:, 2])
    uv = np.ascontiguousarray(project_camera_points(X, K))  # nan behind the camera, whose faces are skipped
    coverage = np.zeros((height, width), np.float32)
    face = np.full((height, width), -1, np.int32)
    depth = np.full((height, width), np.inf, np.float32)
    _raster_kernel(uv, z, np.ascontiguousarray(faces, np.int64), int(width), int(height), int(supersample),
                   float(near), bool(want_depth), coverage, face, depth)
    return Raster(coverage, face if want_depth else None, depth if want_depth else None)


# --- colour unmixing ------------------------------------------------------------------------


@nb.njit(**_NJIT)
def _unmix_sums(I, inside, outside):
    """Two (h, w, 4) float32 images for the box filter, [inside, I * inside (3)] and
    [outside, I * outside (3)], and the whole-crop means of ship and background colour (3,) each."""
    h, w = inside.shape
    Si = np.empty((h, w, 4), np.float32)
    So = np.empty((h, w, 4), np.float32)
    c_all, b_all = np.zeros(3), np.zeros(3)
    n_in, n_out = 0.0, 0.0
    for y in range(h):
        for x in range(w):
            a, b = float(inside[y, x]), float(outside[y, x])
            Si[y, x, 0], So[y, x, 0] = a, b
            n_in += a
            n_out += b
            for ch in range(3):
                v = I[y, x, ch]
                Si[y, x, 1 + ch] = v * a
                So[y, x, 1 + ch] = v * b
                c_all[ch] += v * a
                b_all[ch] += v * b
    for ch in range(3):
        c_all[ch] /= max(n_in, 1.0)
        b_all[ch] /= max(n_out, 1.0)
    return Si, So, c_all, b_all


@nb.njit(**_NJIT)
def _unmix_finish(I, Bi, Bo, c_all, b_all, min_support):
    """alpha, conf (h, w) float32 from the box sums ``Bi``, ``Bo`` (h, w, 4) of :func:`_unmix_sums`."""
    h, w = I.shape[:2]
    alpha = np.empty((h, w), np.float32)
    conf = np.empty((h, w), np.float32)
    c, b = np.empty(3), np.empty(3)
    for y in range(h):
        for x in range(w):
            si, so = Bi[y, x, 0], Bo[y, x, 0]
            for ch in range(3):
                c[ch] = Bi[y, x, 1 + ch] / si if si > min_support else c_all[ch]
                b[ch] = Bo[y, x, 1 + ch] / so if so > min_support else b_all[ch]
            dd, num = 0.0, 0.0
            for ch in range(3):
                d = c[ch] - b[ch]
                dd += d * d
                num += (I[y, x, ch] - b[ch]) * d
            a = num / dd if dd > 0.0 else 0.0
            alpha[y, x] = min(max(a, 0.0), 1.0)
            conf[y, x] = dd / (dd + 0.01)
    return alpha, conf


def image_alpha(I: np.ndarray, M: np.ndarray, window: int, margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`xwing.infer.refine.align._image_alpha`, compiled: the eight box sums in two
    4-channel box filters and two fused passes instead of a dozen full-image numpy operations."""
    import cv2

    inside = (M > 0.99).astype(np.uint8)
    outside = (M < 0.01).astype(np.uint8)
    if margin > 0:
        kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
        inside, outside = cv2.erode(inside, kernel), cv2.erode(outside, kernel)
    Si, So, c_all, b_all = _unmix_sums(np.ascontiguousarray(I, np.float32), inside, outside)
    # two 4-channel filters: OpenCV's vector path takes 4 channels, about twice as fast as 8
    Bi, Bo = (cv2.boxFilter(S, -1, (window, window), normalize=False, borderType=cv2.BORDER_REFLECT) for S in (Si, So))
    # The reference's test is support > 1e-3 on the normalised box mean.
    return _unmix_finish(I, Bi, Bo, c_all, b_all, 1e-3 * window * window)


# --- the coverage Jacobian ------------------------------------------------------------------


@nb.njit(**_NJIT)
def _point_jacobian(X, Y, Z, fx, sk, fy, out_u, out_v):
    """d(u, v)/d(xi) (6,) each of camera point (X, Y, Z): :func:`xwing.geometry.projection.projection_jacobian`
    for one point, written out for the compiled loop (a test holds the two equal)."""
    iz = 1.0 / Z
    a, b, c = fx * iz, sk * iz, -(fx * X + sk * Y) * iz * iz
    out_u[0], out_u[1], out_u[2] = a, b, c
    out_u[3], out_u[4], out_u[5] = Y * c - Z * b, Z * a - X * c, X * b - Y * a
    b, c = fy * iz, -fy * Y * iz * iz
    out_v[0], out_v[1], out_v[2] = 0.0, b, c
    out_v[3], out_v[4], out_v[5] = Y * c - Z * b, -X * c, X * b


@nb.njit(**_NJIT)
def _jacobian_kernel(M, depth, fx, sk, fy, cx, cy, J):
    """d(coverage)/d(xi) into ``J`` (h, w, 6) float32 (zeros on entry): at pixels where the
    coverage changes (np.gradient's differences), minus the coverage gradient times the
    image motion of the 3D point seen there (depth: the minimum over a 7 x 7 window, for
    edge pixels just outside the silhouette)."""
    h, w = M.shape
    ju, jv = np.empty(6), np.empty(6)
    for y in range(h):
        for x in range(w):
            if w == 1:
                gx = 0.0
            elif x == 0:
                gx = float(M[y, 1]) - float(M[y, 0])
            elif x == w - 1:
                gx = float(M[y, w - 1]) - float(M[y, w - 2])
            else:
                gx = (float(M[y, x + 1]) - float(M[y, x - 1])) / 2.0
            if h == 1:
                gy = 0.0
            elif y == 0:
                gy = float(M[1, x]) - float(M[0, x])
            elif y == h - 1:
                gy = float(M[h - 1, x]) - float(M[h - 2, x])
            else:
                gy = (float(M[y + 1, x]) - float(M[y - 1, x])) / 2.0
            if gx == 0.0 and gy == 0.0:
                continue
            z = np.inf
            for yy in range(max(0, y - 3), min(h, y + 4)):
                for xx in range(max(0, x - 3), min(w, x + 4)):
                    z = min(z, float(depth[yy, xx]))
            if not math.isfinite(z):
                continue
            _point_jacobian((x - cx) / fx * z, (y - cy) / fy * z, z, fx, sk, fy, ju, jv)
            for i in range(6):
                J[y, x, i] = -(gx * ju[i] + gy * jv[i])


def pixel_jacobian(M: np.ndarray, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """d(coverage)/d(xi) as (H, W, 6) float32 (channels last, for one 6-channel blur):
    :func:`xwing.infer.refine.align._pixel_jacobian`, compiled."""
    J = np.zeros(M.shape + (6,), np.float32)
    _jacobian_kernel(M, depth, float(K[0, 0]), float(K[0, 1]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), J)
    return J


# --- the normal equations -------------------------------------------------------------------


@nb.njit(**_NJIT)
def normal_equations(Ms, As, J, conf, band, huber):
    """Gauss-Newton system of ``sum_band w (Ms - As)^2`` with Huber weights times ``conf``:
    (Ms, As, conf (h, w) float32, J (h, w, 6), band (h, w) bool) -> H (6, 6), g (6,), cost."""
    H = np.zeros((6, 6))
    g = np.zeros(6)
    cost = 0.0
    h, w = Ms.shape
    for y in range(h):
        for x in range(w):
            if not band[y, x]:
                continue
            r = float(Ms[y, x]) - float(As[y, x])
            a = abs(r)
            wt = float(conf[y, x]) * (1.0 if a <= huber else huber / max(a, 1e-12))
            if wt == 0.0:
                continue
            cost += wt * r * r
            for i in range(6):
                ji = float(J[y, x, i]) * wt
                g[i] += ji * r
                for k in range(i, 6):
                    H[i, k] += ji * float(J[y, x, k])
    for i in range(6):
        for k in range(i):
            H[i, k] = H[k, i]
    return H, g, cost
