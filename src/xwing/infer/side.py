"""Top or bottom: which side of the ship faces the camera, seen in the ship's own frame.

The X-wing is nearly symmetric under a 180-degree roll about its long axis, so
keypoints and silhouettes leave two poses ``T`` and ``T @ T_ROLL180`` that fit
almost equally well; only surface detail (the canopy and the droid on top, a
plain belly below) tells them apart. The keypoint network's global side score
is often wrong, even in crops at the true pose: pooled features do not know
*where* the canopy should be.

This module looks where the difference is. A grid on the ship's mid-plane
(``z = 0``, ``x`` within +-4.5 cm, ``y`` from -11 to +12 cm: the fuselage with the
canopy and droid, nose first) is projected with a pose hypothesis and the image
is sampled there (:func:`sample_patch`): a (36, 12, 3) patch in the ship's own
frame, whatever its pose in the image. A tiny CNN (:class:`SideClassifier`, three
3 x 3 convolutions, 14k weights, numpy at inference) says whether the top faces
the camera. Under the roll the mid-plane grid maps onto itself mirrored
(``x -> -x``), so both hypotheses sample the same pixels and the patch needs no
labelling: the hypothesis whose top-facing agrees with the classifier wins
(:func:`xwing.model.symmetry.choose_roll`). Trained by ``xwing train-side`` on rendered images with
the pose off by 0-8 px (what PnP from the network leaves).

It is reliable where the camera sees the ship's top or belly and at chance
edge-on, where both sides are barely visible; its measured figures are in
``docs/refinement.md`` and ``models/README.md``.

A format-2 classifier (``xwing train-side --profile``) also samples the ship's side
profile, the symmetry plane ``x = 0`` (``GRID_Y`` stations by ``GRID_Z`` heights), which
is seen where the mid-plane is edge-on and shows the canopy and the droid above the
fuselage. The profile cannot say which side faces the camera (the mirrored profile
looks the same from the other side), but it can say on which side of the pose asked
the canopy is: a format-2 classifier answers whether the pose it is given has the
true roll (:meth:`SideClassifier.roll_logits`), and :meth:`SideClassifier.p_top` turns
that into the same top/bottom probability as format 1.

Numpy + OpenCV only (the light inference stack).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.projection import project_points
from xwing.model.symmetry import facing_cos

#: The sampling grid on the model's mid-plane: (min, max, samples) along x and y (metres).
GRID_X = (-0.045, 0.045, 12)
GRID_Y = (-0.11, 0.12, 36)
#: Heights of the profile grid on the symmetry plane x = 0 (with ``GRID_Y``'s stations): from
#: below the lower engines to above the droid's dome, as many samples as ``GRID_X``.
GRID_Z = (-0.036, 0.036, 12)
#: File format tags: 1, the mid-plane patch; 2, the mid-plane and the profile patch.
SIDE_FORMAT = "xwing-side-1"
SIDE_FORMAT_PROFILE = "xwing-side-2"


def canonical_grid(grid_x=GRID_X, grid_y=GRID_Y) -> np.ndarray:
    """(NY * NX, 3) model points on the plane z = 0, row-major (y rows, x columns)."""
    xs = np.linspace(*grid_x[:2], int(grid_x[2]))
    ys = np.linspace(*grid_y[:2], int(grid_y[2]))
    g = np.stack(np.meshgrid(xs, ys, indexing="xy"), axis=-1).reshape(-1, 2)
    return np.concatenate([g, np.zeros((len(g), 1))], axis=1)


def profile_grid(grid_z=GRID_Z, grid_y=GRID_Y) -> np.ndarray:
    """(NY * NZ, 3) model points on the symmetry plane x = 0, row-major (y rows, z columns)."""
    zs = np.linspace(*grid_z[:2], int(grid_z[2]))
    ys = np.linspace(*grid_y[:2], int(grid_y[2]))
    z, y = np.meshgrid(zs, ys, indexing="xy")
    return np.stack([np.zeros(z.size), y.ravel(), z.ravel()], axis=1)


def _sample(image_rgb: np.ndarray, points: np.ndarray, shape: tuple[int, int], T_cam_obj: np.ndarray, K: np.ndarray,
            dist: np.ndarray | None) -> np.ndarray:
    import cv2

    uv = project_points(points, T_cam_obj, K, dist)
    uv = np.nan_to_num(uv, nan=-1e4, posinf=-1e4, neginf=-1e4).astype(np.float32).reshape(*shape, 2)
    return cv2.remap(np.ascontiguousarray(image_rgb), uv[..., 0], uv[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def sample_patch(image_rgb: np.ndarray, T_cam_obj: np.ndarray, K: np.ndarray, dist: np.ndarray | None = None,
                 grid_x=GRID_X, grid_y=GRID_Y, grid_z=None) -> np.ndarray:
    """The image sampled (bilinear) on :func:`canonical_grid` projected with ``T_cam_obj``, and
    with ``grid_z`` also on :func:`profile_grid` (the ship's side profile, which shows the
    canopy and the droid above the fuselage where the mid-plane is seen edge-on).

    Under the 180-degree roll both grids map onto themselves mirrored (``x -> -x``,
    ``z -> -z``): the other roll hypothesis samples the same patch with its columns reversed.

    Args:
        image_rgb: (H, W, 3) uint8. T_cam_obj: (4, 4). K: (3, 3); dist: OpenCV distortion.
    Returns:
        (NY, NX, 3) uint8, or (NY, NX, 6) with the profile (needs NZ == NX); grid points outside
        the image or behind the camera are black.
    """
    ny, nx = int(grid_y[2]), int(grid_x[2])
    mid = _sample(image_rgb, canonical_grid(grid_x, grid_y), (ny, nx), T_cam_obj, K, dist)
    if grid_z is None:
        return mid
    if int(grid_z[2]) != nx:
        raise ValueError(f"the profile grid needs as many samples as the mid-plane's columns ({nx})")
    profile = _sample(image_rgb, profile_grid(grid_z, grid_y), (ny, nx), T_cam_obj, K, dist)
    return np.concatenate([mid, profile], axis=2)


def normalise_patches(patches: np.ndarray) -> np.ndarray:
    """(B, NY, NX, 3k) uint8 -> (B, 3k, NY, NX) float32, zero mean and unit contrast per patch
    and per 3-channel view (lighting and exposure vary; the pattern is what counts)."""
    x = np.asarray(patches, np.float32) / 255.0
    B, NY, NX, C = x.shape
    x = x.reshape(B, NY, NX, C // 3, 3)
    m = x.mean(axis=(1, 2, 4), keepdims=True)
    s = x.std(axis=(1, 2, 4), keepdims=True) + 0.02
    return ((x - m) / s).reshape(B, NY, NX, C).transpose(0, 3, 1, 2)


def _conv3x3_relu(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(B, C, H, W) -> (B, O, H, W): 3 x 3 convolution, zero padding 1, then ReLU (im2col)."""
    B, C, H, W = x.shape
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.lib.stride_tricks.sliding_window_view(p, (3, 3), axis=(2, 3))  # (B, C, H, W, 3, 3)
    cols = cols.transpose(0, 2, 3, 1, 4, 5).reshape(B * H * W, C * 9)
    y = cols @ w.reshape(len(w), -1).T + b  # (B H W, O)
    return np.maximum(y.reshape(B, H, W, -1).transpose(0, 3, 1, 2), 0.0)


