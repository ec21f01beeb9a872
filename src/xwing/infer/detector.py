"""The keypoint detector at inference: an exported ONNX model + the heatmap codec.

Imports only numpy, OpenCV (indirectly) and onnxruntime, never torch: this is
what ``xwing track``, ``predict``, ``demo`` and ``eval`` run. Everything the
detector needs (input size, keypoint table, codec, training camera) is read
from the ONNX file's metadata (key ``xwing``, JSON), written by ``xwing export``.

Input: RGB uint8 images (S, S, 3) (or (H, W, 3), both multiples of 32). Output:
:class:`Detection` per image, keypoints in that image's pixels (pixel centres
at integers), possibly outside it.

The ship's 180-degree roll near-symmetry: the network predicts the points in
one of two labellings, plus which side of the ship faces the camera; the
detector returns ``uv`` in the labelling that agrees with that side (its best
guess, see :func:`xwing.model.symmetry.resolve_roll`) and ``uv_alt``, the same points
under the other labelling (the roll180 hypothesis), so a tracker can test both
(e.g. against the previous pose) when ``flip`` is near 0.5.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.camera import Camera
from xwing.infer.codec import HeatmapCodec, sigmoid
from xwing.model.symmetry import resolve_roll

#: Metadata key and format tag written by ``xwing export``.
META_KEY = "xwing"
META_FORMAT = "xwing-keypoints"


@dataclass
class Detection:
    """Keypoints of one image.

    Attributes:
        uv: (K, 2) float64 keypoints in the network-input image's pixels (pixel
            centres at integers; may lie outside the input).
        conf: (K,) confidences in [0, 1].
        presence: probability in [0, 1] that the ship is in view.
        flip: probability in [0, 1] that the network's own labelling was the
            roll-relabelled one (already undone in ``uv`` when > 0.5); near 0.5
            means top and bottom could not be told apart.
        uv_alt: (K, 2) the other labelling's keypoints (the roll180 hypothesis).
        conf_alt: (K,) its confidences.
    """

    uv: np.ndarray
    conf: np.ndarray
    presence: float
    flip: float = 0.0
    uv_alt: np.ndarray | None = None
    conf_alt: np.ndarray | None = field(default=None, repr=False)


def read_metadata(path: str | Path) -> dict:
    """The ``xwing`` metadata of an ONNX file (XwingError if absent or unreadable)."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise XwingError("model file not found", path)
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises several types for bad files
        raise XwingError(f"not a loadable ONNX model ({type(e).__name__})", path) from None
    return _meta_of(sess, path)


def _meta_of(sess, path) -> dict:
    props = sess.get_modelmeta().custom_metadata_map
    if META_KEY not in props:
        raise XwingError("ONNX model has no xwing metadata: not an xwing keypoint model (export it with "
                         "`xwing export`)", path)
    try:
        meta = json.loads(props[META_KEY])
    except json.JSONDecodeError:
        raise XwingError("ONNX model's xwing metadata is not valid JSON", path) from None
    if meta.get("format") != META_FORMAT:
        raise XwingError(f"ONNX model is not an xwing keypoint model (format {meta.get('format')!r})", path)
    return meta


def decode_outputs(heat: np.ndarray, scores: np.ndarray, codec: HeatmapCodec, points_3d: np.ndarray,
                   roll180_perm: np.ndarray, symmetric: bool):
    """The network's raw outputs -> keypoints, the one decoding that inference and training validation share.

    Args:
        heat: (B, K, Hc, Wc) heatmap logits; scores: (B, 2) logits [presence, flip].
        points_3d: (K, 3) model points; roll180_perm: (K,) their 180-degree-roll relabelling.
        symmetric: the network was trained roll-symmetric (its side output settles the labelling).

    Returns:
        uv (B, K, 2), conf (B, K) in the labelling that agrees with the side output (when
        ``symmetric``; as predicted otherwise), presence (B,), uv_alt (B, K, 2), conf_alt (B, K)
        (the roll-relabelled hypothesis), flip (B,) (0 when not ``symmetric``).
    """
    uv, conf = codec.decode(heat)  # (B, K, 2), (B, K)
    presence = sigmoid(scores[:, 0])
    if symmetric:
        uv, conf, uv_alt, conf_alt, flip = resolve_roll(uv, conf, sigmoid(scores[:, 1]), points_3d, roll180_perm)
    else:
        perm = np.asarray(roll180_perm)
        uv_alt, conf_alt, flip = uv[:, perm], conf[:, perm], np.zeros(len(uv))
    return uv, conf, presence, uv_alt, conf_alt, flip


