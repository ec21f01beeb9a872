"""The keypoint codec: keypoints <-> heatmaps, one object for training and inference.

Numpy only (no torch): the training data pipeline encodes with it and the ONNX
detector decodes with it, so both sides agree on every half pixel.

Dimension legend::

    B  batch            K  keypoints
    S  input side (H, W of the network input, multiples of the stride)
    Hc, Wc  canvas cells = H / stride + 2 margin, W / stride + 2 margin

Convention (pixel centres at integers, UDP-style alignment)
----------------------------------------------------------
Heatmap cell ``c`` (column, on the canvas) has its centre at input pixel
``u = stride * (c - margin) + (stride - 1) / 2``: cell ``margin`` covers input
pixels ``0 .. stride - 1`` and its centre is their mean. This map commutes
with a horizontal flip of the input (``u -> W - 1 - u`` is ``c -> Wc - 1 - c``),
so flipped images and flipped heatmaps agree exactly. The canvas reaches
``margin`` cells beyond every image edge: keypoints outside the image are
predicted where they are, never clamped.

Representation
--------------
The network outputs one map of *logits* per keypoint on the canvas; a spatial
softmax turns it into a distribution over the keypoint's position. The target
is a Gaussian at the exact sub-pixel position (peak 1 here; the loss
normalises it). Because the log of a Gaussian is a quadratic, a second-order
Taylor step on the logits around their argmax (DARK, Zhang et al., CVPR 2020,
applied to logits rather than to log of a blurred heatmap) recovers the centre
exactly for an ideal map. Per-keypoint confidence is the softmax mass within
``conf_radius`` cells of the peak, relative to what an ideal target map holds
there (1 for a sharp, single peak; low for diffuse or multi-modal maps).

The ``seed`` preset reproduces the seed's recipe: ``stride=1``, no margin,
``sigma`` 10 px, targets at truncated integer pixels, off-frame keypoints drawn
at the top-left corner, and integer argmax decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xwing.config import SavedConfig


@dataclass(frozen=True)
class HeatmapCodec(SavedConfig):
    """Keypoints <-> canvas heatmaps.

    Attributes:
        stride: input pixels per heatmap cell.
        margin: canvas cells beyond each image edge.
        sigma: target Gaussian's standard deviation, in cells.
        conf_radius: half-size (cells) of the window whose mass gives the confidence.
        decode_mode: ``"dark"`` (sub-pixel) or ``"argmax"`` (integer cell, the seed's).
        seed_targets: reproduce the seed's labels (truncate to integers; off-image
            keypoints at the top-left corner). Only for the ``seed`` preset.
    """

    stride: int = 4
    margin: int = 8
    sigma: float = 1.5
    conf_radius: int = 2
    decode_mode: str = "dark"
    seed_targets: bool = False

    # --- geometry ------------------------------------------------------------------------

    def canvas_shape(self, height: int, width: int) -> tuple[int, int]:
        """Input size (pixels) -> canvas size (Hc, Wc) in cells."""
        if height % self.stride or width % self.stride:
            raise ValueError(f"input {width} x {height} is not a multiple of the stride {self.stride}")
        return height // self.stride + 2 * self.margin, width // self.stride + 2 * self.margin

    def px_to_cell(self, uv: np.ndarray) -> np.ndarray:
        """Input pixels (..., 2) -> canvas cell coordinates (..., 2) (x, y)."""
        return (np.asarray(uv, dtype=np.float64) - (self.stride - 1) / 2.0) / self.stride + self.margin

    def cell_to_px(self, cell: np.ndarray) -> np.ndarray:
        """Canvas cell coordinates (..., 2) -> input pixels (..., 2)."""
        return (np.asarray(cell, dtype=np.float64) - self.margin) * self.stride + (self.stride - 1) / 2.0

    def on_canvas(self, uv: np.ndarray, height: int, width: int) -> np.ndarray:
        """(K,) bool: keypoints (K, 2) whose cell lies on the canvas (at least half a
        cell inside its border, so the Gaussian's centre is representable)."""
        hc, wc = self.canvas_shape(height, width)
        c = self.px_to_cell(uv)
        with np.errstate(invalid="ignore"):
            return (np.isfinite(c).all(axis=-1) & (c[..., 0] >= 0) & (c[..., 1] >= 0)
                    & (c[..., 0] <= wc - 1) & (c[..., 1] <= hc - 1))

    # --- encode ---------------------------------------------------------------------------

    def encode(self, uv: np.ndarray, height: int, width: int,
               valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints -> target heatmaps.

        Args:
            uv: (K, 2) keypoints in input pixels (may lie outside the image).
            height, width: input size.
            valid: (K,) bool, keypoints to supervise (default: all finite ones).

        Returns:
            heatmaps (K, Hc, Wc) float32, Gaussian peaks of height 1 (all zero for
            unsupervised keypoints), and weights (K,) float32 (1 where supervised and
            on the canvas, else 0).
        """
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        k = len(uv)
        valid = np.ones(k, bool) if valid is None else np.asarray(valid, bool).reshape(k)
        hc, wc = self.canvas_shape(height, width)
        if self.seed_targets:
            # The seed truncated its edge-convention coordinate (ours + 0.5) to an integer.
            cells = np.floor(uv + 0.5)
            inside = (cells[:, 0] >= 0) & (cells[:, 1] >= 0) & (cells[:, 0] < wc) & (cells[:, 1] < hc)
            cells = np.where(inside[:, None] & np.isfinite(cells), cells, 0.0)  # the seed's wrong label
            ok = valid.copy()
        else:
            cells = self.px_to_cell(uv)
            ok = valid & self.on_canvas(uv, height, width)
        xs = np.arange(wc, dtype=np.float64)
        ys = np.arange(hc, dtype=np.float64)
        heat = np.zeros((k, hc, wc), np.float32)
        for i in np.flatnonzero(ok):
            gx = np.exp(-0.5 * ((xs - cells[i, 0]) / self.sigma) ** 2)  # (Wc,) separable Gaussian
            gy = np.exp(-0.5 * ((ys - cells[i, 1]) / self.sigma) ** 2)  # (Hc,)
            heat[i] = np.outer(gy, gx)
        return heat, ok.astype(np.float32)

    # --- decode ---------------------------------------------------------------------------

    def decode(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Heatmap logits -> keypoints and confidences.

        Args:
            logits: (K, Hc, Wc) or (B, K, Hc, Wc) per-cell logits (log-probabilities
                up to a constant; for the seed preset, its raw heatmaps).

        Returns:
            uv (..., K, 2) float64 input pixels (may lie outside the image), and
            conf (..., K) in [0, 1].
        """
        logits = np.asarray(logits, dtype=np.float64)
        squeeze = logits.ndim == 3
        if squeeze:
            logits = logits[None]
        b, k, hc, wc = logits.shape
        flat = logits.reshape(b, k, hc * wc)
        idx = flat.argmax(axis=-1)  # (B, K)
        iy, ix = np.divmod(idx, wc)
        cell = np.stack([ix, iy], axis=-1).astype(np.float64)  # (B, K, 2)
        if self.decode_mode == "dark":
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                cell = cell + self._taylor_offset(logits, ix, iy)
        elif self.decode_mode != "argmax":
            raise ValueError(f"unknown decode_mode {self.decode_mode!r}")
        conf = self._confidence(flat, logits, ix, iy)
        # The seed read an argmax index as its own (edge-convention) coordinate: ours - 0.5.
        uv = cell - 0.5 if self.seed_targets else self.cell_to_px(cell)
        if squeeze:
            return uv[0], conf[0]
        return uv, conf

    def _taylor_offset(self, logits: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
        """Newton step ``-H^-1 g`` (B, K, 2) of the logits' quadratic, from the argmax.

        Finite differences on a 3x3 stencil (exact for a quadratic) centred on the
        argmax, or on the nearest interior cell when the peak touches the canvas
        border (the step is then taken from there). No step where the Hessian is not
        negative definite; steps are limited to one cell from the stencil's centre.
        """
        b, k, hc, wc = logits.shape
        off = np.zeros((b, k, 2))
        if hc < 3 or wc < 3:
            return off
        x = np.clip(ix, 1, wc - 2).reshape(-1)
        y = np.clip(iy, 1, hc - 2).reshape(-1)
        L = logits.reshape(b * k, hc, wc)
        n = np.arange(b * k)

        def at(dy, dx):
            return L[n, y + dy, x + dx]

        c = at(0, 0)
        gx = 0.5 * (at(0, 1) - at(0, -1))
        gy = 0.5 * (at(1, 0) - at(-1, 0))
        hxx = at(0, 1) - 2 * c + at(0, -1)
        hyy = at(1, 0) - 2 * c + at(-1, 0)
        hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
        det = hxx * hyy - hxy * hxy
        good = (hxx < 0) & (det > 1e-12) & np.isfinite(det)
        safe = np.where(good, det, 1.0)
        dx = -(hyy * gx - hxy * gy) / safe
        dy = -(-hxy * gx + hxx * gy) / safe
        step = np.clip(np.stack([dx, dy], axis=-1), -1.0, 1.0)  # (B*K, 2) from the stencil centre
        centre = np.stack([x, y], axis=-1).astype(np.float64)
        argmax = np.stack([ix.reshape(-1), iy.reshape(-1)], axis=-1).astype(np.float64)
        off = np.where(good[:, None], centre + step - argmax, 0.0)
        return off.reshape(b, k, 2)

    def _confidence(self, flat: np.ndarray, logits: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
        """Softmax mass near the peak over an ideal target's mass there, (B, K) in [0, 1]."""
        b, k, hc, wc = logits.shape
        if self.decode_mode == "argmax":  # raw (non-logit) heatmaps: the peak height, clipped
            return np.clip(flat.max(axis=-1), 0.0, 1.0)
        p = np.exp(flat - flat.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        p = p.reshape(b, k, hc, wc)
        r = self.conf_radius
        mass = np.zeros((b, k))
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                yy, xx = iy + dy, ix + dx
                ok = (yy >= 0) & (yy < hc) & (xx >= 0) & (xx < wc)
                bb, kk = np.nonzero(ok)
                mass[bb, kk] += p[bb, kk, yy[bb, kk], xx[bb, kk]]
        return np.clip(mass / self.ideal_mass(), 0.0, 1.0)

    def ideal_mass(self) -> float:
        """Share of a normalised target Gaussian (centred on a cell) within ``conf_radius``."""
        d = np.arange(-4 * int(np.ceil(self.sigma)) - self.conf_radius, 4 * int(np.ceil(self.sigma))
                      + self.conf_radius + 1)
        g = np.exp(-0.5 * (d / self.sigma) ** 2)
        inner = g[np.abs(d) <= self.conf_radius].sum()
        return float((inner / g.sum()) ** 2)


def sigmoid(x):
    """Numerically safe logistic function (numpy)."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


