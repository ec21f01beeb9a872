"""One labelled sample at a time: pose, look, background, render, sensor effects.

:class:`SampleGenerator` is what both ``xwing render`` (to disk) and training
(on the fly, inside PyTorch DataLoader workers) use, so the two see the same
distribution. Each sample is a pure function of a ``numpy.random.Generator``;
:meth:`SampleGenerator.sample_index` seeds it from ``(config.seed, index)`` so
sample ``i`` is the same whichever process, shard or run makes it.

Views
-----
``view="full"``: the camera's whole frame (the seed's 256 x 256 images).
``view="crop"``: what the tracker's second stage sees: a ``crop_size`` square
cut around the ship (centre jittered by ``crop_jitter`` of the ship's size)
so that the ship's box spans ``crop_fill`` of it (0.5-0.625: 128-160 px of a
256 crop). Its camera is the crop camera (``K_crop = S K``, see
:mod:`xwing.geometry.crop`). Parts of the crop beyond the full frame are black, as in
the tracker's crops (``crop_black_border=False`` renders them too; with the
default pose distribution most crops of 256 x 256 frames reach past the
border, as the tracker's crops of the test set do); when the crop magnifies
(ship smaller than the crop), it is rendered at the full frame's resolution
and upsampled (bilinear, after noise and JPEG), as the tracker's crops are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace

import numpy as np

from xwing.config import SavedConfig
from xwing.geometry.camera import Camera, seed_camera
from xwing.geometry.crop import CropMap, crop_around
from xwing.geometry.projection import project_points
from xwing.model.keypoints import SEED_BOX, SEED_BOX_CORNERS
from xwing.model.mesh import Mesh, xwing_mesh
from xwing.render.appearance import LOOKS, sample_appearance
from xwing.render.effects import SensorParams, apply_sensor, jpeg_roundtrip
from xwing.render.sampler import PoseSampler, PoseSamplerConfig

VIEWS = ("full", "crop")
#: Bumped whenever the same config and seed would give different images (sampler,
#: shading, backgrounds, effects); datasets record it and resume only at the same value.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class GeneratorConfig(SavedConfig):
    """Everything that decides the data's distribution (saved beside datasets).

    Ranges are ``(min, max)`` drawn uniformly unless said otherwise.
    """

    seed: int = 0
    view: str = "full"
    crop_size: int = 256
    crop_fill: tuple[float, float] = (0.5, 0.625)
    crop_jitter: float = 0.1
    crop_black_border: bool = True  # crop pixels beyond the full frame are black, as in the tracker's crops
    # pose (see xwing.render.sampler)
    distance: tuple[float, float] = (0.6, 2.5)
    p_truncated: float = 0.20
    cut_share: float = 0.2
    p_out_of_view: float = 0.05
    p_edge_on: float = 0.0
    # occluders in front of the ship (off by default and in the test set)
    p_occluder: float = 0.0
    # backgrounds: None = procedural nebulae/star fields; else a directory of images
    backgrounds: str | None = None
    bank_size: int = 12
    # sensor
    p_blur: float = 0.3
    blur_sigma_px: tuple[float, float] = (0.3, 1.3)
    p_motion_blur: float = 0.1
    motion_blur_px: tuple[float, float] = (2.0, 8.0)
    noise_sigma: tuple[float, float] = (0.0, 6.0)
    jpeg_quality: tuple[int, int] = (60, 95)
    aa_samples: int = 4  # anti-aliasing samples per pixel (2x2 supersampling)
    # the ship's paint: "ship" (near the X-wing's), "wide" or "held_out" (see render.appearance)
    look: str = "ship"

    def __post_init__(self):
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {self.view!r}")
        if self.look not in LOOKS:
            raise ValueError(f"look must be one of {LOOKS}, got {self.look!r}")
        if self.crop_size < 16:
            raise ValueError("crop_size must be >= 16")
        if not 0 < self.crop_fill[0] <= self.crop_fill[1]:
            raise ValueError("crop_fill must satisfy 0 < min <= max")
        # JSON round trips turn tuples into lists; keep the dataclass hashable and comparable.
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))

    @property
    def pose_config(self) -> PoseSamplerConfig:
        return PoseSamplerConfig(distance=tuple(self.distance), p_truncated=self.p_truncated, cut_share=self.cut_share,
                                 p_out_of_view=self.p_out_of_view, p_edge_on=self.p_edge_on)


@dataclass
class GeneratedSample:
    """One rendered, labelled image.

    Attributes:
        image: (H, W, 3) uint8 RGB with sensor effects (and JPEG) applied.
        T_cam_obj: (4, 4) object -> OpenCV camera.
        camera: the camera of ``image`` (full frame, or the crop camera).
        mask: (H, W) float32 visible ship coverage in [0, 1].
        ship_visible: bool, at least ~4 pixels of ship are visible.
        keypoints: (8, 2) the model's box corners projected with ``camera``
            (pixel centres at integers; may lie outside the image).
        category: the pose sampler's category ("inside", "truncated", "cut", "out").
        sensor: the :class:`SensorParams` used (``jpeg_quality`` included).
        crop: the :class:`CropMap` full frame -> crop (``view="crop"``), else None.
    """

    image: np.ndarray
    T_cam_obj: np.ndarray
    camera: Camera
    mask: np.ndarray
    ship_visible: bool
    keypoints: np.ndarray
    category: str
    sensor: SensorParams = field(default_factory=SensorParams)
    crop: CropMap | None = None


MIN_VISIBLE_PX = 4.0


class SampleGenerator:
    """Makes :class:`GeneratedSample` s; safe to build in one process and use in others.

    Args:
        config: the distribution.
        camera: the full-frame camera (default: the seed's 256 x 256).
        mesh: the model (default: the procedural X-wing); keypoints are its box corners.
            The distance range is scaled by the size of its box relative to the
            seed's (box diagonals), so any model appears at the seed ship's sizes.

    The GL context and renderer are made on first use in each process (a
    DataLoader worker gets its own); neither they nor the background bank are
    pickled (a forked worker inherits a bank already made).
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig(), camera: Camera | None = None,
                 mesh: Mesh | None = None):
        self.config = config
        self.camera = camera or seed_camera()
        self.mesh = mesh if mesh is not None else xwing_mesh()
        # The seed's exact corner labels whenever the mesh fills the seed's box (float32 vertices
        # would otherwise put them off by ~1e-7).
        box = self.mesh.box
        self.corners = SEED_BOX_CORNERS.copy() if np.allclose(box, SEED_BOX, atol=1e-4) else self.mesh.box_corners()
        # Distances are for the seed-sized ship: a model of another size keeps its apparent size.
        self.size_scale = float(np.linalg.norm(np.ptp(self.corners, axis=0)) / np.linalg.norm(np.ptp(SEED_BOX, axis=0)))
        pose_config = config.pose_config
        if abs(self.size_scale - 1.0) > 1e-3:
            pose_config = replace(pose_config, distance=tuple(d * self.size_scale for d in pose_config.distance))
        self.pose_sampler = PoseSampler(self.camera, pose_config, self.corners, self.mesh.vertices)
        self._local = None  # (pid, renderer): GL state is per process
        self._bank = None  # numpy only: shared by processes forked after it was made

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_local"] = None
        state["_bank"] = None  # ~5 MB; cheaper to remake than to pickle to every worker
        return state

    @property
    def renderer(self):
        """This process's renderer (made on first use)."""
        pid = os.getpid()
        if self._local is None or self._local[0] != pid:
            from xwing.render import make_renderer

            self._local = (pid, make_renderer(self.camera, self.mesh, samples=self.config.aa_samples))
        return self._local[1]

    @property
    def bank(self):
        """The background bank (made on first use, deterministic from ``config.seed``)."""
        if self._bank is None:
            from xwing.render.background import BackgroundBank

            side = max(self.camera.width, self.camera.height,
                       self.config.crop_size if self.config.view == "crop" else 0)
            self._bank = BackgroundBank(side, side, seed=self.config.seed, n=self.config.bank_size,
                                        directory=self.config.backgrounds)
        return self._bank

    def _resources(self):
        return self.renderer, self.bank

    def rng_for(self, index: int) -> np.random.Generator:
        """The generator of sample ``index`` (independent of every other index)."""
        return np.random.default_rng([int(self.config.seed), int(index)])

    def sample_index(self, index: int) -> GeneratedSample:
        """Sample ``index`` of the stream defined by ``config.seed`` (reproducible)."""
        return self.sample(self.rng_for(index))

    def sample(self, rng: np.random.Generator, jpeg: bool = True) -> GeneratedSample:
        """Draw one sample. ``jpeg=False`` skips the JPEG round trip of full-frame
        images (a writer then encodes once at ``sample.sensor.jpeg_quality``)."""
        cfg = self.config
        renderer, bank = self._resources()
        pose = self.pose_sampler.sample(rng)
        appearance = sample_appearance(rng, cfg.look)
        sensor = self._sensor(rng)
        T = pose.T_cam_obj
        if cfg.view == "full":
            cam, crop, render_cam = self.camera, None, self.camera
        else:
            crop = self._crop(rng, pose)
            cam = self.camera.with_K(crop.crop_K(self.camera.K), crop.width, crop.height)
            # Magnifying crops: render at the source resolution, upsample after the sensor.
            lo = int(np.ceil(crop.width / crop.scale)) if crop.scale > 1.05 else crop.width
            render_cam = cam.resized(lo, lo) if lo != crop.width else cam
        bg = bank.sample(rng, render_cam.width, render_cam.height)
        img, mask = renderer.render(T, render_cam, appearance, bg)
        uv_render = project_points(self.corners, T, render_cam.K)
        if cfg.p_occluder > 0 and rng.random() < cfg.p_occluder:
            from xwing.render.occluders import add_occluders

            finite = uv_render[np.isfinite(uv_render).all(axis=1)]
            if len(finite):
                img, mask = add_occluders(img, mask, rng, np.stack([finite.min(0), finite.max(0)]))
        img = apply_sensor(img, sensor, rng)
        if crop is not None:
            img, mask = self._finish_crop(img, mask, cam, render_cam, crop, sensor)
        elif jpeg:
            img = jpeg_roundtrip(img, sensor.jpeg_quality)
        uv = project_points(self.corners, T, cam.K)
        return GeneratedSample(img, T, cam, mask, bool(mask.sum() >= MIN_VISIBLE_PX), uv, pose.category,
                               sensor, crop)

    def _sensor(self, rng: np.random.Generator) -> SensorParams:
        c = self.config
        blur = rng.uniform(*c.blur_sigma_px) if rng.random() < c.p_blur else 0.0
        motion = rng.uniform(*c.motion_blur_px) if rng.random() < c.p_motion_blur else 0.0
        angle = rng.uniform(0, 180)
        noise = rng.uniform(*c.noise_sigma)
        quality = int(rng.integers(c.jpeg_quality[0], c.jpeg_quality[1] + 1))
        return SensorParams(float(blur), float(motion), float(angle), float(noise), quality)

    def _crop(self, rng: np.random.Generator, pose) -> CropMap:
        c = self.config
        uv = pose.corners_px
        lo, hi = uv.min(axis=0), uv.max(axis=0)
        ship = float(max(np.max(hi - lo), 1.0))
        fill = rng.uniform(*c.crop_fill)
        extent = ship / fill
        centre = (lo + hi) / 2 + rng.uniform(-1, 1, 2) * c.crop_jitter * ship
        if pose.category == "out":
            # The tracker looking where the ship is not: a crop of the same scale anywhere in
            # the frame, while the ship is outside the frame (a "no ship" example).
            centre = rng.uniform(-0.5, 0.5, 2) * np.array([self.camera.width, self.camera.height]) + (
                np.array([self.camera.width, self.camera.height]) - 1) / 2
        return crop_around(centre, extent, c.crop_size)

    def _finish_crop(self, img, mask, cam, render_cam, crop: CropMap, sensor: SensorParams):
        import cv2

        img = jpeg_roundtrip(img, sensor.jpeg_quality)
        if render_cam.width != cam.width:
            img = cv2.resize(img, (cam.width, cam.height), interpolation=cv2.INTER_LINEAR)
            mask = cv2.resize(mask, (cam.width, cam.height), interpolation=cv2.INTER_LINEAR)
        if not self.config.crop_black_border:
            return img, mask
        # Crop pixels whose centres fall outside the full frame are black, as CropMap.warp pads them.
        W, H = self.camera.width, self.camera.height
        u0, v0 = crop.image_to_crop([[-0.5, -0.5]])[0]
        u1, v1 = crop.image_to_crop([[W - 0.5, H - 0.5]])[0]
        x0, y0 = int(np.clip(np.ceil(u0), 0, cam.width)), int(np.clip(np.ceil(v0), 0, cam.height))
        x1, y1 = int(np.clip(np.floor(u1) + 1, 0, cam.width)), int(np.clip(np.floor(v1) + 1, 0, cam.height))
        if (x0, y0, x1, y1) != (0, 0, cam.width, cam.height):
            keep = np.zeros((cam.height, cam.width), bool)
            keep[y0:y1, x0:x1] = True
            img = np.where(keep[..., None], img, 0).astype(np.uint8)
            mask = np.where(keep, mask, 0).astype(np.float32)
        return img, mask


