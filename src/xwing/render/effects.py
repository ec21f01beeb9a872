"""Sensor effects on RGB uint8 images: defocus blur, motion blur, noise, JPEG.

All functions take and return (H, W, 3) uint8 RGB arrays and are deterministic
given their arguments (noise takes a ``numpy.random.Generator``).
:class:`SensorParams` is one draw of all of them; :func:`apply_sensor` applies
it in the camera's order (optics, motion, then sensor noise); the JPEG step
is separate because a dataset writer encodes once at that quality instead of
compressing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SensorParams:
    """One draw of sensor effects (0 = off).

    Attributes:
        blur_sigma_px: Gaussian defocus blur.
        motion_px: length of a linear motion-blur streak.
        motion_angle_deg: its direction (0 = along +u, image right).
        noise_sigma: Gaussian noise standard deviation in 8-bit levels.
        jpeg_quality: JPEG quality the image is stored at (100 = no JPEG step).
    """

    blur_sigma_px: float = 0.0
    motion_px: float = 0.0
    motion_angle_deg: float = 0.0
    noise_sigma: float = 0.0
    jpeg_quality: int = 95


def gaussian_blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    import cv2

    if sigma_px <= 0.05:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigmaX=float(sigma_px), sigmaY=float(sigma_px))


def motion_kernel(length_px: float, angle_deg: float) -> np.ndarray:
    """(k, k) float32 normalised line kernel of ``length_px`` at ``angle_deg``, centred."""
    import cv2

    k = int(np.ceil(length_px)) | 1  # odd size keeps the streak centred: labels stay put
    kernel = np.zeros((k * 8, k * 8), np.float32)
    c = (k * 8 - 1) / 2.0
    dx, dy = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    h = length_px * 8 / 2.0
    cv2.line(kernel, (round((c - h * dx) * 16), round((c - h * dy) * 16)),
             (round((c + h * dx) * 16), round((c + h * dy) * 16)), 1.0, 8, cv2.LINE_AA, 4)
    kernel = cv2.resize(kernel, (k, k), interpolation=cv2.INTER_AREA)
    return kernel / max(float(kernel.sum()), 1e-12)


def motion_blur(img: np.ndarray, length_px: float, angle_deg: float) -> np.ndarray:
    import cv2

    if length_px < 1.0:
        return img
    return cv2.filter2D(img, -1, motion_kernel(length_px, angle_deg), borderType=cv2.BORDER_REFLECT)


class NoiseBank:
    """A pre-drawn tile of Gaussian noise; each image takes a random window of it.

    Drawing fresh noise for a 256 x 256 RGB image costs ~0.7 ms; a window of a
    1024 x 1024 tile (random offset and flips, 70 % luminance shared by the
    channels + 30 % chroma by variance, like a colour sensor) costs ~0.15 ms and is not
    memorisable in practice.
    """

    UNIT = 32.0  # int16 levels per standard deviation

    def __init__(self, seed: int = 0, side: int = 1024):
        rng = np.random.default_rng([int(seed), 0x5E])
        # Variance shares 70 % / 30 %: unit standard deviation per channel overall.
        lum = rng.standard_normal((side, side, 1), dtype=np.float32) * np.float32(np.sqrt(0.7))
        chroma = rng.standard_normal((side, side, 3), dtype=np.float32) * np.float32(np.sqrt(0.3))
        self.tile = np.round((lum + chroma) * self.UNIT).astype(np.int16)  # (side, side, 3)

    def add(self, img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
        """``img`` (H, W, 3) uint8 plus noise of ``sigma`` 8-bit levels, saturated."""
        import cv2

        if sigma <= 0.05:
            return img
        h, w = img.shape[:2]
        side = self.tile.shape[0]
        tile = self.tile
        if h > side or w > side:  # large frames: repeat the tile
            tile = np.tile(tile, (h // side + 1, w // side + 1, 1))
        y, x = int(rng.integers(0, tile.shape[0] - h + 1)), int(rng.integers(0, tile.shape[1] - w + 1))
        window = tile[y:y + h, x:x + w]
        if rng.random() < 0.5:
            window = window[::-1]
        return cv2.addWeighted(img, 1.0, np.ascontiguousarray(window), float(sigma) / self.UNIT, 0.0,
                               dtype=cv2.CV_8U)


_NOISE_BANKS: dict[int, NoiseBank] = {}


def add_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise (sigma in 8-bit levels), saturating; see :class:`NoiseBank`."""
    if sigma <= 0.05:
        return img
    if 0 not in _NOISE_BANKS:
        _NOISE_BANKS[0] = NoiseBank(0)
    return _NOISE_BANKS[0].add(img, sigma, rng)


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """Compress and decompress (RGB in, RGB out); quality >= 100 returns ``img``."""
    import cv2

    if quality >= 100:
        return img
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def apply_sensor(img: np.ndarray, params: SensorParams, rng: np.random.Generator) -> np.ndarray:
    """Blur, motion blur, then noise (not JPEG: see :func:`jpeg_roundtrip`)."""
    img = gaussian_blur(img, params.blur_sigma_px)
    img = motion_blur(img, params.motion_px, params.motion_angle_deg)
    return add_noise(img, params.noise_sigma, rng)
