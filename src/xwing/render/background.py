"""Backgrounds: procedural star fields and nebulae like the seed's, or the user's images.

Making a nebula costs tens of milliseconds, so each process builds a small
:class:`BackgroundBank` once (deterministically from a seed) and every sample
takes a random window of a random bank image, flipped/rotated and tinted:
about 0.1 ms per sample, and still thousands of distinct backgrounds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xwing.errors import XwingError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

#: Nebula colours (sRGB, 0..1): the seed's images are deep blue with violet and cyan clouds.
NEBULA_COLORS = np.array([
    (0.10, 0.20, 0.95), (0.38, 0.18, 0.90), (0.62, 0.25, 0.75), (0.18, 0.60, 0.95),
    (0.22, 0.38, 1.00), (0.75, 0.30, 0.55), (0.15, 0.55, 0.60),
])


def fbm(rng: np.random.Generator, width: int, height: int, base_cells: int = 3, octaves: int = 6,
        persistence: float = 0.55) -> np.ndarray:
    """(H, W) float32 fractal noise in [0, 1]: random grids upsampled (cubic) and summed."""
    import cv2

    out = np.zeros((height, width), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = base_cells * 2 ** o
        gh, gw = max(2, round(cells * height / max(width, height))), max(2, round(cells * width / max(width, height)))
        grid = rng.random((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= persistence
    out /= total
    lo, hi = np.percentile(out[::4, ::4], (1, 99))  # a subsample is plenty for the contrast stretch
    return np.clip((out - lo) / max(hi - lo, 1e-6), 0, 1)


def star_field(rng: np.random.Generator, width: int, height: int, density: float = 0.004) -> np.ndarray:
    """(H, W, 3) float32 linear-ish star light: many faint points, few bright ones with glow."""
    import cv2

    n = rng.poisson(density * width * height)
    img = np.zeros((height, width, 3), np.float32)
    x, y = rng.integers(0, width, n), rng.integers(0, height, n)
    b = (rng.pareto(2.2, n) + 1.0) * 0.10  # heavy tail: a few bright stars
    tint = np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.12, (n, 3)) * np.array([1.0, 0.4, 1.0])
    np.add.at(img, (y, x), (b[:, None] * tint).astype(np.float32))
    img = cv2.GaussianBlur(img, (0, 0), 0.55)
    bright = np.where(b > 0.5)[0]
    if len(bright):
        glow = np.zeros_like(img)
        np.add.at(glow, (y[bright], x[bright]), (b[bright, None] * tint[bright] * 0.6).astype(np.float32))
        img += cv2.GaussianBlur(glow, (0, 0), 2.0) * 6.0
    return img * 2.5


def procedural_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB: deep blue space, nebula clouds with grainy detail and dust
    lanes, stars, like the seed's images. About 15 % are plain star fields."""
    base = np.array([0.004, 0.010, 0.11]) * rng.uniform(0.4, 1.5)
    img = np.broadcast_to(base.astype(np.float32), (height, width, 3)).copy()
    if rng.random() > 0.15:
        density = fbm(rng, width, height, base_cells=int(rng.integers(2, 5)), octaves=7, persistence=0.6)
        grain = fbm(rng, width, height, base_cells=24, octaves=3, persistence=0.7)
        mix = fbm(rng, width, height, base_cells=2, octaves=4)
        dust = fbm(rng, width, height, base_cells=int(rng.integers(3, 7)), octaves=6, persistence=0.6)
        # Mostly blue and violet, as in the seed's images; other hues now and then.
        p = np.array([4, 3, 1, 2, 4, 1, 1], dtype=np.float64)
        c1, c2, c3 = NEBULA_COLORS[rng.choice(len(NEBULA_COLORS), 3, replace=False, p=p / p.sum())].astype(
            np.float32)
        d = density * (0.55 + 0.45 * grain)  # (H, W) float32 throughout: this runs at start-up
        strength = np.float32(rng.uniform(0.5, 1.3))
        body = d ** np.float32(rng.uniform(1.3, 2.4)) * strength
        knots = np.clip(d - 0.7, 0, 1) * (2.5 * strength)  # bright knots
        shade = np.clip(1.0 - 2.4 * np.clip(dust - 0.5, 0, 1), 0.08, 1.0)
        body *= shade
        knots *= shade
        # colour = c1 (1 - mix) + c2 mix, per channel
        for ch in range(3):
            img[..., ch] += body * (c1[ch] + (c2[ch] - c1[ch]) * mix) + knots * c3[ch]
    img += star_field(rng, width, height, density=rng.uniform(0.002, 0.01))
    img = np.clip(img, 0, 1) ** np.float32(1 / 1.1)
    return (img * 255 + 0.5).astype(np.uint8)