@runtime_checkable
class Detector(Protocol):
    """What the estimator and the tracker need of a keypoint detector.

    Attributes:
        points_3d: (K, 3) the model points it predicts.
        input_size: its square input side (pixels), for whole-frame passes.
    A detector that also defines ``set_crop(crop_map)`` is told where each input
    came from (the oracle needs it; a network does not).
    """

    points_3d: np.ndarray
    input_size: int

    def __call__(self, image_rgb: np.ndarray) -> Detection: ...


class OnnxDetector:
    """ONNX Runtime keypoint detector.

    Args:
        path: the ``.onnx`` file written by ``xwing export``.
        providers: onnxruntime execution providers (default: CPU).
        threads: intra-op threads (default: onnxruntime's choice).
    """

    def __init__(self, path: str | Path = "models/xwing.onnx", providers=None, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise XwingError("model file not found", self.path)
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = int(threads)
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(self.path), so,
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            raise XwingError(f"not a loadable ONNX model ({type(e).__name__})", self.path) from None
        self.meta = _meta_of(self.session, self.path)
        self.input_name = self.session.get_inputs()[0].name
        self.codec = HeatmapCodec.from_dict(self.meta["codec"])
        self.points_3d = np.asarray(self.meta["points"]["points_3d"], np.float64)
        self.roll180_perm = np.asarray(self.meta["points"]["roll180_perm"], np.int64)
        self.mirror_perm = np.asarray(self.meta["points"]["mirror_perm"], np.int64)
        self.symmetric = bool(self.meta.get("symmetric", False))
        self.input_size = int(self.meta["input_size"])
        self._camera = None

    @property
    def camera(self):
        """The training :class:`~xwing.geometry.camera.Camera` (for videos of unknown calibration)."""
        if self._camera is None:
            self._camera = Camera.from_dict(self.meta["camera"], source=self.path)
        return self._camera

    def raw(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, H, W, 3) uint8 -> (heatmap logits (B, K, Hc, Wc), score logits (B, 2))."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise XwingError(f"detector wants RGB images (B, H, W, 3), got shape {images.shape}")
        h, w = images.shape[1:3]
        if h % 32 or w % 32:
            raise XwingError(f"detector input must be a multiple of 32 px on each side, got {w} x {h}")
        if images.dtype != np.uint8:
            images = np.clip(images, 0, 255).astype(np.uint8)
        heat, scores = self.session.run(None, {self.input_name: np.ascontiguousarray(images)})
        return heat, scores

    def batch(self, images: np.ndarray) -> list[Detection]:
        """(B, S, S, 3) uint8 RGB -> one :class:`Detection` per image."""
        heat, scores = self.raw(images)
        uv, conf, presence, uv_alt, conf_alt, flip = decode_outputs(heat, scores, self.codec, self.points_3d,
                                                                    self.roll180_perm, self.symmetric)
        return [Detection(uv[i], conf[i], float(presence[i]), float(flip[i]), uv_alt[i], conf_alt[i])
                for i in range(len(uv))]

    def __call__(self, image_rgb: np.ndarray) -> Detection:
        """(S, S, 3) uint8 RGB -> :class:`Detection`."""
        image_rgb = np.asarray(image_rgb)
        if image_rgb.ndim != 3:
            raise XwingError(f"detector wants one RGB image (H, W, 3), got shape {image_rgb.shape}")
        return self.batch(image_rgb[None])[0]
