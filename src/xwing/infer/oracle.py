"""An oracle keypoint detector: the true keypoints plus seeded noise and outliers.

It has the interface of :class:`xwing.infer.detector.OnnxDetector` (``points_3d``,
``input_size``, ``camera``, ``meta``, ``__call__(image) -> Detection``,
``batch``), but it ignores the pixels: it projects its model points with the
pose it was told (:meth:`OracleDetector.set_truth`) into the network input it
was told about (:meth:`OracleDetector.set_crop`, which the pipeline calls for
every detector that has it). So tests and benchmarks exercise the whole
inference path (crops, exact maps back, PnP, tracking, outputs) without a
trained network, on any frames (blank ones too), and the error of the result is
known exactly.

Noise model, all in network-input pixels (the unit a real network errs in, so a
zoomed crop gives proportionally smaller image-pixel errors):

* every keypoint gets isotropic Gaussian noise of ``noise_px`` per axis;
* with probability ``outlier_rate`` a keypoint is displaced by ``outlier_px``
  in a random direction, keeping a high confidence (the harmful case);
* keypoints farther than ``margin`` x input size outside the input are not
  seen: random position, confidence 0.05 (a network cannot place them);
* with probability ``flip_rate`` the keypoints come in the ship's roll-relabelled
  order (the near-symmetry of ``docs/seed-facts.md``) with ``flip`` = 0.5 (unsure), the true
  order in ``uv_alt``; otherwise ``uv_alt`` holds the roll-relabelled order;
* ``presence`` is 1 when at least ``min_visible`` of the points lie inside the
  input (grown by the margin) and in front of the camera, else 0, with all
  confidences low.
"""

from __future__ import annotations

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.camera import Camera, seed_camera
from xwing.geometry.crop import CropMap
from xwing.geometry.projection import project_points
from xwing.infer.detector import Detection, OnnxDetector
from xwing.model.keypoints import SEED_BOX_CORNERS
from xwing.model.symmetry import ROLL180_SIGNS, symmetry_permutation


