"""``xwing eval MODEL DATASET --out DIR``: keypoint and pose accuracy on a labelled set.

Definitions (all with :mod:`xwing.geometry.metrics`; rates are fractions in [0, 1]):

* ``kp_err_px_*``, ``pck_*px``: the seed's 8 box corners, **all 8** (also those
  outside the image), projected with the final estimated pose, against their
  true projections; pooled over corners and images.
* ``kp_net_err_px_median``: the raw network keypoints (image pixels) against the
  true projections of the points the network predicts.
* ``rot_err_deg_median``, ``trans_err_rel_median``, ``speed_score_mean``: per image.
* ``add_01d`` / ``adi_01d``: share of images with ADD / ADI below 10 % of the model
  diameter, on 500 points sampled evenly on the mesh surface (``xwing.model.mesh``).
  ``proj_5px``: mean 2D projection error of
  those points below 5 px.
* ``flip_rate``: share of images with rotation error > 90 deg.
* ``ms_per_image``: batch 1, inference + decode + PnP (+ refinement), image
  already in memory.
* An image where no pose is found counts as an infinite error and a failure in
  every rate (its rotation error is infinite, so it counts in ``flip_rate`` too);
  ``success_rate`` says how many had a pose. Non-finite values are written as
  JSON ``null``.

Subsets: ``in_image`` (all 8 true corners inside the image) and ``truncated``
(at least one outside); ``in_view`` (at least half the mesh inside the image: the
images where a pose can be asked for; the others include ships wholly out of
view, where "no pose" is the right answer but counts as a failure overall);
``star_field`` and ``cluttered`` (the background right
around the ship, see :func:`background_clutter`: below or above
``CLUTTER_THRESHOLD``); each with the same keys, under those names in
``metrics.json``. ``stages`` holds, per pass (first, locate, zoom, align), the
median corner error, the share below 1 px and 0.5 px and ms per image, overall,
for small ships (distance > 1.8) and for star-field and cluttered backgrounds.

MODEL: an ONNX file, ``oracle[:noise=..,outliers=..,seed=..]`` (true keypoints
plus noise: checks the pipeline without a network), or a checkpoint where torch
is importable.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from xwing.model.keypoints import SEED_BOX_CORNERS, model_diameter
from xwing.model.object import N_MODEL_POINTS, ObjectModel
from xwing.geometry.metrics import adi, add, keypoint_errors_px, proj_2d, rotation_error_deg, speed_score, translation_error_rel
from xwing.geometry.projection import in_image, project_points

METRIC_KEYS = ("n_images", "success_rate", "kp_err_px_median", "kp_err_px_mean", "pck_1px", "pck_2px", "pck_5px",
               "rot_err_deg_median", "trans_err_rel_median", "add_01d", "adi_01d", "proj_5px", "speed_score_mean",
               "flip_rate", "ms_per_image", "kp_net_err_px_median")
SMALL_SHIP_DISTANCE = 1.8
#: Mean gradient magnitude (grey levels per pixel) around the ship that splits "star_field"
#: (dark, nearly flat surroundings: on the test set, plain star fields and the dark parts of
#: nebulae, about a third of the images) from "cluttered" (nebula structure at the ship's edges).
CLUTTER_THRESHOLD = 2.5
#: The band around the true silhouette where clutter is measured: the pixels that decide
#: whether the ship's outline stands out (what both the network and the alignment look at).
CLUTTER_BAND_PX = (2, 8)


@lru_cache(maxsize=4)
def model_points(mesh_path: str = "", fit_seed_box: bool = False, n: int = 500
                 ) -> tuple[np.ndarray, float, np.ndarray]:
    """(surface points (n, 3) for ADD/ADI, their diameter, mesh vertices (V, 3) for visibility)
    of the :class:`~xwing.model.object.ObjectModel` (default: the procedural X-wing, numpy only)."""
    obj = ObjectModel.load(mesh_path, fit_seed_box)
    pts = obj.model_points if n == N_MODEL_POINTS else obj.mesh.surface_points(n, seed=0)
    return pts, (obj.diameter if n == N_MODEL_POINTS else model_diameter(pts)), obj.vertices


@dataclass
class ImageRecord:
    """One evaluated image (or video frame).

    Attributes:
        T_gt: (4, 4) true pose; T_est: (4, 4) estimate or None (no pose).
        corners_gt, corners_est: (8, 2) projected box corners (est NaN when no pose).
        in_image, n_inside: all true corners inside the image; how many are.
        net_err_px: (K,) raw network keypoint errors (image px), or None.
        ms: time for this image.
        stages: stage name -> (8,) corner errors of that pass's pose (for per-stage stats).
        clutter: :func:`background_clutter` of the image (NaN: not measured).
    """

    T_gt: np.ndarray
    T_est: np.ndarray | None
    corners_gt: np.ndarray
    corners_est: np.ndarray
    in_image: bool
    n_inside: int = 8
    net_err_px: np.ndarray | None = None
    ms: float = math.nan
    stages: dict = field(default_factory=dict)
    stage_ms: dict = field(default_factory=dict)
    clutter: float = math.nan

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self.T_gt[:3, 3]))

    @property
    def corner_err(self) -> np.ndarray:
        if self.T_est is None:
            return np.full(8, np.inf)
        return keypoint_errors_px(self.corners_est, self.corners_gt)


def make_record(T_est: np.ndarray | None, T_gt: np.ndarray, camera, corners_3d: np.ndarray = SEED_BOX_CORNERS,
                uv_net: np.ndarray | None = None, points_3d: np.ndarray | None = None,
                ms: float = math.nan) -> ImageRecord:
    corners_gt = project_points(corners_3d, T_gt, camera.K, camera.dist)
    corners_est = (np.full((8, 2), np.nan) if T_est is None
                   else project_points(corners_3d, T_est, camera.K, camera.dist))
    net_err = None
    if uv_net is not None and points_3d is not None:
        net_err = keypoint_errors_px(uv_net, project_points(points_3d, T_gt, camera.K, camera.dist))
    inside = in_image(corners_gt, camera.width, camera.height)
    return ImageRecord(T_gt, T_est, corners_gt, corners_est, bool(inside.all()), int(inside.sum()), net_err, ms)


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
    import cv2

    from xwing.infer.refine.raster import rasterize

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
        a_ok.append(add(Re, te, Rg, tg, pts) < 0.1 * diameter)
        s_ok.append(adi(Re, te, Rg, tg, pts) < 0.1 * diameter)
        p_ok.append(proj_2d(Re, te, Rg, tg, pts, camera.K) < 5.0)
    net = [r.net_err_px for r in records if r.net_err_px is not None]
    ms = [r.ms for r in records if np.isfinite(r.ms)]
    out.update({
        "success_rate": float(np.mean([r.T_est is not None for r in records])),
        "kp_err_px_median": _median(kp),
        "kp_err_px_mean": float(np.mean(kp)),
        "pck_1px": float(np.mean(kp <= 1.0)),
        "pck_2px": float(np.mean(kp <= 2.0)),
        "pck_5px": float(np.mean(kp <= 5.0)),
        "rot_err_deg_median": _median(rot),
        "trans_err_rel_median": _median(trel),
        "add_01d": float(np.mean(a_ok)),
        "adi_01d": float(np.mean(s_ok)),
        "proj_5px": float(np.mean(p_ok)),
        "speed_score_mean": float(np.mean(sp)),
        "flip_rate": float(np.mean(np.asarray(rot) > 90.0)),
        "ms_per_image": float(np.mean(ms)) if ms else math.nan,
        "kp_net_err_px_median": _median(np.concatenate(net)) if net else math.nan,
    })
    return out


def summarize_subsets(records: list[ImageRecord], camera, mesh: tuple[str, bool] = ("", False)) -> dict:
    """``summarize`` over all records, plus ``in_image``, ``truncated``, ``in_view`` (at least
    half the ship in the image, as for tracking's ``lost_rate``), ``star_field`` and
    ``cluttered`` sub-dicts."""
    out = summarize(records, camera, mesh)
    out["in_image"] = summarize([r for r in records if r.in_image], camera, mesh)
    out["truncated"] = summarize([r for r in records if not r.in_image], camera, mesh)
    out["in_view"] = summarize([r for r in records if ship_in_view(r.T_gt, camera, mesh=mesh)], camera, mesh)
    for name, rs in background_subsets(records).items():
        out[name] = summarize(rs, camera, mesh)
    return out


def background_subsets(records: list[ImageRecord]) -> dict:
    """{"star_field": records below ``CLUTTER_THRESHOLD``, "cluttered": at or above it};
    records whose clutter was not measured are in neither."""
    return {"star_field": [r for r in records if r.clutter < CLUTTER_THRESHOLD],
            "cluttered": [r for r in records if r.clutter >= CLUTTER_THRESHOLD]}


STAGE_ORDER = ("first", "locate", "zoom", "align")


def stage_stats(records: list[ImageRecord]) -> dict:
    """Per stage ("first", "locate", "zoom", "align"): median corner error of the pose the
    pipeline holds after that stage, share below 1 px and 0.5 px, ms per image (all
    images, and small ships apart). An image that skipped a stage keeps its earlier
    pose; one without any accepted pose counts as inf."""
    order = {name: k for k, name in enumerate(STAGE_ORDER)}
    names = sorted({k for r in records for k in r.stages}, key=lambda s: (order.get(s, 9), s))

    def err_after(r: ImageRecord, name: str) -> np.ndarray:
        for prev in reversed(names[:names.index(name) + 1]):
            if prev in r.stages:
                return r.stages[prev]
        return np.full(8, np.inf)

    out = {}
    for name in names:
        def stats(rs):
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


def jitter_deg(T_est: list, T_gt: list) -> float:
    """RMS over consecutive frame pairs (both with a pose) of the angle of
    ``dR_est dR_gt^T`` with ``dR = R_t R_{t-1}^T``; NaN with no pair."""
    angles = []
    for i in range(1, len(T_est)):
        a, b, g0, g1 = T_est[i - 1], T_est[i], T_gt[i - 1], T_gt[i]
        if a is None or b is None or g0 is None or g1 is None:
            continue
        dR_est = b[:3, :3] @ a[:3, :3].T
        dR_gt = g1[:3, :3] @ g0[:3, :3].T
        angles.append(rotation_error_deg(dR_est, dR_gt))
    return float(np.sqrt(np.mean(np.square(angles)))) if angles else math.nan


def ship_in_view(T_gt: np.ndarray, camera, min_share: float = 0.5, mesh: tuple[str, bool] = ("", False)) -> bool:
    """At least ``min_share`` of the mesh's projected vertices inside the image."""
    _, _, verts = model_points(*mesh)
    uv = project_points(verts, T_gt, camera.K, camera.dist)
    return bool(in_image(uv, camera.width, camera.height).mean() >= min_share)


def lost_rate(statuses: list[str], T_gt: list, camera, mesh: tuple[str, bool] = ("", False)) -> float:
    """Among frames with truth and the ship at least half in view, the share ``lost``."""
    sel = [s for s, T in zip(statuses, T_gt) if T is not None and ship_in_view(T, camera, mesh=mesh)]
    return float(np.mean([s == "lost" for s in sel])) if sel else math.nan


# --- evaluation of a model on a dataset ----------------------------------------------------------


def evaluate(estimator, dataset, progress: bool = False, limit: int | None = None) -> tuple[dict, list[ImageRecord]]:
    """Run ``estimator`` (:class:`~xwing.infer.estimator.PoseEstimator`) over a
    :class:`~xwing.io.dataset.SeedDataset` -> (metrics dict, per-image records)."""
    from xwing.infer.oracle import OracleDetector

    det = estimator.detector
    oracle = isinstance(det, OracleDetector)
    cam = dataset.camera
    mesh = (estimator.config.mesh, estimator.config.fit_seed_box)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    records = []
    it = range(n)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="eval", unit="img")
    for i in it:
        sample = dataset[i]
        if oracle:
            det.set_truth(sample.T_cam_obj, cam)
        t0 = time.perf_counter()
        est = estimator.estimate(sample.image)
        ms = (time.perf_counter() - t0) * 1e3
        rec = make_record(est.T_cam_obj if est.ok else None, sample.T_cam_obj, cam, estimator.corners_3d,
                          est.uv_px, estimator.points_3d, ms)
        rec.clutter = background_clutter(sample.image, sample.T_cam_obj, cam, mesh)
        last_ok_err = np.full(8, np.inf)
        for p in est.passes:
            # What the pipeline would answer after this stage: its pose if accepted, else the
            # last accepted one before it (a rejected zoom/alignment keeps the earlier pose).
            kind = next((k for k in ("zoom", "first") if p.stage.startswith(k)), p.stage)  # first_native: "first"
            if p.ok:
                last_ok_err = keypoint_errors_px(
                    project_points(estimator.corners_3d, p.T_cam_obj, cam.K, cam.dist), rec.corners_gt)
            rec.stages[kind] = last_ok_err
            rec.stage_ms[kind] = rec.stage_ms.get(kind, 0.0) + p.ms
        records.append(rec)
    metrics = summarize_subsets(records, cam, mesh)
    metrics["refine"] = estimator.config.refine
    metrics["stages"] = stage_stats(records)
    return metrics, records


