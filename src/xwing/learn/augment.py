"""Label-exact augmentation for keypoint training, (the point sets live in :mod:`xwing.model.keypoints`).

Numpy/OpenCV only. A sample is an RGB image (H, W, 3) uint8, keypoints ``uv``
(K, 2) (pixel centres at integers, may lie outside the image), intrinsics ``K``
(3, 3) and the pose ``T_cam_obj`` (4, 4). Every transform returns all four,
consistent with each other:

* **horizontal flip** = the mirror image of the scene: the camera frame's x
  flips, the ship is mirror-symmetric in its own x, so the new pose is
  ``M T M`` (``M = diag(-1, 1, 1, 1)``) and keypoint ``i`` takes the place of its
  mirror partner (``PointSet.mirror_perm``). Exact with the same ``K`` only when
  the principal point is at the image centre (``cx = (W - 1) / 2``): checked.
* **90-degree rotation** = a camera roll: ``T' = R_z T`` and every keypoint keeps
  its identity. Exact with the same ``K`` only for square images with
  ``fx = fy`` and the principal point at the centre: checked, else skipped.
* **scale / translate** (similarity ``uv' = s uv + t``) changes ``K`` to
  ``S K`` and keeps the pose; it pushes keypoints out of the frame.
* colour, blur, noise: pixels only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xwing.model.points import PointSet

#: Mirror (x -> -x) of the camera frame and of the model frame.
_M = np.diag([-1.0, 1.0, 1.0, 1.0])
#: np.rot90 (counter-clockwise on screen) as a roll of the OpenCV camera:
#: (x, y, z) -> (y, -x, z) for a square image with a centred principal point.
_ROT90 = np.array([[0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


# --- geometric checks -----------------------------------------------------------------------


def centred_principal_point(K: np.ndarray, width: int, height: int, tol: float = 1e-3) -> bool:
    return abs(K[0, 2] - (width - 1) / 2.0) < tol and abs(K[1, 2] - (height - 1) / 2.0) < tol and abs(K[0, 1]) < tol


def hflip_exact(K: np.ndarray, width: int, height: int) -> bool:
    """A horizontal flip keeps ``K`` exactly when the principal point is centred."""
    return centred_principal_point(K, width, height)


def rot90_exact(K: np.ndarray, width: int, height: int) -> bool:
    """A 90-degree rotation keeps ``K`` exactly for square images, fx = fy, centred."""
    return width == height and abs(K[0, 0] - K[1, 1]) < 1e-6 * K[0, 0] and centred_principal_point(K, width, height)


# --- geometric transforms -----------------------------------------------------------------


def hflip(image, uv, K, T_cam_obj, mirror_perm):
    """Mirror the scene left/right. Returns (image, uv, K, T_cam_obj); see module doc."""
    w = image.shape[1]
    img = np.ascontiguousarray(image[:, ::-1])
    uv = np.asarray(uv, np.float64)
    uv_new = uv[mirror_perm].copy()  # point i now sits where its mirror partner was seen
    uv_new[:, 0] = (w - 1) - uv_new[:, 0]
    return img, uv_new, K.copy(), _M @ T_cam_obj @ _M


def rot90(image, uv, K, T_cam_obj, k: int = 1):
    """Rotate the image by k x 90 degrees counter-clockwise (np.rot90): a camera roll."""
    img, uv = image, np.asarray(uv, np.float64).copy()
    T = np.asarray(T_cam_obj, np.float64).copy()
    for _ in range(k % 4):
        w = img.shape[1]
        img = np.ascontiguousarray(np.rot90(img))
        uv = np.stack([uv[:, 1], (w - 1) - uv[:, 0]], axis=1)
        T = _ROT90 @ T
    return img, uv, K.copy(), T


def similarity(image, uv, K, scale: float, tx: float, ty: float, out_size: tuple[int, int] | None = None,
               border_value=0):
    """Warp by ``uv' = scale uv + (tx, ty)``. Returns (image, uv, K); the pose is unchanged."""
    import cv2

    h, w = image.shape[:2]
    ow, oh = out_size or (w, h)
    A = np.array([[scale, 0.0, tx], [0.0, scale, ty]])
    img = cv2.warpAffine(image, A, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=border_value)
    S = np.array([[scale, 0.0, tx], [0.0, scale, ty], [0.0, 0.0, 1.0]])
    return img, np.asarray(uv, np.float64) * scale + [tx, ty], S @ K


