"""Drawing poses on images: box edges, axes, keypoints.

All functions draw in place on an RGB uint8 image (H, W, 3) and return it. Input
pixels use xwing's convention (centres at integers); OpenCV's sub-pixel drawing
(``shift`` bits) keeps lines where the numbers say, not rounded to the pixel.
"""

from __future__ import annotations

import numpy as np

from xwing.geometry.projection import project_points
from xwing.model.keypoints import BOX_EDGES

_SHIFT = 4  # 1/16 px drawing precision
GREEN, RED, BLUE, YELLOW, WHITE = (0, 255, 0), (255, 64, 64), (64, 128, 255), (255, 220, 0), (255, 255, 255)
#: one colour per box corner (RGB), reused by contact sheets and overlays
CORNER_COLORS = ((255, 64, 64), (255, 160, 0), (255, 255, 0), (0, 255, 0),
                 (0, 255, 255), (64, 128, 255), (200, 64, 255), (255, 255, 255))


def _fixed(p) -> tuple[int, int]:
    return int(round(float(p[0]) * (1 << _SHIFT))), int(round(float(p[1]) * (1 << _SHIFT)))


def _finite_and_near(p, img, limit: float = 1e4) -> bool:
    return bool(np.all(np.isfinite(p)) and np.all(np.abs(p) < limit + max(img.shape[:2])))


def draw_line(img: np.ndarray, p0, p1, color, thickness: int = 1) -> np.ndarray:
    """Anti-aliased line between sub-pixel points ``p0``, ``p1`` (2,); skipped if non-finite."""
    import cv2

    if _finite_and_near(p0, img) and _finite_and_near(p1, img):
        cv2.line(img, _fixed(p0), _fixed(p1), color, thickness, cv2.LINE_AA, _SHIFT)
    return img


def draw_box(img: np.ndarray, uv8: np.ndarray, color=GREEN, thickness: int = 1,
             corners: bool = True) -> np.ndarray:
    """The 12 edges of the box through corners ``uv8`` (8, 2) in the seed's order;
    with ``corners``, a coloured dot per corner (:data:`CORNER_COLORS`)."""
    import cv2

    uv8 = np.asarray(uv8, dtype=np.float64).reshape(8, 2)
    for a, b in BOX_EDGES:
        draw_line(img, uv8[a], uv8[b], color, thickness)
    if corners:
        for i, p in enumerate(uv8):
            if _finite_and_near(p, img):
                cv2.circle(img, _fixed(p), 2 << _SHIFT, CORNER_COLORS[i], -1, cv2.LINE_AA, _SHIFT)
    return img


def draw_axes(img: np.ndarray, T_cam_obj: np.ndarray, K: np.ndarray, length: float = 0.1,
              dist: np.ndarray | None = None, thickness: int = 2) -> np.ndarray:
    """The object frame's x (red), y (green), z (blue) axes of ``length`` model units."""
    pts = np.array([[0, 0, 0], [length, 0, 0], [0, length, 0], [0, 0, length]], dtype=np.float64)
    uv = project_points(pts, T_cam_obj, K, dist)  # (4, 2)
    for i, color in ((1, (255, 0, 0)), (2, (0, 255, 0)), (3, (0, 0, 255))):
        draw_line(img, uv[0], uv[i], color, thickness)
    return img


def draw_keypoints(img: np.ndarray, uv: np.ndarray, conf: np.ndarray | None = None, radius: float = 3.0,
                   min_conf: float = 0.0) -> np.ndarray:
    """Circles at keypoints ``uv`` (K, 2); colour by index, filled if ``conf`` >= 0.5."""
    import cv2

    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    for i, p in enumerate(uv):
        c = 1.0 if conf is None else float(conf[i])
        if c < min_conf or not _finite_and_near(p, img):
            continue
        cv2.circle(img, _fixed(p), int(radius * (1 << _SHIFT)), CORNER_COLORS[i % 8],
                   -1 if c >= 0.5 else 1, cv2.LINE_AA, _SHIFT)
    return img


def draw_label(img: np.ndarray, text: str, org=(4, 12), color=WHITE, scale: float = 0.35) -> np.ndarray:
    """Small text with a dark outline, readable on any background."""
    import cv2

    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
    return img


def contact_sheet(tiles: list[np.ndarray], columns: int = 8, pad: int = 2) -> np.ndarray:
    """Tile same-size RGB images (H, W, 3) into one grid image."""
    if not tiles:
        raise ValueError("no tiles")
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    cols = min(columns, len(tiles))
    sheet = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 32, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y:y + h, x:x + w] = tile[:h, :w]
    return sheet
