"""Occluders: rocks and debris drawn in front of the ship (optional, off in the test set)."""

from __future__ import annotations

import numpy as np


def add_occluders(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, ship_box_px: np.ndarray,
                  max_count: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Draw 1..max_count irregular shaded rocks overlapping the ship's image box.

    Args:
        img: (H, W, 3) uint8 RGB (not modified).
        mask: (H, W) float32 ship coverage (not modified).
        ship_box_px: (2, 2) [[u_min, v_min], [u_max, v_max]] of the ship.

    Returns:
        The image with rocks, and the ship's *visible* coverage (hidden parts removed).
    """
    import cv2

    H, W = mask.shape
    lo, hi = np.asarray(ship_box_px, dtype=np.float64)
    size = float(max(np.max(hi - lo), 4.0))
    rock_mask = np.zeros((H, W), np.float32)
    out = img.astype(np.float32)
    for _ in range(int(rng.integers(1, max_count + 1))):
        c = lo + (hi - lo) * rng.uniform(-0.1, 1.1, 2)
        r = size * rng.uniform(0.12, 0.4)
        n = int(rng.integers(7, 14))
        a = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = r * rng.uniform(0.65, 1.0, n)
        pts = np.stack([c[0] + rad * np.cos(a), c[1] + rad * np.sin(a)], 1)
        one = np.zeros((H, W), np.float32)
        cv2.fillPoly(one, [np.round(pts * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
        # Shade the rock with a linear ramp (lit side) over a dark brown-grey albedo.
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        d = rng.normal(size=2)
        d /= np.linalg.norm(d)
        ramp = np.clip(0.5 + ((xx - c[0]) * d[0] + (yy - c[1]) * d[1]) / (2 * r), 0.1, 1.0)
        albedo = np.array([0.35, 0.31, 0.27]) * rng.uniform(0.4, 1.1) * 255
        rock = ramp[..., None] * albedo[None, None].astype(np.float32)
        out = out * (1 - one[..., None]) + rock * one[..., None]
        rock_mask = np.maximum(rock_mask, one)
    visible = mask * (1.0 - rock_mask)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), visible.astype(np.float32)