# --- photometric ------------------------------------------------------------------------------


def photometric(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Colour jitter (brightness, contrast, saturation, per-channel gain), blur, noise."""
    import cv2

    img = image.astype(np.float32)
    if rng.random() < 0.8 * strength:
        gain = 1.0 + strength * rng.uniform(-0.1, 0.1, 3)  # white balance
        bright = strength * rng.uniform(-25, 25)
        contrast = 1.0 + strength * rng.uniform(-0.3, 0.3)
        mean = img.mean()
        img = (img - mean) * contrast + mean + bright
        img *= gain
        sat = 1.0 + strength * rng.uniform(-0.4, 0.4)
        grey = img.mean(axis=2, keepdims=True)
        img = grey + (img - grey) * sat
    if rng.random() < 0.3 * strength:
        sigma = rng.uniform(0.3, 1.2)
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma)
    if rng.random() < 0.5 * strength:
        img += rng.normal(0.0, rng.uniform(1.0, 6.0), img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of :func:`augment`."""

    hflip: float = 0.5
    rot90: float = 0.0  # the rendered data already covers all camera rolls
    scale: tuple[float, float] = (0.85, 1.15)
    translate: float = 0.08  # of the image side
    photometric: float = 1.0
    seed_style: bool = False  # the seed: flips and rotations WITHOUT swapping labels or poses


def augment(image, uv, K, T_cam_obj, pts: PointSet, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()):
    """Random label-exact augmentation -> (image, uv, K, T_cam_obj)."""
    h, w = image.shape[:2]
    K = np.asarray(K, np.float64)
    if cfg.seed_style:
        # The seed's augmentation, reproduced on purpose: the image flips, the labels do
        # flip their coordinates but keep their identities (wrong), the pose is left as is.
        if rng.random() < 0.5:
            image = np.ascontiguousarray(image[:, ::-1])
            uv = np.stack([(w - 1) - uv[:, 0], uv[:, 1]], axis=1)
        if rng.random() < 0.5:
            image = np.ascontiguousarray(image[::-1])
            uv = np.stack([uv[:, 0], (h - 1) - uv[:, 1]], axis=1)
        if rng.random() < 0.5 and h == w:
            image, uv, _, _ = rot90(image, uv, K, T_cam_obj, 1)
        if rng.random() < 0.5:
            import cv2

            k = int(rng.choice([3, 5]))
            image = cv2.GaussianBlur(image, (k, k), 0)
        return image, uv, K, T_cam_obj
    if cfg.hflip and rng.random() < cfg.hflip and hflip_exact(K, w, h):
        image, uv, K, T_cam_obj = hflip(image, uv, K, T_cam_obj, pts.mirror_perm)
    if cfg.rot90 and rng.random() < cfg.rot90 and rot90_exact(K, w, h):
        image, uv, K, T_cam_obj = rot90(image, uv, K, T_cam_obj, int(rng.integers(1, 4)))
    s = float(np.exp(rng.uniform(np.log(cfg.scale[0]), np.log(cfg.scale[1]))))
    t = rng.uniform(-cfg.translate, cfg.translate, 2) * np.array([w, h])
    if abs(s - 1) > 1e-3 or np.any(np.abs(t) > 1e-3):
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0  # scale about the image centre
        image, uv, K = similarity(image, uv, K, s, cx - s * cx + t[0], cy - s * cy + t[1])
    if cfg.photometric:
        image = photometric(image, rng, cfg.photometric)
    return image, uv, K, T_cam_obj