def _maxpool(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    B, C, H, W = x.shape
    x = x[:, :, : H - H % kh, : W - W % kw]
    return x.reshape(B, C, H // kh, kh, W // kw, kw).max(axis=(3, 5))


def _facing_sign(facing: np.ndarray) -> np.ndarray:
    """(B,) +1 where a pose shows the camera its top (``facing`` > 0), else -1."""
    return np.where(np.asarray(facing) > 0, 1.0, -1.0)


def top_logits(roll_logits: np.ndarray, facing: np.ndarray) -> np.ndarray:
    """Format 2's answer as format 1's: (B,) logits that the top faces the camera, from (B,)
    logits that the poses asked (whose :func:`~xwing.model.symmetry.facing_cos` is ``facing``)
    have the true roll: the top faces the camera where the right pose shows it."""
    return _facing_sign(facing) * roll_logits


def _run_trunk(x: np.ndarray, convs: list, fc: tuple) -> np.ndarray:
    """(B, 3, NY, NX) normalised patches -> (B,) output of one trunk."""
    for i, (w, b) in enumerate(convs):
        x = _conv3x3_relu(x, w, b)
        if i < 2:
            x = _maxpool(x, 2, 2)
    B, C, H, W = x.shape
    x = x.reshape(B, C, 3, H // 3, W).max(axis=(3, 4))  # adaptive max-pool to (3, 1)
    w, b = fc
    return (x.reshape(B, -1) @ w.T + b)[:, 0]


class SideClassifier:
    """The top/bottom classifier at inference (numpy): patch -> probability that the top
    faces the camera.

    The network (trained in :mod:`xwing.learn.side_train`, same layout in torch), one trunk per
    3-channel view: conv 3->16, ReLU, max-pool 2; conv 16->32, ReLU, max-pool 2; conv 32->32,
    ReLU, max-pool to (3, 1); linear 96 -> 1. Format 1 has the mid-plane's trunk; format 2 also
    the profile's (see :meth:`roll_logits`).

    Args:
        weights: dict of arrays (``conv1.w`` (16, 3, 3, 3), ``conv1.b``, ..., ``fc.w`` (1, 96),
            ``fc.b``; format 2 also ``profile.conv1.w``, ..., ``profile.fc.b``) and the grid
            (``grid_x``, ``grid_y``; format 2 also ``grid_z``).
    """

    LAYERS = ("conv1", "conv2", "conv3")

    def __init__(self, weights: dict, source: str = ""):
        self.source = source
        try:
            self.grid_x = tuple(float(v) for v in weights["grid_x"])
            self.grid_y = tuple(float(v) for v in weights["grid_y"])
            self.grid_z = tuple(float(v) for v in weights["grid_z"]) if "grid_z" in weights else None
            self.trunks = [self._trunk(weights, "")] + ([self._trunk(weights, "profile.")] if self.grid_z else [])
            #: How much the cue's answer counts edge-on against face-on
            #: (:func:`xwing.model.symmetry.roll_llr`): measured at training, 0 for a format-1 cue.
            self.edge_on_weight = float(weights.get("edge_on_weight", 0.0))
        except KeyError as e:
            raise XwingError(f"not a side classifier (missing {e.args[0]})", source or None) from None

    @classmethod
    def _trunk(cls, weights: dict, prefix: str) -> tuple[list, tuple]:
        def layer(name):
            return np.asarray(weights[f"{prefix}{name}.w"], np.float32), np.asarray(weights[f"{prefix}{name}.b"],
                                                                                    np.float32)

        return [layer(n) for n in cls.LAYERS], layer("fc")

    @classmethod
    def load(cls, path: str | Path) -> SideClassifier:
        path = Path(path)
        if not path.is_file():
            raise XwingError("side classifier file not found", path)
        try:
            with np.load(path, allow_pickle=False) as z:
                weights = {k: z[k] for k in z.files}
        except Exception as e:  # noqa: BLE001 - any unreadable file is the user's bad input
            raise XwingError(f"not a readable .npz file ({type(e).__name__})", path) from None
        if str(weights.get("format", "")) not in (SIDE_FORMAT, SIDE_FORMAT_PROFILE):
            raise XwingError(f"not an xwing side classifier (format tag missing, want {SIDE_FORMAT} or "
                             f"{SIDE_FORMAT_PROFILE})", path)
        return cls(weights, str(path))

    @property
    def profile(self) -> bool:
        """A format-2 classifier: mid-plane and profile patches, and the roll of the pose asked."""
        return self.grid_z is not None

    def _forward(self, patches: np.ndarray) -> np.ndarray:
        """(B, NY, NX, 3 k) uint8 -> (B, k) raw outputs, one per view and trunk."""
        x = normalise_patches(patches)
        return np.stack([_run_trunk(x[:, 3 * k:3 * k + 3], *trunk) for k, trunk in enumerate(self.trunks)], axis=1)

    def logits(self, patches: np.ndarray, facing: np.ndarray | None = None) -> np.ndarray:
        """(B, NY, NX, C) uint8 patches (:func:`sample_patch` with this classifier's grids) -> (B,)
        logits that the top faces the camera.

        A format-2 (profile) classifier answers for the pose the patches were sampled at, whose
        :func:`~xwing.model.symmetry.facing_cos` is ``facing`` (B,): see :meth:`roll_logits`."""
        if not self.profile:
            return self._forward(patches)[:, 0]
        if facing is None:
            raise ValueError("a profile side classifier needs the facing of the poses its patches come from")
        return top_logits(self.roll_logits(patches, facing), facing)

    def roll_logits(self, patches: np.ndarray, facing: np.ndarray) -> np.ndarray:
        """Format 2: (B,) logits that the pose each patch was sampled at has the true roll (rather
        than the pose rolled 180 degrees), ``facing`` (B,) its :func:`~xwing.model.symmetry.facing_cos`.

        Two outputs per patch: ``g``, whether the mid-plane shows the top (the same for both
        rolls: the mirrored patch shows the same surface), and ``h``, whether the profile shows
        the canopy on the pose's +z side (opposite for the two rolls). Built so from the outputs
        for the patch and its mirror (the other roll's patch), so that the other roll gets
        exactly the opposite logit: ``sign(facing) g + h``."""
        out, mirrored = self._forward(patches), self._forward(patches[:, :, ::-1])
        g = 0.5 * (out[:, 0] + mirrored[:, 0])
        h = 0.5 * (out[:, 1] - mirrored[:, 1])
        return _facing_sign(facing) * g + h

    def p_top(self, image_rgb: np.ndarray, T_cam_obj: np.ndarray, K: np.ndarray,
              dist: np.ndarray | None = None) -> float:
        """Probability that the top faces the camera, sampling at ``T_cam_obj`` (either roll)."""
        patch = sample_patch(image_rgb, T_cam_obj, K, dist, self.grid_x, self.grid_y, self.grid_z)
        facing = np.array([facing_cos(T_cam_obj)]) if self.profile else None
        return float(1.0 / (1.0 + np.exp(-self.logits(patch[None], facing)[0])))


def side_file_for(model_path: str | Path) -> Path:
    """Where the side classifier of an ONNX model lives: ``models/xwing.onnx`` ->
    ``models/xwing.side.npz``."""
    p = Path(model_path)
    return p.with_name(p.stem + ".side.npz")
