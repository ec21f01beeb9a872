"""Exact maps between image pixels and network-input pixels (crops, resizes, letterboxes).

Convention: pixel centres at integers on both sides. A :class:`CropMap` is the
similarity ``u_c = s u + tx``, ``v_c = s v + ty`` from image pixels to crop
pixels; the camera that sees the crop has ``K_crop = S @ K`` with
``S = [[s, 0, tx], [0, s, ty], [0, 0, 1]]``, so projecting with ``K_crop`` and
mapping with the crop give the same pixels. OpenCV's ``warpAffine`` uses the same
pixel-centre convention, so :meth:`CropMap.warp` is exact too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CropMap:
    """Image -> crop similarity (no rotation).

    Attributes:
        scale: crop pixels per image pixel.
        tx, ty: crop coordinates of image pixel (0, 0).
        width, height: crop size in pixels.
    """

    scale: float
    tx: float
    ty: float
    width: int
    height: int

    @property
    def A(self) -> np.ndarray:
        """(2, 3) affine matrix image -> crop, as ``cv2.warpAffine`` takes it."""
        return np.array([[self.scale, 0.0, self.tx], [0.0, self.scale, self.ty]])

    @property
    def S(self) -> np.ndarray:
        """(3, 3) homogeneous form of :attr:`A`."""
        return np.array([[self.scale, 0.0, self.tx], [0.0, self.scale, self.ty], [0.0, 0.0, 1.0]])

    def image_to_crop(self, uv: np.ndarray) -> np.ndarray:
        """Image pixels (N, 2) -> crop pixels (N, 2)."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        return uv * self.scale + np.array([self.tx, self.ty])

    def crop_to_image(self, uv: np.ndarray) -> np.ndarray:
        """Crop pixels (N, 2) -> image pixels (N, 2)."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        return (uv - np.array([self.tx, self.ty])) / self.scale

    def crop_K(self, K: np.ndarray) -> np.ndarray:
        """Intrinsics (3, 3) of the image camera -> intrinsics of the crop."""
        return self.S @ np.asarray(K, dtype=np.float64)

    def warp(self, image: np.ndarray, border_value=0) -> np.ndarray:
        """Cut the crop out of ``image`` (H, W[, C]) -> (height, width[, C]).

        Downscaling pre-smooths (Gaussian, sigma ~ 0.5 / scale px) so that small
        crops of large frames do not alias.
        """
        import cv2

        src = image
        if self.scale < 0.8:
            sigma = 0.5 / self.scale
            src = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)
        return cv2.warpAffine(src, self.A, (self.width, self.height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)


def crop_around(center_uv, extent_px: float, size: int | tuple[int, int]) -> CropMap:
    """A square-pixel crop of ``size`` (int or (width, height)) whose centre is image
    point ``center_uv`` (2,) and which spans ``extent_px`` image pixels across its
    larger side."""
    w, h = (size, size) if np.isscalar(size) else size
    s = max(w, h) / float(extent_px)
    cu, cv = float(center_uv[0]), float(center_uv[1])
    return CropMap(s, (w - 1) / 2.0 - s * cu, (h - 1) / 2.0 - s * cv, int(w), int(h))


def letterbox(width: int, height: int, size: int | tuple[int, int]) -> CropMap:
    """Fit a whole ``width`` x ``height`` image into ``size``, keeping aspect ratio,
    centred with padding (a plain resize when the aspect ratios agree)."""
    w, h = (size, size) if np.isscalar(size) else size
    s = min(w / width, h / height)
    # The image's outer edges [-0.5, W - 0.5] map into the centred box of side s W.
    tx = (w - s * width) / 2.0 + 0.5 * s - 0.5
    ty = (h - s * height) / 2.0 + 0.5 * s - 0.5
    return CropMap(s, tx, ty, int(w), int(h))


def crop_for_points(uv: np.ndarray, size: int | tuple[int, int], fill: float = 0.8,
                    min_extent_px: float = 16.0) -> CropMap:
    """A crop of ``size`` centred on the bounding box of points ``uv`` (N, 2), scaled so
    the box spans ``fill`` of the crop (never zooming below ``min_extent_px``)."""
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    uv = uv[np.isfinite(uv).all(axis=1)]
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    extent = max(float((hi - lo).max()) / fill, min_extent_px)
    return crop_around((lo + hi) / 2.0, extent, size)