# --- report and plots ---------------------------------------------------------------------------


def _fmt(v) -> str:
    """Raw metric -> table cell: inf stays "inf", NaN (no data) is "n/a"."""
    if v is None:
        return "n/a"
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "n/a"
        return "inf" if math.isinf(v) else f"{v:.4g}"
    return str(v)


def write_report(out_dir: Path, metrics: dict, title: str, notes: list[str] = ()) -> None:
    from xwing.io.atomic import atomic_write_text

    subsets = [s for s in ("in_image", "truncated", "in_view", "star_field", "cluttered") if s in metrics]
    rows = ["| metric | all | " + " | ".join(subsets) + " |", "|---" * (len(subsets) + 2) + "|"]
    safe = metrics
    for k in METRIC_KEYS:
        rows.append(f"| {k} | {_fmt(safe.get(k))} | " + " | ".join(_fmt(safe[s].get(k)) for s in subsets) + " |")
    lines = [f"# {title}", "", *rows, ""]
    if safe.get("stages"):
        groups = [g for g in ("small_ships", "star_field", "cluttered") if g in next(iter(safe["stages"].values()))]
        lines += ["## Per stage", "", "Median corner error (px) / share below 1 px / share below 0.5 px.", "",
                  "| stage | all | ms | " + " | ".join(g.replace("_", " ") for g in groups) + " |",
                  "|---" * (len(groups) + 3) + "|"]

        def cell(s):
            return f"{_fmt(s['kp_err_px_median'])} / {_fmt(s['below_1px'])} / {_fmt(s['below_05px'])}"

        for name, s in safe["stages"].items():
            lines.append(f"| {name} | {cell(s)} | {_fmt(s['ms_per_image'])} | "
                         + " | ".join(f"{cell(s[g])} (n={s[g]['n_images']})" for g in groups) + " |")
        lines.append("")
    for note in notes:
        lines.append(f"- {note}")
    atomic_write_text(out_dir / "report.md", "\n".join(lines) + "\n")


