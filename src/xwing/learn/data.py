"""PyTorch datasets for keypoint training: seed-format folders and on-the-fly rendering.

Both datasets are indexed by a global *position* (0, 1, 2, ... over the whole
run, across epochs), and every random choice for position ``p`` comes from
``np.random.default_rng([seed, p])``. So a run's data depend only on the seed
and the step, which is what makes ``xwing train --resume`` exact: the resumed
run asks for the same positions and gets the same images and augmentations.

An item is a dict of tensors::

    image     (S, S, 3) uint8 RGB (the network normalises)
    heatmap   (K, Hc, Wc) float32 codec targets (peak 1)
    weight    (K,) float32 1 where the keypoint is supervised
    uv        (K, 2) float32 keypoints, input pixels
    K         (3, 3) float64 intrinsics of the input image
    T_cam_obj (4, 4) float64 pose
    present   () float32 1 if the ship is in view
    side      () float32 1 if symmetry.side_of(true keypoints) > 0 (which side faces the camera)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from xwing.geometry.camera import seed_camera
from xwing.geometry.projection import in_image, project_points
from xwing.infer.codec import HeatmapCodec
from xwing.io.dataset import SeedDataset
from xwing.learn.augment import AugmentConfig, augment
from xwing.model.points import PointSet
from xwing.model.symmetry import side_of


def _fit_to_input(image, K, size: int):
    """Resize a square image to ``size`` (K follows exactly); other aspects raise."""
    import cv2

    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image, K
    if h != w:
        raise ValueError(f"training images must be square, got {w} x {h}")
    s = size / w
    S = np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5], [0, 0, 1.0]])
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp), S @ K


def make_item(image, K, T_cam_obj, present: bool, pts: PointSet, codec: HeatmapCodec, size: int,
              rng: np.random.Generator | None, aug: AugmentConfig | None) -> dict:
    """One training item from an image with its camera and pose (see module doc)."""
    image, K = _fit_to_input(image, np.asarray(K, np.float64), size)
    uv = project_points(pts.points_3d, T_cam_obj, K)
    if aug is not None and rng is not None:
        image, uv, K, T_cam_obj = augment(image, uv, K, T_cam_obj, pts, rng, aug)
    valid = np.isfinite(uv).all(axis=1) & bool(present)
    if codec.seed_targets:  # the seed labelled only the frame; off-frame points at (0, 0)
        valid = np.isfinite(uv).all(axis=1)
    heat, weight = codec.encode(np.nan_to_num(uv, nan=-1e6), size, size, valid)
    side = float(side_of(uv, pts.points_3d) > 0)  # which side faces the camera (true labels)
    return {
        "image": torch.from_numpy(np.ascontiguousarray(image)),
        "heatmap": torch.from_numpy(heat),
        "weight": torch.from_numpy(weight),
        "uv": torch.from_numpy(np.nan_to_num(uv, nan=-1e6).astype(np.float32)),
        "K": torch.from_numpy(np.asarray(K, np.float64)),
        "T_cam_obj": torch.from_numpy(np.asarray(T_cam_obj, np.float64)),
        "present": torch.tensor(float(present)),
        "side": torch.tensor(side),
    }


class FolderDataset(Dataset):
    """Seed-format directories (``N.jpg`` + ``N_mat.json`` + ``camera_info.json``),
    reshuffled every pass (an epoch of the folder), seeded.

    Args:
        roots: one or more directories (concatenated).
        subset: a slice of the concatenated samples to use (default all).
        pts, codec, size: point set, codec, network input side.
        seed: base seed; aug: augmentation (None: none, e.g. for validation).
    """

    def __init__(self, roots, pts: PointSet, codec: HeatmapCodec, size: int, seed: int = 0,
                 aug: AugmentConfig | None = None, subset: slice | None = None):
        self.sets = [SeedDataset(r, points=pts.points_3d) for r in ([roots] if isinstance(roots, (str, Path))
                                                                     else roots)]
        self.index = [(si, i) for si, ds in enumerate(self.sets) for i in range(len(ds))]
        if subset is not None:  # e.g. hold out the last images for validation
            self.index = self.index[subset]
        self.pts, self.codec, self.size, self.seed, self.aug = pts, codec, size, seed, aug
        self._perm_cache: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.index)

    def _perm(self, epoch: int) -> np.ndarray:
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            self._perm_cache = (epoch, np.random.default_rng([self.seed, 7, epoch]).permutation(len(self.index)))
        return self._perm_cache[1]

    def __getitem__(self, position: int) -> dict:
        n = len(self.index)
        si, i = self.index[int(self._perm(position // n)[position % n]) if self.aug is not None else position % n]
        s = self.sets[si][i]
        rng = np.random.default_rng([self.seed, int(position)])
        return make_item(s.image, self.sets[si].camera.K, s.T_cam_obj, True, self.pts, self.codec, self.size,
                         rng, self.aug)


class RenderedDataset(Dataset):
    """Images rendered on the fly by :class:`xwing.render.generator.SampleGenerator`.

    The generator (one GL context per process) is created lazily in each
    DataLoader worker. Position ``p`` renders with ``default_rng([seed, p])``.

    Args:
        generator_config: keyword arguments of ``GeneratorConfig``.
        camera: the full-frame :class:`~xwing.geometry.camera.Camera` (default: the seed's).
        size: network input side; the generator's images are resized to it.
    """

    def __init__(self, pts: PointSet, codec: HeatmapCodec, size: int, seed: int = 0,
                 aug: AugmentConfig | None = None, generator_config: dict | None = None, camera=None,
                 length: int = 10**9):
        self.pts, self.codec, self.size, self.seed, self.aug = pts, codec, size, seed, aug
        self.generator_config = dict(generator_config or {})
        self.camera = camera
        self.length = length
        self._gen = None
        self._pid = None

    def __len__(self) -> int:
        return self.length

    def generator(self):
        if self._gen is None or self._pid != os.getpid():
            from xwing.render.generator import GeneratorConfig, SampleGenerator

            self._gen = SampleGenerator(GeneratorConfig(**self.generator_config), self.camera or seed_camera())
            self._pid = os.getpid()
        return self._gen

    def __getitem__(self, position: int) -> dict:
        rng = np.random.default_rng([self.seed, int(position)])
        g = self.generator().sample(rng)
        return make_item(g.image, g.camera.K, g.T_cam_obj, bool(g.ship_visible), self.pts, self.codec, self.size,
                         rng, self.aug)


class PositionSampler(Sampler):
    """Global positions ``start, start + 1, ... < end`` for this rank (``rank::world``)."""

    def __init__(self, start: int, end: int, rank: int = 0, world: int = 1):
        self.start, self.end, self.rank, self.world = int(start), int(end), int(rank), int(world)

    def __iter__(self):
        return iter(range(self.start + self.rank, self.end, self.world))

    def __len__(self) -> int:
        return len(range(self.start + self.rank, self.end, self.world))


def collate(items: list[dict]) -> dict:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def fraction_in_image(uv: np.ndarray, size: int) -> float:
    return float(in_image(uv, size, size).mean())