class RenderedDataset:
    """A map-style dataset of on-the-fly samples for PyTorch's DataLoader (no torch import).

    ``ds[i]`` renders sample ``i + epoch * len(ds)`` of the seed's stream, so
    every epoch sees fresh images (call :meth:`set_epoch`) while any index stays
    reproducible. Each DataLoader worker makes its own GL context on first use.

    Args:
        generator: the :class:`SampleGenerator` (pickled to workers without GL state).
        length: samples per epoch.
        transform: maps a :class:`GeneratedSample` to what the loader should
            yield; default: a dict of numpy arrays (``image`` (H, W, 3) uint8,
            ``T_cam_obj`` (4, 4), ``K`` (3, 3), ``keypoints`` (8, 2), ``mask``
            (H, W), ``ship_visible`` bool).
    """

    def __init__(self, generator: SampleGenerator, length: int, transform=None):
        self.generator = generator
        self.length = int(length)
        self.transform = transform
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        if not 0 <= i < self.length:
            raise IndexError(i)
        s = self.generator.sample_index(i + self.epoch * self.length)
        if self.transform is not None:
            return self.transform(s)
        return {"image": s.image, "T_cam_obj": s.T_cam_obj.astype(np.float32), "K": s.camera.K.astype(np.float32),
                "keypoints": s.keypoints.astype(np.float32), "mask": s.mask, "ship_visible": s.ship_visible}