def list_images(directory: str | Path) -> list[Path]:
    """Image files directly in ``directory`` (sorted); XwingError when there are none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise XwingError("background directory not found", directory)
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise XwingError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the background directory", directory)
    return files


class BackgroundBank:
    """Pre-made backgrounds; :meth:`sample` cuts a random tinted window of any size.

    Args:
        width, height: the largest window that will be asked for.
        seed: makes the bank (every process with the same seed has the same bank).
        n: bank images.
        directory: use the images in this directory instead of procedural ones
            (up to ``n`` of them, chosen by ``seed``, scaled to cover the bank size).
        margin: bank images are ``margin`` times the largest window, so windows vary.
    """

    def __init__(self, width: int, height: int, seed: int = 0, n: int = 12, directory: str | Path | None = None,
                 margin: float = 1.5):
        import cv2

        self.width, self.height = int(width), int(height)
        bw, bh = int(np.ceil(self.width * margin)), int(np.ceil(self.height * margin))
        side = max(bw, bh)  # square bank images allow 90-degree turns of any window
        rng = np.random.default_rng([int(seed), 0xB6])
        self.images: list[np.ndarray] = []
        if directory is not None:
            files = list_images(directory)
            picks = rng.permutation(len(files))[:n]
            for i in sorted(picks):
                img = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
                if img is None:
                    raise XwingError("unreadable background image", files[i])
                h, w = img.shape[:2]
                s = side / min(h, w)
                img = cv2.resize(img, (max(side, round(w * s)), max(side, round(h * s))), interpolation=cv2.INTER_AREA)
                self.images.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            self.source = str(directory)
        else:
            for _ in range(n):
                self.images.append(procedural_background(rng, side, side))
            self.source = "procedural"

    def sample(self, rng: np.random.Generator, width: int | None = None, height: int | None = None) -> np.ndarray:
        """(height, width, 3) uint8 RGB window: random image, position, flips,
        quarter turn, brightness (0.55-1.35), per-channel tint (+-12 %) and gamma."""
        import cv2

        w, h = int(width or self.width), int(height or self.height)
        img = self.images[int(rng.integers(len(self.images)))]
        turn = int(rng.integers(4))
        if turn % 2:
            w, h = h, w  # cut the transposed window, then turn it
        H, W = img.shape[:2]
        if w > W or h > H:
            s = max(w / W, h / H)
            img = cv2.resize(img, (int(np.ceil(W * s)), int(np.ceil(H * s))), interpolation=cv2.INTER_LINEAR)
            H, W = img.shape[:2]
        x0, y0 = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
        win = img[y0:y0 + h, x0:x0 + w]
        if rng.random() < 0.5:
            win = win[:, ::-1]
        if turn:
            win = np.rot90(win, turn)
        gain = rng.uniform(0.55, 1.35) * (1 + rng.uniform(-0.12, 0.12, 3))
        gamma = rng.uniform(0.8, 1.25)
        x = np.arange(256, dtype=np.float64) / 255.0
        lut = np.clip(255.0 * (x[:, None] ** gamma) * gain[None, :] + 0.5, 0, 255).astype(np.uint8)  # (256, 3)
        return cv2.LUT(np.ascontiguousarray(win), lut.reshape(1, 256, 3))
