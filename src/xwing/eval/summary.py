"""Summaries of evaluated images: the metric keys, their subsets and per-stage figures.

Definitions (all with :mod:`xwing.geometry.metrics`; rates are fractions in [0, 1]):

* ``kp_err_px_*``, ``pck_*px``: the seed's 8 box corners, **all 8** (also those
  outside the image), projected with the final estimated pose, against their
  true projections; pooled over corners and images.
* ``kp_nmae``: the seed's own yardstick, its normalised mean absolute error of the
  8 box corners: corner coordinates in the seed's pixel-edge convention divided by
  the image's width and height, the mean of ``|x_est - x_gt|`` and ``|y_est - y_gt|``
  over all 8 corners of every image **with a pose** (images without one are left
  out; ``success_rate`` counts them); :func:`xwing.geometry.metrics.keypoint_nmae`.
* ``kp_net_err_px_median``: the raw network keypoints (image pixels) against the
  true projections of the points the network predicts.
* ``rot_err_deg_median``, ``trans_err_rel_median``, ``speed_score_mean``: per image.
* ``add_01d`` / ``adi_01d``: share of images with ADD / ADI below 10 % of the model
  diameter, on 500 points sampled evenly on the mesh surface (``xwing.model.mesh``).
  ``proj_5px``: mean 2D projection error of those points below 5 px.
* ``flip_rate``: share of images with rotation error > 90 deg.
* ``correct_share``: share of images whose pose is correct as the confidence defines
  it (rotation < 5 deg and box-corner median < 2 px, :func:`xwing.eval.calibration.is_correct`).
* ``ms_per_image``: batch 1, inference + decode + PnP (+ refinement), image
  already in memory.
* An image where no pose is found counts as an infinite error and a failure in
  every rate (its rotation error is infinite, so it counts in ``flip_rate`` too),
  except in ``kp_nmae``, which leaves it out as the seed's definition does;
  ``success_rate`` says how many had a pose. Non-finite values are written as
  JSON ``null``.

Subsets: ``in_image`` (all 8 true corners inside the image) and ``truncated``
(at least one outside); ``in_view`` (at least half the mesh inside the image: the
images where a pose can be asked for; the others include ships wholly out of
view, where "no pose" is the right answer but counts as a failure overall);
``truncated_in_view`` (both: the ships cut by the frame that still show half of themselves);
``star_field`` and ``cluttered`` (the background right around the ship, see
:func:`background_clutter`: below or above ``CLUTTER_THRESHOLD``); each with the
same keys. ``stages`` holds, per pass (:func:`xwing.infer.refine.stage_order`),
the median corner error, the share below 1 px and 0.5 px and ms per image,
overall, for small ships (distance > ``SMALL_SHIP_DISTANCE``) and for star-field
and cluttered backgrounds.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from xwing.eval.calibration import is_correct
from xwing.eval.records import ImageRecord, model_points, ship_in_view
from xwing.geometry.metrics import (
    add,
    adi,
    keypoint_nmae,
    pck,
    proj_2d,
    rotation_error_deg,
    speed_score,
    translation_error_rel,
    within_diameter,
)
from xwing.infer.refine import stage_order
from xwing.infer.refine.raster import rasterize
from xwing.model.object import ObjectModel

METRIC_KEYS = ("n_images", "success_rate", "kp_err_px_median", "kp_err_px_mean", "kp_nmae", "pck_1px", "pck_2px",
               "pck_5px", "rot_err_deg_median", "trans_err_rel_median", "add_01d", "adi_01d", "proj_5px",
               "speed_score_mean", "flip_rate", "correct_share", "ms_per_image", "kp_net_err_px_median")
SMALL_SHIP_DISTANCE = 1.8
#: Mean gradient magnitude (grey levels per pixel) around the ship that splits "star_field"
#: (dark, nearly flat surroundings: on the test set, plain star fields and the dark parts of
#: nebulae, about a third of the images) from "cluttered" (nebula structure at the ship's edges).
CLUTTER_THRESHOLD = 2.5
#: The band around the true silhouette where clutter is measured: the pixels that decide
#: whether the ship's outline stands out (what both the network and the alignment look at).
CLUTTER_BAND_PX = (2, 8)
#: Stage names in pipeline order; the refiners name their stages.
STAGE_ORDER = stage_order()


def background_clutter(image_rgb: np.ndarray, T_gt: np.ndarray, camera, mesh: tuple[str, bool] = ("", False)
                       ) -> float:
    """How busy the background is right around the ship: the mean gradient magnitude
    (grey levels per pixel, Sobel / 8) over the pixels ``CLUTTER_BAND_PX`` away from
    the true silhouette (rasterised in numpy from ``mesh``). A flat dark
    star field gives about 1-2, nebula structure 3-5; NaN when the ship is not in view.

    Args:
        image_rgb: (H, W, 3) uint8. T_gt: (4, 4) the true pose. camera: its Camera.
        mesh: (mesh file, fit_seed_box) as in :meth:`xwing.model.object.ObjectModel.load`.
    """
    obj = ObjectModel.load(*mesh)
    verts, faces = obj.vertices, obj.faces
    h, w = image_rgb.shape[:2]
    sil = (rasterize(verts, faces, T_gt, camera.K, w, h, supersample=1, want_depth=False).coverage > 0
           ).astype(np.uint8)
    if sil.sum() < 4:
        return math.nan
    lo, hi = CLUTTER_BAND_PX
    band = (cv2.dilate(sil, np.ones((2 * hi + 1, 2 * hi + 1), np.uint8))
            - cv2.dilate(sil, np.ones((2 * lo + 1, 2 * lo + 1), np.uint8))) > 0
    if not band.any():
        return math.nan
    grey = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    mag = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)) / 8.0
    return float(mag[band].mean())


def _median(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.median(x)) if x.size else math.nan


def summarize(records: list[ImageRecord], camera, mesh: tuple[str, bool] = ("", False)) -> dict:
    """The metric keys (see the module doc) over ``records``; ADD/ADI/projection on ``mesh``
    ((file, fit_seed_box), default the procedural X-wing)."""
    pts, diameter, _ = model_points(*mesh)
    n = len(records)
    out: dict = {"n_images": n}
    if n == 0:
        return out | {k: None for k in METRIC_KEYS if k != "n_images"}
    kp = np.concatenate([r.corner_err for r in records])  # (8 n,)
    # (n, 8, 2) corners for PCK; no pose: NaN corners (an infinite error, as corner_err says)
    est = np.stack([r.corners_est if r.T_est is not None else np.full_like(r.corners_gt, np.nan) for r in records])
    gt = np.stack([r.corners_gt for r in records])
    posed = np.array([r.T_est is not None for r in records])
    rot, trel, sp, a_ok, s_ok, p_ok = [], [], [], [], [], []
    for r in records:
        if r.T_est is None:
            rot.append(math.inf), trel.append(math.inf), sp.append(math.inf)
            a_ok.append(False), s_ok.append(False), p_ok.append(False)
            continue
        Re, te, Rg, tg = r.T_est[:3, :3], r.T_est[:3, 3], r.T_gt[:3, :3], r.T_gt[:3, 3]
        rot.append(rotation_error_deg(Re, Rg))
        trel.append(translation_error_rel(te, tg))
        sp.append(speed_score(Re, te, Rg, tg))
        a_ok.append(within_diameter(add(Re, te, Rg, tg, pts), diameter))
        s_ok.append(within_diameter(adi(Re, te, Rg, tg, pts), diameter))
        p_ok.append(proj_2d(Re, te, Rg, tg, camera.K, pts) < 5.0)
    net = [r.net_err_px for r in records if r.net_err_px is not None]
    ms = [r.ms for r in records if np.isfinite(r.ms)]
    out.update({
        "success_rate": float(np.mean(posed)),
        "kp_err_px_median": _median(kp),
        "kp_err_px_mean": float(np.mean(kp)),
        "kp_nmae": keypoint_nmae(est[posed], gt[posed], camera.width, camera.height),
        "pck_1px": pck(est, gt, 1.0),
        "pck_2px": pck(est, gt, 2.0),
        "pck_5px": pck(est, gt, 5.0),
        "rot_err_deg_median": _median(rot),
        "trans_err_rel_median": _median(trel),
        "add_01d": float(np.mean(a_ok)),
        "adi_01d": float(np.mean(s_ok)),
        "proj_5px": float(np.mean(p_ok)),
        "speed_score_mean": float(np.mean(sp)),
        "flip_rate": float(np.mean(np.asarray(rot) > 90.0)),
        "correct_share": float(np.mean([is_correct(r) for r in records])),
        "ms_per_image": float(np.mean(ms)) if ms else math.nan,
        "kp_net_err_px_median": _median(np.concatenate(net)) if net else math.nan,
    })
    return out


def summarize_subsets(records: list[ImageRecord], camera, mesh: tuple[str, bool] = ("", False)) -> dict:
    """``summarize`` over all records, plus ``in_image``, ``truncated``, ``in_view`` (at least
    half the ship in the image, as for tracking's ``lost_rate``), ``truncated_in_view``,
    ``star_field`` and ``cluttered`` sub-dicts."""
    out = summarize(records, camera, mesh)
    in_view = [ship_in_view(r.T_gt, camera, mesh=mesh) for r in records]
    out["in_image"] = summarize([r for r in records if r.in_image], camera, mesh)
    out["truncated"] = summarize([r for r in records if not r.in_image], camera, mesh)
    out["in_view"] = summarize([r for r, v in zip(records, in_view, strict=True) if v], camera, mesh)
    out["truncated_in_view"] = summarize([r for r, v in zip(records, in_view, strict=True) if v and not r.in_image],
                                         camera, mesh)
    for name, rs in background_subsets(records).items():
        out[name] = summarize(rs, camera, mesh)
    return out


def background_subsets(records: list[ImageRecord]) -> dict:
    """{"star_field": records below ``CLUTTER_THRESHOLD``, "cluttered": at or above it};
    records whose clutter was not measured are in neither."""
    return {"star_field": [r for r in records if r.clutter < CLUTTER_THRESHOLD],
            "cluttered": [r for r in records if r.clutter >= CLUTTER_THRESHOLD]}


def stage_stats(records: list[ImageRecord]) -> dict:
    """Per stage (in ``STAGE_ORDER``): median corner error of the pose the pipeline holds
    after that stage, share below 1 px and 0.5 px, ms per image (all images, and small
    ships apart). An image that skipped a stage keeps its earlier pose; one without any
    accepted pose counts as inf."""
    order = {name: k for k, name in enumerate(STAGE_ORDER)}
    names = sorted({k for r in records for k in r.stages}, key=lambda s: (order.get(s, 9), s))

    def err_after(r: ImageRecord, name: str) -> np.ndarray:
        for prev in reversed(names[:names.index(name) + 1]):
            if prev in r.stages:
                return r.stages[prev]
        return np.full(8, np.inf)

    out = {}
    for name in names:
        def stats(rs, name=name):
            e = np.concatenate([err_after(r, name) for r in rs]) if rs else np.zeros(0)
            ms = [r.stage_ms[name] for r in rs if name in r.stage_ms]
            return {"n_images": len(rs), "n_run": len(ms), "kp_err_px_median": _median(e),
                    "below_1px": float(np.mean(e < 1.0)) if e.size else math.nan,
                    "below_05px": float(np.mean(e < 0.5)) if e.size else math.nan,
                    "ms_per_image": float(np.mean(ms)) if ms else math.nan}

        out[name] = stats(records) | {
            "small_ships": stats([r for r in records if r.distance > SMALL_SHIP_DISTANCE])} | {
            k: stats(rs) for k, rs in background_subsets(records).items()}
    return out