class OracleDetector:
    """True keypoints + noise, with the detector interface.

    Args:
        points_3d: (K, 3) model points it "predicts" (default: the seed's 8 corners).
        input_size: default square input side (what ``OnnxDetector.input_size`` means).
        camera: the "training" camera (used by callers for videos of unknown calibration).
        noise_px: Gaussian sigma per axis, network-input pixels.
        outlier_rate: probability that a keypoint is a confident outlier.
        outlier_px: outlier displacement, input pixels.
        margin: share of the input side beyond its border where points are still seen.
        min_visible: share of points that must be seen for ``presence`` = 1.
        seed: seeds the noise; each call draws the next numbers.
        cost_model: a real detector run on every input and ignored, so that speed
            benchmarks pay the network's true cost while accuracy is the oracle's
            (spec option ``net=model.onnx``).
    """

    def __init__(self, points_3d: np.ndarray = SEED_BOX_CORNERS, input_size: int = 128,
                 camera: Camera | None = None, noise_px: float = 0.0, outlier_rate: float = 0.0,
                 outlier_px: float = 20.0, margin: float = 0.25, min_visible: float = 0.5, flip_rate: float = 0.0,
                 seed: int = 0, cost_model=None):
        self.points_3d = np.asarray(points_3d, dtype=np.float64).reshape(-1, 3)
        self.input_size = int(input_size)
        self.camera = camera if camera is not None else seed_camera()
        self.noise_px = float(noise_px)
        self.outlier_rate = float(outlier_rate)
        self.outlier_px = float(outlier_px)
        self.margin = float(margin)
        self.min_visible = float(min_visible)
        self.flip_rate = float(flip_rate)
        # The box is not exactly roll-symmetric (z -0.032 vs +0.034): match within 1 cm.
        self.roll_perm = symmetry_permutation(self.points_3d, ROLL180_SIGNS, tol=0.01)
        self.rng = np.random.default_rng(seed)
        self.cost_model = cost_model
        self.meta = {"kind": "oracle", "noise_px": self.noise_px, "outlier_rate": self.outlier_rate,
                     "outlier_px": self.outlier_px, "flip_rate": self.flip_rate,
                     "seed": seed, "input_size": self.input_size}
        self._T_cam_obj: np.ndarray | None = None
        self._image_camera: Camera | None = None
        self._crop: CropMap | None = None
        self.calls = 0

    @classmethod
    def from_spec(cls, spec: str, threads: int | None = None, **kwargs) -> OracleDetector:
        """``"oracle"`` or ``"oracle:noise=1,outliers=0.05,flips=0.1,seed=3,size=128,net=m.onnx"``
        -> detector (``net``: a real model whose cost each call pays, see ``cost_model``)."""
        names = {"noise": "noise_px", "outliers": "outlier_rate", "outlier_px": "outlier_px",
                 "seed": "seed", "size": "input_size", "margin": "margin", "flips": "flip_rate"}
        _, _, rest = spec.partition(":")
        for item in filter(None, rest.split(",")):
            key, _, value = item.partition("=")
            key = key.strip()
            if key == "net":
                kwargs["cost_model"] = OnnxDetector(value, threads=threads)
                continue
            if key not in names:
                raise XwingError(f"unknown oracle option '{key}' (want {', '.join(names)}, net)")
            try:
                kwargs[names[key]] = int(value) if names[key] in ("seed", "input_size") else float(value)
            except ValueError:
                raise XwingError(f"oracle option '{key}' needs a number, got '{value}'") from None
        return cls(**kwargs)

    # --- what the caller tells the oracle ------------------------------------------------

    def set_truth(self, T_cam_obj: np.ndarray | None, camera: Camera) -> None:
        """The true pose (4, 4) in the full image of ``camera`` (None: no ship)."""
        self._T_cam_obj = None if T_cam_obj is None else np.asarray(T_cam_obj, dtype=np.float64)
        self._image_camera = camera

    def set_crop(self, crop: CropMap) -> None:
        """How the next input was cut from the full image (the pipeline calls this)."""
        self._crop = crop

    # --- the detector interface ----------------------------------------------------------

    def __call__(self, image_rgb: np.ndarray) -> Detection:
        self.calls += 1
        if self.cost_model is not None:
            self.cost_model(image_rgb)
        h, w = image_rgb.shape[:2]
        n = len(self.points_3d)
        crop = self._crop if self._crop is not None else CropMap(1.0, 0.0, 0.0, w, h)
        uv_rand = self.rng.uniform(0, [w, h], size=(n, 2))
        noise = self.rng.normal(0.0, 1.0, size=(n, 2)) * self.noise_px
        outlier = self.rng.random(n) < self.outlier_rate
        angle = self.rng.uniform(0, 2 * np.pi, n)
        flipped = self.rng.random() < self.flip_rate
        if self._T_cam_obj is None or self._image_camera is None:
            return Detection(uv_rand, np.full(n, 0.05), 0.0)
        cam = self._image_camera
        uv_img = project_points(self.points_3d, self._T_cam_obj, cam.K, cam.dist)  # (K, 2) image px
        uv = crop.image_to_crop(uv_img)  # (K, 2) input px
        m = self.margin * max(w, h)
        with np.errstate(invalid="ignore"):
            seen = (np.isfinite(uv).all(axis=1) & (uv[:, 0] >= -0.5 - m) & (uv[:, 1] >= -0.5 - m)
                    & (uv[:, 0] <= w - 0.5 + m) & (uv[:, 1] <= h - 0.5 + m))
        if seen.mean() < self.min_visible:
            return Detection(uv_rand, np.full(n, 0.05), 0.0)
        uv = np.where(seen[:, None], uv + noise, uv_rand)
        uv[outlier & seen] += self.outlier_px * np.stack([np.cos(angle), np.sin(angle)], axis=1)[outlier & seen]
        conf = np.where(seen, 0.95, 0.05)
        if self.roll_perm is None:
            return Detection(uv, conf, 1.0)
        uv_roll, conf_roll = uv[self.roll_perm], conf[self.roll_perm]
        if flipped:
            return Detection(uv_roll, conf_roll, 1.0, 0.5, uv, conf)
        return Detection(uv, conf, 1.0, 0.0, uv_roll, conf_roll)

    def batch(self, images: np.ndarray) -> list[Detection]:
        return [self(im) for im in images]
