"""One yardstick for the network's keypoints: the same error on the crops it was validated on
during training and on the zoomed crops the pipeline feeds it.

Two sources of crops, both ``S x S`` network inputs with the true keypoints in crop pixels:

* ``validation``: the training run's validation crops, rendered exactly as
  :class:`xwing.learn.data.RenderedDataset` renders them (the generator's ``crop`` view,
  seed = the run's seed + 1,000,003, the run's ``crop_fill``; no augmentation);
* ``zoom``: for each image of a labelled set, the crop of the pipeline's last zoomed pass
  (``refine="zoom"``), cut as the pipeline cuts it (:meth:`CropMap.warp`).

The detector runs on each crop the same way (batch 1, :class:`~xwing.infer.detector.Detection`
in crop pixels), and the same figures are taken from both:

* ``kp_err_crop_px`` / ``kp_err_image_px``: distance of each predicted point to its true
  position, in crop pixels and in image pixels (crop px / the crop's zoom), **true
  labelling**: a crop whose points came out roll-relabelled counts as wrong;
* ``..._rollfree``: the same with, per crop, the better of the two labellings (the
  detector's ``uv`` and ``uv_alt``), as training validation's ``kp_err_sym_px``;

pooled over the points that lie on the codec's canvas (the points training supervises)
of crops that show the ship. Beside them, the make-up of each set: the share of the
crop the ship's box spans (``fill``), the crop's zoom (crop px per image px; above 1 the
crop is upsampled), the share of crops that reach past the frame (black border) and of
ships cut by the frame, the centring error (box centre to crop centre, in box sizes); and
the error binned by fill and by zoom, so a gap between the sets can be traced to where
they differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xwing.geometry.crop import CropMap
from xwing.geometry.projection import in_image, project_points
from xwing.model.keypoints import SEED_BOX_CORNERS

#: bin edges of the box's share of the crop side, and of the crop's zoom
FILL_BINS = (0.0, 0.25, 0.4, 0.55, 10.0)
ZOOM_BINS = (0.0, 1.0, 2.0, 4.0, 1e9)


@dataclass
class KeypointCrop:
    """One network input with its truth.

    Attributes:
        image: (S, S, 3) uint8 RGB.
        uv_gt: (K, 2) true keypoints, crop pixels, true labelling.
        zoom: crop pixels per image pixel.
        fill: the projected box's larger side over S.
        off_centre: box centre to crop centre, in box sizes (the larger side).
        border: the crop reaches past the full frame (black there).
        truncated: some true keypoint lies outside the full frame.
    """

    image: np.ndarray
    uv_gt: np.ndarray
    zoom: float
    fill: float
    off_centre: float
    border: bool
    truncated: bool


def crop_of(inp: np.ndarray, crop: CropMap, K_full: np.ndarray, T_cam_obj: np.ndarray, points_3d: np.ndarray,
            frame_size: tuple[int, int]) -> KeypointCrop:
    """A :class:`KeypointCrop` of the network input ``inp`` (S, S, 3) cut from a full frame by ``crop``.

    Args:
        K_full: (3, 3) intrinsics of the full frame; ``frame_size``: its (W, H).
        T_cam_obj: (4, 4) the true pose; points_3d: (K, 3) the detector's points.
    """
    W, H = frame_size
    uv_full = project_points(points_3d, T_cam_obj, K_full)
    box = crop.image_to_crop(project_points(SEED_BOX_CORNERS, T_cam_obj, K_full))
    S = inp.shape[1]
    side = float(np.max(box.max(axis=0) - box.min(axis=0)))
    centre = (box.max(axis=0) + box.min(axis=0)) / 2
    ends = crop.crop_to_image(np.array([[0.0, 0.0], [crop.width - 1.0, crop.height - 1.0]]))
    border = bool(ends[0, 0] < 0 or ends[0, 1] < 0 or ends[1, 0] > W - 1 or ends[1, 1] > H - 1)
    return KeypointCrop(np.ascontiguousarray(inp), crop.image_to_crop(uv_full), float(crop.scale), side / S,
                        float(np.linalg.norm(centre - (S - 1) / 2) / max(side, 1e-9)), border,
                        bool(not in_image(uv_full, W, H).all()))


def validation_crops(n: int, seed: int, input_size: int, render_options: dict | None = None,
                     progress=None) -> list[tuple]:
    """The first ``n`` crops with the ship in view of a training run's validation set (``seed``:
    the run's seed + 1,000,003; ``render_options``: its generator options) -> a list of
    ``(crop image (S, S, 3), CropMap full frame -> crop, K_full (3, 3), T_cam_obj (4, 4), (W, H))``,
    what :func:`measure` takes (the detector's points are projected there)."""
    from xwing.geometry.camera import seed_camera
    from xwing.render.generator import GeneratorConfig, SampleGenerator

    opts = {"view": "crop", "crop_size": input_size, **(render_options or {})}
    camera = seed_camera()
    gen = SampleGenerator(GeneratorConfig(**opts), camera)
    out, position = [], 0
    while len(out) < n and position < 20 * n + 20:
        g = gen.sample(np.random.default_rng([seed, position]))  # as RenderedDataset's position p
        position += 1
        if g.ship_visible and g.crop is not None:
            out.append((g.image, g.crop, camera.K, g.T_cam_obj, (camera.width, camera.height)))
            if progress is not None:
                progress()
    return out


def zoom_crops(estimator, dataset, limit: int | None = None, progress=None) -> tuple[list, int]:
    """For each image of ``dataset`` (:class:`~xwing.io.dataset.SeedDataset`), the crop of the
    pipeline's last zoomed pass (``estimator`` with ``refine="zoom"``) -> (crops as
    :func:`validation_crops` gives them, number of images without a zoomed pass)."""
    cam = dataset.camera
    n = len(dataset) if limit is None else min(limit, len(dataset))
    out, missed = [], 0
    for i in range(n):
        s = dataset[i]
        est = estimator.estimate(s.image, refine="zoom")
        zoomed = [p for p in est.passes if p.stage.startswith("zoom")]
        if progress is not None:
            progress()
        if not zoomed:
            missed += 1
            continue
        crop = zoomed[-1].crop
        out.append((crop.warp(s.image), crop, cam.K, s.T_cam_obj, (cam.width, cam.height)))
    return out, missed


def measure(detector, raw_crops: list) -> dict:
    """Run ``detector`` on each crop (from :func:`validation_crops` or :func:`zoom_crops`) ->
    the figures of the module doc (overall, ``by_fill``, ``by_zoom``, ``by_truncated``) and ``make_up``."""
    pts = np.asarray(detector.points_3d, np.float64)
    perm = np.asarray(detector.roll180_perm)
    codec = detector.codec
    rows = []
    for inp, crop, K_full, T, size in raw_crops:
        c = crop_of(inp, crop, K_full, T, pts, size)
        det = detector(c.image)
        S = c.image.shape[0]
        on = codec.on_canvas(c.uv_gt, S, S)
        if not on.any():
            continue
        e = np.linalg.norm(np.asarray(det.uv) - c.uv_gt, axis=1)
        e_alt = np.linalg.norm(np.asarray(det.uv_alt if det.uv_alt is not None else det.uv[perm]) - c.uv_gt, axis=1)
        free = e if e[on].mean() <= e_alt[on].mean() else e_alt
        rows.append((c, e[on], free[on]))
    return summarise(rows)


def _med(a) -> float:
    return float(np.median(a)) if len(a) else float("nan")


def summarise(rows: list) -> dict:
    """``rows``: (KeypointCrop, true-labelling errors (k,), roll-free errors (k,)) in crop px."""
    if not rows:
        return {"n_crops": 0}

    def figures(sel):
        r = [rows[i] for i in sel]
        if not r:
            return {"n_crops": 0}
        true_c = np.concatenate([e for _, e, _ in r])
        free_c = np.concatenate([f for _, _, f in r])
        true_i = np.concatenate([e / c.zoom for c, e, _ in r])
        free_i = np.concatenate([f / c.zoom for c, _, f in r])
        return {"n_crops": len(r), "kp_err_crop_px": _med(true_c), "kp_err_crop_px_rollfree": _med(free_c),
                "kp_err_image_px": _med(true_i), "kp_err_image_px_rollfree": _med(free_i),
                "relabelled_share": float(np.mean([np.median(e) > np.median(f) + 1e-9 for _, e, f in r]))}

    crops = [c for c, _, _ in rows]
    fill = np.array([c.fill for c in crops])
    zoom = np.array([c.zoom for c in crops])
    out = figures(range(len(rows)))
    out["make_up"] = {
        "fill_median": _med(fill), "fill_p10": float(np.percentile(fill, 10)),
        "fill_p90": float(np.percentile(fill, 90)),
        "zoom_median": _med(zoom), "upsampled_share": float(np.mean(zoom > 1.05)),
        "border_share": float(np.mean([c.border for c in crops])),
        "truncated_share": float(np.mean([c.truncated for c in crops])),
        "off_centre_median": _med([c.off_centre for c in crops]),
    }
    out["by_fill"] = {f"{lo:g}-{hi:g}": figures(np.flatnonzero((fill >= lo) & (fill < hi)))
                      for lo, hi in zip(FILL_BINS[:-1], FILL_BINS[1:])}
    out["by_zoom"] = {f"{lo:g}-{hi:g}": figures(np.flatnonzero((zoom >= lo) & (zoom < hi)))
                      for lo, hi in zip(ZOOM_BINS[:-1], ZOOM_BINS[1:])}
    out["by_truncated"] = {str(t).lower(): figures([i for i, c in enumerate(crops) if c.truncated == t])
                           for t in (False, True)}
    return out