def write_plots(out_dir: Path, records: list[ImageRecord]) -> str | None:
    """Error CDFs, per-keypoint error, error vs distance and vs truncation -> ``plots.png``.
    Returns a note when matplotlib is missing (plots skipped)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plots skipped: matplotlib is not installed (pip install 'xwing[plots]')"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # log axes over failed images (inf, clipped) warn; the plot is right
        _plots(out_dir, records, plt)
    return None


def _plots(out_dir: Path, records: list[ImageRecord], plt) -> None:
    err = np.stack([r.corner_err for r in records])  # (n, 8)
    fig, ax = plt.subplots(2, 2, figsize=(10, 8))
    e = np.sort(np.where(np.isfinite(err.ravel()), err.ravel(), 1e9))
    ax[0, 0].plot(e, np.arange(1, len(e) + 1) / len(e))
    ax[0, 0].set(xscale="log", xlabel="corner error (px)", ylabel="share of corners", title="corner error CDF",
                 xlim=(0.01, 100))
    med = [np.median(err[:, k]) for k in range(8)]
    ax[0, 1].bar(range(8), med)
    ax[0, 1].set(xlabel="corner", ylabel="median error (px)", title="per-keypoint error")
    dist = np.array([r.distance for r in records])
    img_med = np.median(err, axis=1)
    ax[1, 0].scatter(dist, np.minimum(img_med, 100), s=6)
    ax[1, 0].set(xlabel="distance", ylabel="median corner error (px)", yscale="log", title="error vs distance")
    n_out = np.array([8 - r.n_inside for r in records])
    for k in range(9):
        sel = n_out == k
        if sel.any():
            ax[1, 1].boxplot(np.minimum(img_med[sel], 100), positions=[k], widths=0.6)
    ax[1, 1].set(xlabel="true corners outside the image", ylabel="median corner error (px)", yscale="log",
                 title="error vs truncation")
    fig.tight_layout()
    fig.savefig(out_dir / "plots.png", dpi=90)
    plt.close(fig)



# --- CLI ------------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument("model", help="ONNX model (or a checkpoint where torch is installed, or 'oracle[:noise=..]')")
    parser.add_argument("dataset", help="seed-format directory (N.jpg, N_mat.json, camera_info.json)")
    parser.add_argument("--out", required=True, help="output directory (metrics.json, report.md, plots.png)")
    # Default: the best measured (shipped model, 300 test images: box-corner PCK@1px
    # 0.03 / 0.05 / 0.23 and ADD-0.1d 0.23 / 0.24 / 0.35 for none / zoom / full).
    parser.add_argument("--refine", choices=("none", "zoom", "full"), default="full",
                        help="none: first pass only; zoom: plus zoomed passes around the ship; full: plus silhouette "
                             "alignment (default full, the best measured)")
    parser.add_argument("--input-size", type=int, default=0, help="network input side (default: the model's)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    parser.add_argument("--providers", nargs="+", default=None, help="ONNX Runtime execution providers")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: one per core)")
    from xwing.cli.args import add_object_arguments

    add_object_arguments(parser)


def run(args) -> int:
    from xwing.io.dataset import SeedDataset
    from xwing.io.atomic import atomic_write_json, json_safe
    from xwing.cli.args import load_model as load_detector
    from xwing.infer.estimator import PipelineConfig, PoseEstimator

    dataset = SeedDataset(args.dataset)
    detector = load_detector(args.model, args.providers, args.threads)
    config = PipelineConfig(input_size=args.input_size, refine=args.refine, mesh=args.mesh,
                            fit_seed_box=args.fit_seed_box, side=args.side)
    estimator = PoseEstimator(detector, dataset.camera, config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics, records = evaluate(estimator, dataset, progress=True, limit=args.limit)
    metrics["model"] = str(args.model)
    metrics["dataset"] = str(args.dataset)
    metrics["config"] = config.to_dict()
    notes = []
    note = write_plots(out, records)
    if note:
        notes.append(note)
    atomic_write_json(out / "metrics.json", json_safe(metrics))
    write_report(out, metrics, f"xwing eval: {Path(args.model).name} on {args.dataset} (refine {args.refine})", notes)
    safe = metrics
    print(f"{safe['n_images']} images: corner error median {_fmt(safe['kp_err_px_median'])} px, "
          f"rotation error median {_fmt(safe['rot_err_deg_median'])} deg, ADD-0.1d {_fmt(safe['add_01d'])}, "
          f"flip rate {_fmt(safe['flip_rate'])}, {_fmt(safe['ms_per_image'])} ms/image")
    print(f"wrote {out / 'metrics.json'}, {out / 'report.md'}" + ("" if note else f", {out / 'plots.png'}"))
    return 0
