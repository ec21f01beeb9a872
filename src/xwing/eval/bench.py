"""``xwing bench --out DIR``: our pipeline against the seed's recipe, side by side, in one run.

Parts (``--only`` runs one; the others already in ``DIR/bench.json`` are kept):

``model``
    ONNX Runtime (CPU) latency of one image and throughput of batches of 16, at
    256 x 256 for both recipes (the seed's only size) and at 128 px and each
    model's own input size, plus the codec's decode time; at each ``--threads``
    setting (default 1 and one per core: on a shared CPU fewer threads can
    win), the faster reported. "ours" is the shipped
    ``models/xwing.onnx`` if present, else ``--ours-ckpt``, else a randomly
    initialised ``--preset fast`` net; "seed" is ``--seed-ckpt`` or a randomly
    initialised ``--preset seed`` net (random weights cost the same time).
    Making a random net needs torch (imported here only, never for ONNX files).
``track``
    End-to-end tracking fps (:func:`xwing.cli.track.run_tracking`: video decoding,
    inference, decoding, PnP, tracking) on one rendered flight: ours runs the
    tracker, the seed recipe runs full frames every frame (``per_frame``) with
    its integer-argmax codec and PnP. Two modes: ``cost`` (the oracle detector
    that pays each network's full cost, inference + decode, but answers with the
    true keypoints plus 1 px noise, so both recipes make the same decisions and
    only compute differs) and ``model`` (the trained networks themselves, where
    given: a network that loses the ship pays for full-frame searches). Each
    recipe at each ``--track-threads`` value; the faster is reported.
``render``
    The data engine's img/s: full 256 x 256 frames and 128 px training crops.
``accuracy``
    ``xwing eval`` metrics (all images, ``in_image`` and ``truncated``) of both
    recipes' checkpoints (``--ours-ckpt``: ``xwing train --preset fast``;
    ``--seed-ckpt``: ``--preset seed``; trained with the same wall-clock budget,
    which is read from the checkpoints and written down), and of the shipped
    model beside them, on the test set (``make testset``: data/test) or a
    smaller one (``--test-limit``, ``--test-count``). Skipped, with a note,
    without checkpoints.
``align``
    The silhouette alignment's convergence basin (:func:`xwing.infer.refine.align.align`):
    rendered samples, starts 1, 3, 6 and 12 px off (mean box-corner error, a
    random SE(3) direction scaled to that error); per start the final error's
    median, the share below 0.5 px and 1 px, the accepted share and ms.

Outputs: ``DIR/bench.json`` (keys ``ours`` and ``seed``, each with ``ms_batch1``,
``fps_batch16``, ``fps_end_to_end`` and the eval metrics; ``speedup_track``,
``rot_err_ratio``; the machine), ``DIR/bench.md`` (tables; each goal with what
limits it where missed) and ``DIR/bench.png`` (accuracy vs speed).

Timing: a warm-up, then repetitions; medians with the 25-75 % range. The
machine's load average is written beside the figures: on a shared CPU the
spread says how far to trust them.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.config import SavedConfig

PARTS = ("model", "track", "render", "accuracy", "align")
DEFAULT_SHIPPED = "models/xwing.onnx"
#: Goals of issue 8 (ours against the seed recipe at the same training budget).
GOAL_SPEEDUP_TRACK = 10.0
GOAL_ROT_ERR_RATIO = 2.0
#: Input side of every cross-recipe latency figure (the seed's frames).
COMPARE_SIZE = 256
ALIGN_STARTS_PX = (1.0, 3.0, 6.0, 12.0)


@dataclass(frozen=True)
class BenchConfig(SavedConfig):
    """Everything a bench run depends on (saved in bench.json)."""

    parts: tuple[str, ...] = PARTS
    model: str = DEFAULT_SHIPPED
    ours_ckpt: str = ""
    seed_ckpt: str = ""
    threads: tuple[int, ...] = (1, 0)
    warmup: int = 3
    repeats: int = 20
    flight: str = ""
    flight_frames: int = 150
    flight_seed: int = 11
    track_threads: tuple[int, ...] = (1, 2)
    track_repeats: int = 3
    track_modes: tuple[str, ...] = ("cost", "model")
    oracle_noise_px: float = 1.0
    render_count: int = 20
    testset: str = "data/test"
    test_limit: int = 0
    test_count: int = 0
    test_seed: int = 2026
    refine: str = ""
    align_samples: int = 20
    align_seed: int = 777



# --- small helpers -----------------------------------------------------------------------------


def spread(values_ms) -> dict:
    """Median, 25-75 % range, min, max and count of timings (ms)."""
    x = np.asarray(values_ms, dtype=np.float64)
    if x.size == 0:
        return {"median": None, "p25": None, "p75": None, "min": None, "max": None, "n": 0}
    return {"median": float(np.median(x)), "p25": float(np.percentile(x, 25)),
            "p75": float(np.percentile(x, 75)), "min": float(x.min()), "max": float(x.max()), "n": int(x.size)}


def time_calls(fn, warmup: int, repeats: int) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times: :func:`spread` of ms per call."""
    for _ in range(max(0, warmup)):
        fn()
    ms = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return spread(ms)


def machine_info(threads) -> dict:
    """CPU model, core count, thread settings and library versions."""
    import onnxruntime

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    info = {"cpu_model": cpu or "unknown", "cpu_count": os.cpu_count(), "cpu_usable": usable,
            "ort_threads_tried": [t or usable for t in threads],
            "ort_threads_setting": "0 = onnxruntime's default (one per core)",
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "platform": platform.platform()}
    try:
        import cv2

        info["opencv"] = cv2.__version__
    except ImportError:
        pass
    return info


def load_average() -> list | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# --- models: which ONNX file plays each recipe --------------------------------------------------


@dataclass
class Recipe:
    """One side of the comparison: its ONNX file and where it came from."""

    name: str
    onnx: str | None = None
    source: str = ""
    trained: bool = False
    training: dict = field(default_factory=dict)
    note: str = ""


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def export_random(preset: str, out: Path, seed: int = 0) -> Path:
    """Export a randomly initialised ``--preset fast|seed`` network to ``out`` (ONNX):
    its speed is a trained one's. Needs torch (imported here)."""
    from dataclasses import replace

    import torch

    from xwing.geometry.camera import seed_camera
    from xwing.learn.export import export_onnx
    from xwing.learn.net import build_net
    from xwing.learn.train import SEED_PRESET, TrainConfig, make_parts, save_weights

    cfg = TrainConfig() if preset == "fast" else replace(TrainConfig(), preset="seed", **SEED_PRESET)
    pts, codec, net_cfg = make_parts(cfg)
    torch.manual_seed(seed)
    model = build_net(net_cfg).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    weights = out.with_suffix(".pt")
    save_weights(model, cfg, pts, codec, net_cfg, seed_camera(), weights)
    try:
        export_onnx(weights, out, check=False, verbose=False)
    finally:
        weights.unlink(missing_ok=True)
    return out


def training_info(path: str | Path) -> dict:
    """What a model's training cost: preset, wall-clock budget, minutes, images seen (from a
    checkpoint, with torch, and the run's metrics.csv beside it; or from ONNX metadata)."""
    path = Path(path)
    info: dict = {"file": str(path)}
    if path.suffix.lower() == ".onnx":
        from xwing.infer.detector import read_metadata

        meta = read_metadata(path)
        train = meta.get("train", {})
        info.update(preset=meta.get("preset"), images_seen=train.get("images_seen"), step=train.get("step"),
                    loss=train.get("loss"), points=train.get("points"))
        return info
    from xwing.learn.train import load_checkpoint

    ck = load_checkpoint(path)
    cfg = ck.get("config", {})
    info.update(preset=cfg.get("preset"), budget_minutes=cfg.get("max_minutes") or None,
                images_seen=int(ck.get("images_seen", 0)), step=int(ck.get("step", 0)),
                input_size=cfg.get("input_size"), view=cfg.get("view"), device=cfg.get("device"),
                batch_size=cfg.get("batch_size"))
    csv_path = path.parent / "metrics.csv"
    if csv_path.is_file():
        import csv

        rows = list(csv.DictReader(csv_path.open()))
        if rows and rows[-1].get("minutes"):
            try:
                info["minutes_at_last_validation"] = float(rows[-1]["minutes"])
            except ValueError:
                pass
    return info


def to_onnx(path: str | Path, out_dir: Path, name: str) -> Path:
    """An ONNX file for ``path``: itself, or a checkpoint exported into ``out_dir``."""
    path = Path(path)
    if not path.is_file():
        raise XwingError("model or checkpoint not found", path)
    if path.suffix.lower() == ".onnx":
        from xwing.infer.detector import read_metadata

        read_metadata(path)  # a one-line error for a foreign file, now rather than mid-run
        return path
    if not _torch_available():
        raise XwingError("a checkpoint needs torch to export (pip install 'xwing[train]'), or pass an .onnx file",
                         path)
    from xwing.learn.export import checkpoint_to_onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    return checkpoint_to_onnx(path, out_dir / f"{name}.onnx")


def resolve_recipes(cfg: BenchConfig, out: Path, notes: list[str], need_speed: bool = True) -> dict[str, Recipe]:
    """Which ONNX file stands for ``ours``, ``seed`` and (if present) ``shipped``; with
    ``need_speed``, random nets stand in for missing ones (speed only)."""
    models = out / "models"
    recipes: dict[str, Recipe] = {}
    shipped = Path(cfg.model) if cfg.model and cfg.model.lower() != "none" else None
    if shipped is not None and shipped.is_file():
        recipes["shipped"] = Recipe("shipped", str(to_onnx(shipped, models, "shipped")), f"shipped model {shipped}",
                                    trained=True)
    elif shipped is not None and cfg.model != DEFAULT_SHIPPED:
        raise XwingError("model not found", cfg.model)

    ours, seed = Recipe("ours"), Recipe("seed")
    for r, ckpt, preset in ((ours, cfg.ours_ckpt, "fast"), (seed, cfg.seed_ckpt, "seed")):
        if ckpt:
            r.onnx = str(to_onnx(ckpt, models, r.name))
            r.source, r.trained = f"{ckpt} (xwing train --preset {preset})", True
            r.training = training_info(ckpt) if (Path(ckpt).suffix == ".onnx" or _torch_available()) else {}
    for r, want in ((ours, "fast"), (seed, "seed")):
        got = r.training.get("preset")
        if got and got != want:
            notes.append(f"{r.name}: the model was trained with --preset {got}, not --preset {want}")
    need_random = [r for r in (ours, seed) if r.onnx is None and not (r.name == "ours" and "shipped" in recipes)
                   and need_speed]
    if need_random and not _torch_available():
        for r in need_random:
            r.note = "no model: a random --preset net needs torch (pip install 'xwing[train]'); speed skipped"
            notes.append(f"{r.name}: {r.note}")
    elif need_random:
        for r in need_random:
            preset = "fast" if r.name == "ours" else "seed"
            r.onnx = str(export_random(preset, models / f"{r.name}_random_{preset}.onnx"))
            r.source = f"randomly initialised --preset {preset} network (same compute as a trained one)"
    if ours.onnx is None and "shipped" in recipes:
        # Speed only: the shipped model is not a same-budget recipe, so ours.trained stays False.
        ours.onnx, ours.source = recipes["shipped"].onnx, recipes["shipped"].source
    recipes["ours"], recipes["seed"] = ours, seed
    return recipes


def speed_model_for(recipes: dict[str, Recipe]) -> dict[str, str | None]:
    """The ONNX file each recipe's speed is measured with (ours: the shipped model first)."""
    ours = recipes["shipped"].onnx if "shipped" in recipes else recipes["ours"].onnx
    return {"ours": ours, "seed": recipes["seed"].onnx}


# --- part: model speed ------------------------------------------------------------------------


def model_speed(path: str, threads: int, warmup: int, repeats: int, sizes=(COMPARE_SIZE,)) -> dict:
    """ONNX Runtime latency (batch 1) per input side, throughput of batch 16 at
    :data:`COMPARE_SIZE`, and the codec's decode time of one image's output."""
    from xwing.infer.detector import OnnxDetector

    det = OnnxDetector(path, threads=threads or None)
    rng = np.random.default_rng(0)
    sizes = sorted({int(s) for s in sizes} | {det.input_size, COMPARE_SIZE})
    res = {"file": str(path), "size_mb": round(Path(path).stat().st_size / 1e6, 2), "input_size": det.input_size,
           "arch": det.meta.get("net", {}).get("arch"), "backbone": det.meta.get("net", {}).get("backbone"),
           "decode_mode": det.codec.decode_mode, "by_size": {}}
    for s in sizes:
        x = rng.integers(0, 256, (1, s, s, 3), dtype=np.uint8)
        heat, _ = det.raw(x)
        res["by_size"][str(s)] = {"ms_batch1": time_calls(lambda: det.raw(x), warmup, repeats),
                                  "ms_decode": time_calls(lambda: det.codec.decode(heat), 1, repeats)}
    x16 = rng.integers(0, 256, (16, COMPARE_SIZE, COMPARE_SIZE, 3), dtype=np.uint8)
    b16 = time_calls(lambda: det.raw(x16), max(1, warmup // 2), max(3, repeats // 4))
    res["ms_batch16"] = b16
    res["ms_batch1"] = res["by_size"][str(COMPARE_SIZE)]["ms_batch1"]["median"]
    res["fps_batch16"] = 16e3 / b16["median"]
    res["ms_batch1_native"] = res["by_size"][str(det.input_size)]["ms_batch1"]["median"]
    return res


def model_speed_best(path: str, threads_list, warmup: int, repeats: int, sizes=(COMPARE_SIZE,)) -> dict:
    """:func:`model_speed` at each ORT thread count; the headline figures (``ms_batch1``,
    ``fps_batch16``) are each the best setting's (on a busy machine fewer threads can win)."""
    runs = {str(t): model_speed(path, t, warmup, repeats, sizes) for t in threads_list}
    b1 = min(runs, key=lambda t: runs[t]["ms_batch1"])
    b16 = max(runs, key=lambda t: runs[t]["fps_batch16"])
    res = dict(runs[b1])
    res.update(threads_batch1=int(b1), fps_batch16=runs[b16]["fps_batch16"], ms_batch16=runs[b16]["ms_batch16"],
               threads_batch16=int(b16),
               by_threads={t: {"ms_batch1": r["ms_batch1"], "fps_batch16": r["fps_batch16"],
                               "ms_batch1_native": r["ms_batch1_native"]} for t, r in runs.items()})
    return res


# --- part: tracking speed -------------------------------------------------------------------------


def ensure_flight(cfg: BenchConfig, out: Path, progress: bool) -> Path:
    """The flight to track: ``--flight`` or one rendered into ``out/flight`` (kept for reruns)."""
    if cfg.flight:
        p = Path(cfg.flight)
        if not (p / "video.mp4").is_file() or not (p / "camera_info.json").is_file():
            raise XwingError("not a flight sequence directory (want video.mp4 and camera_info.json from "
                             "`xwing render --sequence`)", p)
        return p
    p = out / "flight"
    man = p / "manifest.json"
    if man.is_file():
        try:
            m = json.loads(man.read_text())
            if m.get("frames") == cfg.flight_frames and m.get("seed") == cfg.flight_seed:
                return p
        except (OSError, json.JSONDecodeError):
            pass
    import shutil

    from xwing.geometry.camera import seed_camera
    from xwing.render.generator import GeneratorConfig
    from xwing.render.sequence import render_sequence

    if p.exists():
        shutil.rmtree(p)
    render_sequence(p, cfg.flight_frames, GeneratorConfig(seed=cfg.flight_seed), seed_camera(), progress=progress)
    return p


def video_read_ms(flight: Path, repeats: int = 2) -> dict:
    """ms per frame to read and decode the flight's video alone (every tracker pays it)."""
    from xwing.io.video import open_source

    per = []
    for _ in range(max(1, repeats)):
        src = open_source(flight)
        t0 = time.perf_counter()
        n = 0
        frames = src.frames()
        try:
            for _ in frames:
                n += 1
        finally:
            frames.close()
        per.append((time.perf_counter() - t0) * 1e3 / max(n, 1))
    return spread(per)


def track_speed(flight: Path, model_spec: str, per_frame: bool, threads_list, repeats: int,
                max_frames: int | None, input_size: int = 0, on_run=None) -> dict:
    """fps_end_to_end of :func:`xwing.cli.track.run_tracking` at each ORT thread count (median of
    ``repeats`` after a short warm-up run); the best thread count is reported."""
    from xwing.cli.track import run_tracking

    by_threads = {}
    best = None
    for th in threads_list:
        run_tracking(flight, model_spec, per_frame=per_frame, input_size=input_size, threads=th or None,
                     max_frames=10)  # warm-up: page cache, decoder, allocator
        fps, last = [], None
        for _ in range(max(1, repeats)):
            _, m = run_tracking(flight, model_spec, per_frame=per_frame, input_size=input_size,
                                threads=th or None, max_frames=max_frames)
            fps.append(m["fps_end_to_end"])
            last = m
            if on_run is not None:
                on_run()
        s = spread(fps)
        entry = {"fps": s, "n_frames": last["n_frames"], "status_counts": last["status_counts"]}
        for k in ("rot_err_deg_median", "kp_err_px_median", "jitter_deg", "lost_rate"):
            if k in last:
                entry[k] = last[k]
        by_threads[str(th)] = entry
        if best is None or s["median"] > by_threads[best]["fps"]["median"]:
            best = str(th)
    b = by_threads[best]
    return {"fps_end_to_end": b["fps"]["median"], "fps_spread": b["fps"], "threads": int(best),
            "per_frame": per_frame, "by_threads": by_threads,
            **{k: b[k] for k in ("rot_err_deg_median", "kp_err_px_median", "jitter_deg", "lost_rate",
                                 "status_counts") if k in b}}


def oracle_spec(onnx_path: str, size: int, noise: float) -> str:
    """An oracle detector that pays ``onnx_path``'s full cost (inference + decode)."""
    path = str(Path(onnx_path).resolve())
    if "," in path:
        raise XwingError("model path must not contain a comma (oracle spec)", path)
    return f"oracle:noise={noise},outliers=0.02,size={size},net={path}"


# --- part: renderer speed -------------------------------------------------------------------------


def render_speed(count: int, seed: int, progress_update=None) -> dict:
    """img/s of the data engine: full 256 x 256 frames and 128 px training crops (CPU GL)."""
    from xwing.render.generator import GeneratorConfig, SampleGenerator
    from xwing.render.gl import renderer_name, use_cpu_renderer

    use_cpu_renderer()
    out = {}
    for name, gcfg in (("full_256", GeneratorConfig(seed=seed)),
                       ("crop_128", GeneratorConfig(seed=seed, view="crop", crop_size=128))):
        gen = SampleGenerator(gcfg)
        k = [0]

        def one():
            gen.sample_index(k[0])
            k[0] += 1

        s = time_calls(one, 2, count)
        out[name] = {"ms_per_image": s, "img_per_s": 1e3 / s["median"]}
        if progress_update is not None:
            progress_update()
    out["renderer"] = renderer_name()
    out["img_per_s"] = out["full_256"]["img_per_s"]
    return out


# --- part: accuracy -------------------------------------------------------------------------------


def default_refine() -> str:
    """``xwing eval``'s own default ``--refine`` (bench follows it)."""
    import argparse

    from xwing.eval.evaluate import add_arguments

    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.get_default("refine") or "none"


def ensure_testset(cfg: BenchConfig, out: Path, progress: bool, notes: list[str]) -> Path | None:
    """The test set: ``--testset`` (default data/test); with ``--test-count N`` the first N
    images of the same stream (seed ``--test-seed``) rendered into ``out/testset`` when
    ``--testset`` is absent. None (and a note) when there is none."""
    p = Path(cfg.testset)
    if p.is_dir():
        return p
    if cfg.test_count > 0:
        from xwing.geometry.camera import seed_camera
        from xwing.render.generator import GeneratorConfig
        from xwing.render.writer import render_dataset

        q = out / "testset"
        render_dataset(q, cfg.test_count, GeneratorConfig(seed=cfg.test_seed), seed_camera(), progress=progress)
        return q
    notes.append("accuracy skipped: no test set (run `make testset`, or pass --test-count N to render a smaller one)")
    return None


def accuracy(onnx_path: str, testset: Path, refine: str, limit: int, threads: int, progress: bool) -> dict:
    """``xwing eval`` metrics (with in_image / truncated subsets and per-stage figures)."""
    from xwing.io.dataset import SeedDataset
    from xwing.eval.evaluate import evaluate
    from xwing.infer.detector import load_detector
    from xwing.infer.estimator import PipelineConfig, PoseEstimator

    ds = SeedDataset(testset)
    det = load_detector(onnx_path, None, threads or None)
    est = PoseEstimator(det, ds.camera, PipelineConfig(refine=refine))
    metrics, _ = evaluate(est, ds, progress=progress, limit=limit or None)
    metrics["testset"] = str(testset)
    return metrics


# --- part: alignment basin ------------------------------------------------------------------------


def perturb_to_error(T_gt: np.ndarray, K: np.ndarray, corners: np.ndarray, target_px: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A pose whose box corners lie ``target_px`` (mean) from ``T_gt``'s, along a random SE(3)
    direction (translation in units of the box's half-diagonal, so that rotation and
    translation move the image alike) -> (T_start, its mean corner error)."""
    from xwing.geometry.pose import se3_exp
    from xwing.geometry.projection import project_points

    uv_gt = project_points(corners, T_gt, K)
    r = 0.5 * float(np.linalg.norm(np.ptp(corners, axis=0)))
    xi = np.concatenate([rng.normal(size=3) * r, rng.normal(size=3)])
    xi /= np.linalg.norm(xi)

    def err(s):
        T = se3_exp(s * xi) @ T_gt
        if np.min(corners @ T[2, :3] + T[2, 3]) <= 1e-3:
            return math.inf
        return float(np.linalg.norm(project_points(corners, T, K) - uv_gt, axis=1).mean())

    lo, hi = 0.0, 1e-3
    while err(hi) < target_px and hi < 10.0:
        lo, hi = hi, hi * 2.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if err(mid) < target_px:
            lo = mid
        else:
            hi = mid
    s = 0.5 * (lo + hi)
    return se3_exp(s * xi) @ T_gt, err(s)


def align_basin(n_samples: int, seed: int, starts=ALIGN_STARTS_PX, progress_update=None) -> dict:
    """Convergence basin of :func:`xwing.infer.refine.align.align` on ``n_samples`` rendered 256 x 256
    images (the data engine's distribution, ship in view; truncated ones included)."""
    from xwing.infer.refine.align import AlignConfig, align
    from xwing.geometry.camera import seed_camera
    from xwing.model.keypoints import SEED_BOX_CORNERS
    from xwing.geometry.projection import project_points
    from xwing.render.generator import GeneratorConfig, SampleGenerator
    from xwing.render.gl import use_cpu_renderer

    use_cpu_renderer()
    cam = seed_camera()
    gen = SampleGenerator(GeneratorConfig(seed=seed, p_out_of_view=0.0), cam)
    verts = gen.mesh.vertices.astype(np.float64)
    faces = gen.mesh.faces
    config = AlignConfig()
    rows = {s: [] for s in starts}
    index, taken, categories = 0, 0, {}
    while taken < n_samples and index < 20 * n_samples + 20:
        sample = gen.sample_index(index)
        index += 1
        if not sample.ship_visible:
            continue
        taken += 1
        categories[sample.category] = categories.get(sample.category, 0) + 1
        uv_gt = project_points(SEED_BOX_CORNERS, sample.T_cam_obj, cam.K)
        for s in starts:
            rng = np.random.default_rng([seed, index, int(round(10 * s))])
            T0, e0 = perturb_to_error(sample.T_cam_obj, cam.K, SEED_BOX_CORNERS, s, rng)
            t0 = time.perf_counter()
            res = align(sample.image, cam.K, verts, faces, T0, config)
            ms = (time.perf_counter() - t0) * 1e3
            e1 = float(np.linalg.norm(project_points(SEED_BOX_CORNERS, res.T_cam_obj, cam.K) - uv_gt, axis=1).mean())
            rows[s].append((e0, e1, res.ok, ms, res.quality))
        if progress_update is not None:
            progress_update()
    out = {"n_samples": taken, "seed": seed, "categories": categories, "config": config.to_dict(),
           "definition": "error = mean distance of the 8 box corners to their true projections (px); "
                         "final = the pose align() returns (its start when it rejects the result)",
           "by_start": {}}
    for s, r in rows.items():
        if not r:
            continue
        a = np.array(r, dtype=np.float64)  # (n, 5): start err, final err, ok, ms, quality
        ok = a[:, 2] > 0
        out["by_start"][f"{s:g}"] = {
            "start_err_px_mean": float(a[:, 0].mean()), "final_err_px_median": float(np.median(a[:, 1])),
            "below_05px": float(np.mean(a[:, 1] < 0.5)), "below_1px": float(np.mean(a[:, 1] < 1.0)),
            "ok_rate": float(ok.mean()),
            "final_err_px_median_ok": float(np.median(a[ok, 1])) if ok.any() else None,
            "improved_rate": float(np.mean(a[:, 1] < a[:, 0])),
            # accepted although not converged: what the quality gate lets through
            "accepted_above_1px": float(np.mean(ok & (a[:, 1] >= 1.0))),
            "ms": spread(a[:, 3])}
    return out


# --- summary, report, plot ------------------------------------------------------------------------

RECIPE_KEYS = ("ms_batch1", "fps_batch16", "fps_end_to_end")


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


MAX_LOST_RATE_FOR_HEADLINE = 0.5


def headline_track_mode(doc: dict) -> tuple[str, str]:
    """``model`` (the trained networks) where both recipes have it and both keep the ship
    (a network that loses it skips PnP and looks fast), else ``cost``; and why."""
    tr = doc.get("track") or {}
    runs = {n: (tr.get(n) or {}).get("model") or {} for n in ("ours", "seed")}
    if not all(r.get("fps_end_to_end") for r in runs.values()):
        return "cost", "trained networks not given for both recipes: the oracle pays each network's cost"
    lost = {n: r.get("lost_rate") for n, r in runs.items()}
    bad = [n for n, v in lost.items() if v is None or v > MAX_LOST_RATE_FOR_HEADLINE]
    if bad:
        return "cost", (f"{' and '.join(bad)} lost the ship in more than {MAX_LOST_RATE_FOR_HEADLINE:.0%} of the "
                        "frames with its trained network, which skips work: the oracle's cost figures are used")
    return "model", "both trained networks kept the ship"


def assemble(doc: dict) -> dict:
    """Fill ``ours`` / ``seed`` (ms_batch1, fps_batch16, fps_end_to_end, eval metrics) and the
    ratios from the parts in ``doc``."""
    from xwing.eval.evaluate import METRIC_KEYS

    for name in ("ours", "seed"):
        r = doc.setdefault(name, {})
        for k in RECIPE_KEYS + METRIC_KEYS:
            r.setdefault(k, None)
        sp = doc.get("model", {}).get(name) or {}
        if sp.get("ms_batch1") is not None:
            r["ms_batch1"], r["fps_batch16"] = sp["ms_batch1"], sp["fps_batch16"]
            r["speed_model"] = sp.get("file")
        tr = doc.get("track", {}).get(name) or {}
        mode, why = headline_track_mode(doc)
        if (tr.get(mode) or {}).get("fps_end_to_end"):
            r["fps_end_to_end"] = tr[mode]["fps_end_to_end"]
            r["fps_end_to_end_mode"] = mode
            doc.setdefault("track", {})["headline_mode"] = {"mode": mode, "why": why}
        acc = doc.get("accuracy", {}).get(name)
        if acc:
            for k in METRIC_KEYS:
                r[k] = acc.get(k)
            r["in_image"], r["truncated"] = acc.get("in_image"), acc.get("truncated")
            r["refine"] = acc.get("refine")
    o, s = doc["ours"], doc["seed"]
    doc["speedup_track"] = (o["fps_end_to_end"] / s["fps_end_to_end"]
                            if _num(o["fps_end_to_end"]) and _num(s["fps_end_to_end"]) else None)
    eo, es = o.get("rot_err_deg_median"), s.get("rot_err_deg_median")
    doc["rot_err_ratio"] = (es / eo if _num(eo) and _num(es) and eo > 0 else None)
    doc["goals"] = {
        "speedup_track": {"goal": f">= {GOAL_SPEEDUP_TRACK:g}", "value": doc["speedup_track"],
                          "met": None if doc["speedup_track"] is None else doc["speedup_track"] >= GOAL_SPEEDUP_TRACK},
        "rot_err_ratio": {"goal": f">= {GOAL_ROT_ERR_RATIO:g}", "value": doc["rot_err_ratio"],
                          "met": None if doc["rot_err_ratio"] is None else doc["rot_err_ratio"] >= GOAL_ROT_ERR_RATIO},
    }
    return doc


def _f(v, fmt="{:.3g}", unit=""):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return fmt.format(v) + unit


def speed_limits(doc: dict) -> list[str]:
    """Where the tracking time goes, from the measured parts: the honest account of a missed
    speed goal."""
    lines = []
    tr, md = doc.get("track", {}), doc.get("model", {})
    mo, ms_ = md.get("ours") or {}, md.get("seed") or {}
    o, s = tr.get("ours", {}), tr.get("seed", {})
    vid = (tr.get("video_read_ms") or {}).get("median")
    mode = doc["ours"].get("fps_end_to_end_mode", "cost")
    fo = (o.get(mode) or {}).get("fps_end_to_end")
    fs = (s.get(doc["seed"].get("fps_end_to_end_mode", "cost")) or {}).get("fps_end_to_end")
    if fo and fs:
        ms_o, ms_s = 1e3 / fo, 1e3 / fs
        lines.append(f"per frame: ours {ms_o:.2f} ms, seed recipe {ms_s:.2f} ms (speedup {ms_s / ms_o:.1f}x); "
                     f"a {GOAL_SPEEDUP_TRACK:g}x speedup needs ours at or below {ms_s / GOAL_SPEEDUP_TRACK:.2f} ms "
                     "per frame.")
        track_size = str(tr.get("track_size", 128))
        net_o = ((mo.get("by_size") or {}).get(track_size) or {}).get("ms_batch1", {}).get("median")
        dec_o = ((mo.get("by_size") or {}).get(track_size) or {}).get("ms_decode", {}).get("median")
        net_s = ((ms_.get("by_size") or {}).get(str(COMPARE_SIZE)) or {}).get("ms_batch1", {}).get("median")
        dec_s = ((ms_.get("by_size") or {}).get(str(COMPARE_SIZE)) or {}).get("ms_decode", {}).get("median")
        th_o = (o.get(mode) or {}).get("threads")
        th_s = (s.get(doc["seed"].get("fps_end_to_end_mode", "cost")) or {}).get("threads")
        lines.append(f"tracking ran with {th_o} (ours) and {th_s} (seed recipe) ONNX Runtime threads, the faster "
                     f"of those tried; the latencies below are at {mo.get('threads_batch1')} (ours) and "
                     f"{ms_.get('threads_batch1')} (seed) threads (0: one per core).")
        if net_o is not None:
            lines.append(f"ours: network {net_o:.2f} ms at {track_size} px + decode {_f(dec_o)} ms; the rest (about "
                         f"{max(0.0, ms_o - net_o - (dec_o or 0)):.2f} ms) is video decoding, crops, PnP, "
                         "filtering and Python overhead.")
        if net_s is not None:
            lines.append(f"seed recipe: network {net_s:.2f} ms at {COMPARE_SIZE} px + argmax decode of "
                         f"full-resolution heatmaps {_f(dec_s)} ms.")
        if vid:
            lines.append(f"reading and decoding the video alone costs {vid:.2f} ms/frame (a reader thread overlaps "
                         f"it with inference): fps cannot exceed about {1e3 / vid:.0f}, so the speedup cannot exceed "
                         f"about {ms_s / vid:.0f}x on this machine.")
    return lines


def accuracy_limits(doc: dict) -> list[str]:
    acc = doc.get("accuracy", {})
    if not acc.get("ours") or not acc.get("seed"):
        return [acc.get("note") or "not measured: no checkpoints given (--ours-ckpt, --seed-ckpt)."]
    lines = []
    tr = acc.get("training", {})
    for name in ("ours", "seed"):
        t = tr.get(name) or {}
        m = acc[name]
        lines.append(f"{name}: median rotation error {_f(m.get('rot_err_deg_median'))} deg, corner error "
                     f"{_f(m.get('kp_err_px_median'))} px, flip rate {_f(m.get('flip_rate'))}, success "
                     f"{_f(m.get('success_rate'))}; trained {_f(t.get('minutes_at_last_validation'))} min "
                     f"(budget {_f(t.get('budget_minutes'))} min), {t.get('images_seen', 'n/a')} images.")
    return lines


def write_markdown(out: Path, doc: dict) -> None:
    from xwing.io.atomic import atomic_write_text

    o, s = doc["ours"], doc["seed"]
    mach = doc.get("machine", {})
    L = ["# xwing bench: our pipeline against the seed's recipe", "",
         f"Machine: {mach.get('cpu_model', 'n/a')}, {mach.get('cpu_usable', 'n/a')} usable cores; "
         f"ONNX Runtime {mach.get('onnxruntime', 'n/a')}, threads tried {mach.get('ort_threads_tried', 'n/a')}; "
         "load average (1, 5, 15 min) at start and end: " + _loads(doc) + ".", "",
         *_commands(doc), *_busy_warning(doc),
         "| figure | ours | seed recipe | ours / seed |", "|---|---|---|---|"]

    def row(label, k, fmt="{:.3g}", better="high"):
        a, b = o.get(k), s.get(k)
        ratio = None
        if _num(a) and _num(b) and a and b:
            ratio = a / b if better == "high" else b / a
        L.append(f"| {label} | {_f(a, fmt)} | {_f(b, fmt)} | {_f(ratio, '{:.2f}', 'x')} |")

    row(f"ms per image, batch 1, {COMPARE_SIZE} px (ORT)", "ms_batch1", "{:.2f}", "low")
    row(f"img/s, batch 16, {COMPARE_SIZE} px (ORT)", "fps_batch16", "{:.1f}")
    row("end-to-end tracking fps (flight)", "fps_end_to_end", "{:.1f}")
    row("median rotation error, deg (test set)", "rot_err_deg_median", "{:.3g}", "low")
    row("median corner error, px (test set)", "kp_err_px_median", "{:.3g}", "low")
    row("ADD-0.1d (test set)", "add_01d", "{:.3f}")
    row("flip rate (test set)", "flip_rate", "{:.3f}", "low")
    for sub in ("in_image", "truncated"):
        a, b = (o.get(sub) or {}).get("rot_err_deg_median"), (s.get(sub) or {}).get("rot_err_deg_median")
        L.append(f"| median rotation error, deg, {sub} | {_f(a)} | {_f(b)} | "
                 f"{_f(b / a if _num(a) and _num(b) and a else None, '{:.2f}', 'x')} |")
    L.append("")
    L += ["Sources: " + "; ".join(f"{k}: {v}" for k, v in (doc.get("sources") or {}).items()), ""]

    L += ["## Goals", "", "| goal | measured | met |", "|---|---|---|"]
    g = doc["goals"]
    L.append(f"| tracking fps, ours / seed recipe >= {GOAL_SPEEDUP_TRACK:g} | {_f(g['speedup_track']['value'], '{:.2f}')} "
             f"| {_met(g['speedup_track']['met'])} |")
    L.append(f"| median rotation error, seed / ours >= {GOAL_ROT_ERR_RATIO:g} | "
             f"{_f(g['rot_err_ratio']['value'], '{:.2f}')} | {_met(g['rot_err_ratio']['met'])} |")
    L.append("")
    L += ["What limits the speed figures:", ""] + [f"- {x}" for x in speed_limits(doc) or ["not measured."]]
    L += ["", "What limits the accuracy figures:", ""] + [f"- {x}" for x in accuracy_limits(doc)]
    L.append("")

    tr = doc.get("track")
    if tr:
        L += ["## Tracking", "", f"Flight: {tr.get('flight')} ({tr.get('n_frames')} frames). Mode `cost`: an "
              "oracle detector paying each network's full inference + decode cost with the true keypoints plus "
              f"{tr.get('oracle_noise_px')} px noise (only compute differs); mode `model`: the trained networks. "
              f"The table above uses `{(tr.get('headline_mode') or {}).get('mode', 'n/a')}`: "
              f"{(tr.get('headline_mode') or {}).get('why', '')}.", "",
              "| recipe | mode | fps median | fps 25-75 % | threads | statuses | rotation error median |",
              "|---|---|---|---|---|---|---|"]
        for name in ("ours", "seed"):
            for mode in ("cost", "model"):
                t = (tr.get(name) or {}).get(mode)
                if not t:
                    continue
                sp = t["fps_spread"]
                L.append(f"| {name} | {mode} | {_f(t['fps_end_to_end'], '{:.1f}')} | {_f(sp['p25'], '{:.1f}')}-"
                         f"{_f(sp['p75'], '{:.1f}')} | {t['threads']} | {_statuses(t.get('status_counts'))} | "
                         f"{_f(t.get('rot_err_deg_median'))} |")
        L.append("")
    md = doc.get("model")
    if md:
        L += ["## Network latency (ONNX Runtime, CPU)", "",
              "| recipe | threads | input px | ms batch 1 (median, 25-75 %) | decode ms |", "|---|---|---|---|---|"]
        for name in ("ours", "seed"):
            m = md.get(name)
            if not m:
                continue
            for size, v in sorted(m["by_size"].items(), key=lambda kv: int(kv[0])):
                b = v["ms_batch1"]
                L.append(f"| {name} | {m.get('threads_batch1')} | {size} | {_f(b['median'], '{:.2f}')} ({_f(b['p25'], '{:.2f}')}-"
                         f"{_f(b['p75'], '{:.2f}')}) | {_f(v['ms_decode']['median'], '{:.2f}')} |")
        L += ["", "Per thread setting (0: one per core): " + "; ".join(
            f"{name} {t}: {_f(v['ms_batch1'], '{:.2f}')} ms batch 1, {_f(v['fps_batch16'], '{:.1f}')} img/s batch 16"
            for name in ("ours", "seed") for t, v in ((md.get(name) or {}).get("by_threads") or {}).items()), ""]
    rd = doc.get("render")
    if rd:
        L += ["## Renderer", "", f"{rd.get('renderer')}: full 256 x 256 frames {_f(rd['full_256']['img_per_s'], '{:.1f}')} "
              f"img/s, 128 px training crops {_f(rd['crop_128']['img_per_s'], '{:.1f}')} img/s (one process).", ""]
    al = doc.get("align")
    if al:
        L += ["## Alignment convergence basin", "",
              f"{al['n_samples']} rendered samples (seed {al['seed']}); {al['definition']}.", "",
              "| start px | final median px | < 0.5 px | < 1 px | accepted | median of accepted px | "
              "accepted but >= 1 px | ms median |",
              "|---|---|---|---|---|---|---|---|"]
        for k, v in al["by_start"].items():
            L.append(f"| {k} ({_f(v['start_err_px_mean'], '{:.2f}')}) | {_f(v['final_err_px_median'])} | "
                     f"{_f(v['below_05px'], '{:.2f}')} | {_f(v['below_1px'], '{:.2f}')} | {_f(v['ok_rate'], '{:.2f}')} | "
                     f"{_f(v['final_err_px_median_ok'])} | {_f(v.get('accepted_above_1px'), '{:.2f}')} | "
                     f"{_f(v['ms']['median'], '{:.0f}')} |")
        L.append("")
    acc = doc.get("accuracy")
    if acc and acc.get("training"):
        L += ["## Training budgets", ""] + [f"- {k}: {json.dumps(v)}" for k, v in acc["training"].items()] + [""]
    if acc and acc.get("shipped"):
        m = acc["shipped"]
        L += [f"Shipped model (not a same-budget recipe): rotation error median {_f(m.get('rot_err_deg_median'))} deg, "
              f"corner error median {_f(m.get('kp_err_px_median'))} px.", ""]
    if doc.get("notes"):
        L += ["## Notes", ""] + [f"- {n}" for n in doc["notes"]] + [""]
    atomic_write_text(out / "bench.md", "\n".join(L))


def _loads(doc: dict) -> str:
    """Load averages per part, merged where parts ran together."""
    groups: dict = {}
    for part, r in (doc.get("part_runs") or {}).items():
        la = r.get("load_average") or {}
        groups.setdefault(f"{la.get('start')} -> {la.get('end')}", []).append(part)
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{', '.join(ps)}: {k}" for k, ps in groups.items())


def _commands(doc: dict) -> list[str]:
    """The command(s) that made the figures: one, or one per part after partial reruns."""
    runs = doc.get("part_runs") or {}
    cmds: dict = {}
    for part, r in runs.items():
        cmds.setdefault(r["command"], []).append(part)
    if len(cmds) <= 1:
        return [f"Command: `{next(iter(cmds), doc.get('command', 'xwing bench'))}`", ""]
    return ["Commands:", ""] + [f"- `{c}` ({', '.join(ps)})" for c, ps in cmds.items()] + [""]


def _busy_warning(doc: dict) -> list[str]:
    """A warning line when other work shared the CPU while timings ran."""
    cores = (doc.get("machine") or {}).get("cpu_usable") or 1
    loads = [r.get("load_average") or {} for r in (doc.get("part_runs") or {}).values()] or [doc.get("load_average")
                                                                                             or {}]
    worst = max([x[0] for la in loads for x in (la.get("start"), la.get("end")) if x] or [0.0])
    if worst <= 0.5 * cores + 0.5:
        return []
    return [f"**The machine was busy** (1-minute load average up to {worst:.1f} on {cores} cores while this ran): "
            "the timings are inflated and noisy, and multi-threaded figures suffer most. Rerun on an idle machine "
            "for clean numbers; ratios measured in the same run are more robust than absolute figures.", ""]


def _statuses(c) -> str:
    return "n/a" if not c else " / ".join(f"{c.get(k, 0)} {k}" for k in ("tracked", "predicted", "detected", "lost"))


def _met(v) -> str:
    return "n/a" if v is None else ("yes" if v else "**no**")


def write_plot(out: Path, doc: dict) -> str | None:
    """Accuracy vs speed (``bench.png``); a note when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install 'xwing[plots]')"
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    pts = [(n, doc[n].get("fps_end_to_end"), doc[n].get("rot_err_deg_median")) for n in ("ours", "seed")]
    shipped = doc.get("accuracy", {}).get("shipped")
    if shipped and doc["ours"].get("fps_end_to_end"):
        pts.append(("shipped", doc["ours"]["fps_end_to_end"], shipped.get("rot_err_deg_median")))
    good = [(n, x, y) for n, x, y in pts if _num(x) and _num(y) and y > 0]
    if good:
        for n, x, y in good:
            ax[0].scatter([x], [y], s=60)
            ax[0].annotate(n, (x, y), textcoords="offset points", xytext=(6, 4))
        ax[0].set(xscale="log", yscale="log", xlabel="end-to-end tracking fps", ylabel="median rotation error (deg)",
                  title="accuracy vs speed (lower right is better)")
    else:
        ax[0].text(0.5, 0.5, "accuracy not measured\n(no checkpoints)", ha="center", va="center")
        ax[0].set_axis_off()
    labels, vals = [], []
    for n in ("ours", "seed"):
        for k, lab in (("fps_end_to_end", "track fps"), ("fps_batch16", "img/s b16")):
            if _num(doc[n].get(k)):
                labels.append(f"{n}\n{lab}")
                vals.append(doc[n][k])
    if vals:
        ax[1].bar(range(len(vals)), vals, color=["C0" if lab.startswith("ours") else "C1" for lab in labels])
        ax[1].set_xticks(range(len(vals)), labels, fontsize=8)
        ax[1].set(yscale="log", ylabel="frames per second", title="speed (this CPU)", ylim=(1, 2 * max(vals)))
        for i, v in enumerate(vals):
            ax[1].annotate(f"{v:.0f}", (i, v), ha="center", va="bottom", fontsize=8)
    else:
        ax[1].set_axis_off()
    fig.tight_layout()
    tmp = out / ".bench.tmp.png"
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, out / "bench.png")
    return None


# --- the run ----------------------------------------------------------------------------------------


def check_inputs(cfg: BenchConfig) -> None:
    """Fail on bad input files now, in one line, before any long work."""
    for flag, path in (("--ours-ckpt", cfg.ours_ckpt), ("--seed-ckpt", cfg.seed_ckpt)):
        if path and not Path(path).is_file():
            raise XwingError(f"{flag}: model or checkpoint not found", path)
    if cfg.model and cfg.model.lower() != "none" and cfg.model != DEFAULT_SHIPPED and not Path(cfg.model).is_file():
        raise XwingError("--model: model not found", cfg.model)
    if cfg.flight and "track" in cfg.parts:
        p = Path(cfg.flight)
        if not (p / "video.mp4").is_file() or not (p / "camera_info.json").is_file():
            raise XwingError("not a flight sequence directory (want video.mp4 and camera_info.json from "
                             "`xwing render --sequence`)", p)
    if ("accuracy" in cfg.parts and cfg.testset != "data/test" and not Path(cfg.testset).is_dir()
            and not cfg.test_count):
        raise XwingError("test set directory not found", cfg.testset)


def run_bench(cfg: BenchConfig, out: str | Path, progress: bool = True, command: str = "") -> dict:
    """Run the parts of ``cfg`` into ``out``; returns the bench.json document."""
    from tqdm import tqdm

    from xwing.io.atomic import atomic_write_json
    from xwing.io.atomic import json_safe

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise XwingError("output path exists and is not a directory", out)
    check_inputs(cfg)
    out.mkdir(parents=True, exist_ok=True)
    doc: dict = {}
    old = out / "bench.json"
    if old.is_file() and set(cfg.parts) != set(PARTS):
        try:  # a partial run updates its parts of an earlier full run
            doc = json.loads(old.read_text())
        except (OSError, json.JSONDecodeError):
            doc = {}
    from xwing import __version__

    notes: list[str] = []
    doc.update({"command": command or "xwing bench", "xwing_version": __version__,
                "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "config": cfg.to_dict(),
                "machine": machine_info(cfg.threads), "load_average": {"start": load_average()}})
    parts = [p for p in PARTS if p in cfg.parts]
    needs_models = {"model", "track", "accuracy"} & set(parts)
    bar = tqdm(total=len(parts) + int(bool(needs_models)), desc="bench", unit="part", disable=not progress,
               dynamic_ncols=True)

    def step(desc):
        bar.set_description(f"bench: {desc}")

    by_part: dict = doc.get("notes_by_part", {}) if doc else {}
    cursor = [0]

    def done(part):  # the notes added since the last part belong to this one
        by_part[part] = notes[cursor[0]:]
        cursor[0] = len(notes)
        bar.update(1)

    try:
        recipes = {}
        if needs_models:
            step("models")
            recipes = resolve_recipes(cfg, out, notes, need_speed=bool({"model", "track"} & set(parts)))
            doc["sources"] = {n: r.source or r.note for n, r in recipes.items()}
            done("models")
        speed_files = speed_model_for(recipes) if recipes else {}

        if "model" in parts:
            step("model speed")
            doc["model"] = {n: model_speed_best(p, cfg.threads, cfg.warmup, cfg.repeats, sizes=(128,))
                            for n, p in speed_files.items() if p}
            done("model")

        if "track" in parts:
            step("tracking")
            try:
                flight = ensure_flight(cfg, out, progress)
            except ImportError as e:
                raise XwingError(f"rendering the flight needs {e.name} (pip install 'xwing[render]'), "
                                 "or pass --flight DIR") from None
            from xwing.infer.detector import OnnxDetector

            t = {"flight": str(flight), "oracle_noise_px": cfg.oracle_noise_px, "track_size": 128,
                 "video_read_ms": video_read_ms(flight)}
            from xwing.io.video import open_source

            t["n_frames"] = open_source(flight).n_frames
            inner = tqdm(desc="track runs", unit="run", leave=False, disable=not progress, dynamic_ncols=True)
            for name, per_frame in (("ours", False), ("seed", True)):
                path = speed_files.get(name)
                if not path:
                    continue
                size = OnnxDetector(path).input_size
                t[name] = {"model_file": path}
                if "cost" in cfg.track_modes:
                    t[name]["cost"] = track_speed(flight, oracle_spec(path, size, cfg.oracle_noise_px), per_frame,
                                                  cfg.track_threads, cfg.track_repeats, None, size,
                                                  on_run=inner.update)
                trained = recipes[name].trained or (name == "ours" and "shipped" in recipes)
                if "model" in cfg.track_modes and trained:
                    t[name]["model"] = track_speed(flight, path, per_frame, cfg.track_threads, cfg.track_repeats,
                                                   None, size if per_frame else 0, on_run=inner.update)
            inner.close()
            doc["track"] = t
            done("track")

        if "render" in parts:
            step("renderer")
            try:
                doc["render"] = render_speed(cfg.render_count, cfg.flight_seed)
            except ImportError as e:
                notes.append(f"renderer speed skipped: {e.name} is not installed (pip install 'xwing[render]')")
            done("render")

        if "accuracy" in parts:
            step("accuracy")
            acc: dict = {"refine_ours": cfg.refine or default_refine(), "refine_seed": "none"}
            have = [n for n in ("ours", "seed") if recipes.get(n) and recipes[n].trained]
            if not have and "shipped" not in recipes:
                acc["note"] = ("accuracy skipped: no checkpoints (train both with `xwing train --preset fast` and "
                               "`--preset seed` under the same --max-minutes, then pass --ours-ckpt and --seed-ckpt)")
                notes.append(acc["note"])
            else:
                testset = ensure_testset(cfg, out, progress, notes)
                if testset is not None:
                    for name in ("ours", "seed", "shipped"):
                        r = recipes.get(name)
                        if r is None or not r.trained or not r.onnx:
                            continue
                        if name == "shipped" and recipes["ours"].trained and r.onnx == recipes["ours"].onnx:
                            continue
                        refine = acc["refine_seed"] if name == "seed" else acc["refine_ours"]
                        acc[name] = accuracy(r.onnx, testset, refine, cfg.test_limit, cfg.threads[-1], progress)
                    acc["training"] = {n: recipes[n].training for n in ("ours", "seed") if recipes[n].training}
                    acc["same_budget"] = _same_budget(acc["training"])
                    if len(have) < 2:
                        acc["note"] = (f"only {', '.join(have) or 'the shipped model'} given: the same-budget "
                                       "comparison needs both --ours-ckpt and --seed-ckpt")
                        notes.append(acc["note"])
                else:
                    acc["note"] = notes[-1]
            doc["accuracy"] = acc
            done("accuracy")

        if "align" in parts:
            step("alignment basin")
            inner = tqdm(total=cfg.align_samples, desc="align samples", unit="img", leave=False,
                         disable=not progress, dynamic_ncols=True)
            try:
                doc["align"] = align_basin(cfg.align_samples, cfg.align_seed, progress_update=inner.update)
            except ImportError as e:
                notes.append(f"alignment basin skipped: rendering its samples needs {e.name} "
                             "(pip install 'xwing[render]')")
            inner.close()
            done("align")
    finally:
        bar.close()

    doc["load_average"]["end"] = load_average()
    doc["parts_run"] = parts
    # Each part keeps the command, time and load it was measured under (partial reruns merge).
    part_runs = doc.get("part_runs", {})
    for p in parts:
        part_runs[p] = {"command": doc["command"], "date_utc": doc["date_utc"], "load_average": doc["load_average"]}
    doc["part_runs"] = part_runs
    doc["notes_by_part"] = by_part
    doc["notes"] = [n for part in ("models", *PARTS) for n in by_part.get(part, [])]
    assemble(doc)
    note = write_plot(out, doc)
    if note:
        doc["notes"].append(note)
    atomic_write_json(out / "bench.json", json_safe(doc))
    write_markdown(out, doc)  # from the raw figures: a failed image's error reads "inf", not "n/a"
    return json_safe(doc)


def _same_budget(training: dict) -> bool | None:
    """Both recipes trained with the same wall-clock budget (``max_minutes``), where stated."""
    a, b = (training.get("ours") or {}).get("budget_minutes"), (training.get("seed") or {}).get("budget_minutes")
    if not a or not b:
        return None
    return abs(a - b) <= 0.05 * max(a, b)


# --- CLI -----------------------------------------------------------------------------------------------


def add_arguments(p) -> None:
    p.add_argument("--out", required=True, help="output directory (bench.json, bench.md, bench.png)")
    p.add_argument("--only", choices=PARTS, action="append", default=None,
                   help="run only this part (repeatable); the other parts of an earlier DIR/bench.json are kept")
    p.add_argument("--model", default=DEFAULT_SHIPPED,
                   help=f"the shipped ONNX model (default {DEFAULT_SHIPPED}, if present): ours for speed; "
                        "'none': ignore it")
    p.add_argument("--ours-ckpt", default="", help="checkpoint or ONNX trained with `xwing train --preset fast`")
    p.add_argument("--seed-ckpt", default="",
                   help="checkpoint or ONNX trained with `xwing train --preset seed` (never committed); without it "
                        "a random --preset seed net gives the speed (needs torch)")
    p.add_argument("--threads", default="1,0",
                   help="ONNX Runtime threads for the latency figures, comma-separated (0: one per core); each "
                        "model's faster setting is reported; the accuracy part uses the last (default 1,0)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls before each latency measurement (default 3)")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per latency figure (default 20)")
    p.add_argument("--flight", default="", help="sequence directory to track (default: render one into DIR/flight)")
    p.add_argument("--flight-frames", type=int, default=150, help="frames of the rendered flight (default 150)")
    p.add_argument("--flight-seed", type=int, default=11, help="seed of the rendered flight (default 11)")
    p.add_argument("--track-threads", default="1,2",
                   help="ONNX Runtime threads to try for tracking, comma-separated; each recipe's faster one is "
                        "reported (default 1,2)")
    p.add_argument("--track-repeats", type=int, default=3, help="tracking runs per setting (default 3)")
    p.add_argument("--track-modes", default="cost,model",
                   help="cost (oracle paying the networks' cost) and/or model (trained networks), comma-separated")
    p.add_argument("--render-count", type=int, default=20, help="images per renderer speed figure (default 20)")
    p.add_argument("--testset", default="data/test", help="seed-format test set (default data/test, `make testset`)")
    p.add_argument("--test-limit", type=int, default=0, help="evaluate only the first N test images")
    p.add_argument("--test-count", type=int, default=0,
                   help="without the test set, render its first N images (same stream) into DIR/testset")
    p.add_argument("--refine", choices=("none", "zoom", "full"), default=None,
                   help="our pipeline's refinement in the accuracy part (default: xwing eval's default)")
    p.add_argument("--align-samples", type=int, default=20, help="rendered samples for the alignment basin (default 20)")
    p.add_argument("--align-seed", type=int, default=777, help="seed of those samples (default 777)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _int_list(text: str, name: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise XwingError(f"{name} wants comma-separated integers, got '{text}'") from None
    if not vals or min(vals) < 0:
        raise XwingError(f"{name} wants non-negative integers, got '{text}'")
    return vals


def config_from_args(args) -> BenchConfig:
    modes = tuple(m.strip() for m in args.track_modes.split(",") if m.strip())
    if not modes or set(modes) - {"cost", "model"}:
        raise XwingError(f"--track-modes wants cost and/or model, got '{args.track_modes}'")
    for name in ("warmup", "track_repeats", "flight_frames", "render_count", "test_limit", "test_count",
                 "align_samples"):
        if getattr(args, name) < 0:
            raise XwingError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    for name in ("repeats", "align_samples", "render_count", "track_repeats"):
        if getattr(args, name) < 1:
            raise XwingError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.flight_frames < 2:
        raise XwingError(f"--flight-frames must be >= 2, got {args.flight_frames}")
    return BenchConfig(parts=tuple(args.only) if args.only else PARTS, model=args.model, ours_ckpt=args.ours_ckpt,
                       seed_ckpt=args.seed_ckpt, threads=_int_list(args.threads, "--threads"), warmup=args.warmup, repeats=args.repeats,
                       flight=args.flight, flight_frames=args.flight_frames, flight_seed=args.flight_seed,
                       track_threads=_int_list(args.track_threads, "--track-threads"),
                       track_repeats=args.track_repeats, track_modes=modes, render_count=args.render_count,
                       testset=args.testset, test_limit=args.test_limit, test_count=args.test_count,
                       refine=args.refine or "", align_samples=args.align_samples, align_seed=args.align_seed)


def summary_lines(doc: dict) -> list[str]:
    o, s = doc["ours"], doc["seed"]
    lines = [f"ours: {_f(o['ms_batch1'], '{:.2f}')} ms batch 1, {_f(o['fps_batch16'], '{:.0f}')} img/s batch 16, "
             f"{_f(o['fps_end_to_end'], '{:.1f}')} fps tracking, rotation error {_f(o['rot_err_deg_median'])} deg",
             f"seed: {_f(s['ms_batch1'], '{:.2f}')} ms batch 1, {_f(s['fps_batch16'], '{:.0f}')} img/s batch 16, "
             f"{_f(s['fps_end_to_end'], '{:.1f}')} fps tracking, rotation error {_f(s['rot_err_deg_median'])} deg",
             f"speedup_track {_f(doc['speedup_track'], '{:.2f}')} (goal >= {GOAL_SPEEDUP_TRACK:g}), rot_err_ratio "
             f"{_f(doc['rot_err_ratio'], '{:.2f}')} (goal >= {GOAL_ROT_ERR_RATIO:g})"]
    if doc.get("render"):
        lines.append(f"renderer: {_f(doc['render']['img_per_s'], '{:.1f}')} img/s (256 x 256)")
    if doc.get("align"):
        lines.append("align basin (start px -> final median px, < 0.5 px share, accepted): " + ", ".join(
            f"{k} -> {_f(v['final_err_px_median'])} ({_f(v['below_05px'], '{:.2f}')}, {_f(v['ok_rate'], '{:.2f}')})"
            for k, v in doc["align"]["by_start"].items()))
    return lines


def command_line(args) -> str:
    """The ``xwing bench`` command that reproduces ``args`` (options that differ from the defaults)."""
    import argparse
    import shlex

    p = argparse.ArgumentParser()
    add_arguments(p)
    parts = ["xwing", "bench"]
    for action in p._actions:
        if not action.option_strings or action.dest in ("help",):
            continue
        v = getattr(args, action.dest, None)
        if v == action.default or (action.dest == "quiet"):
            continue
        flag = action.option_strings[-1]
        values = v if isinstance(v, list) else [v]
        for one in values:
            parts += [flag] if isinstance(one, bool) else [flag, str(one)]
    return " ".join(shlex.quote(x) for x in parts)


def run(args) -> int:
    cfg = config_from_args(args)
    command = command_line(args)
    doc = run_bench(cfg, args.out, progress=not args.quiet, command=command)
    for line in summary_lines(doc):
        print(line)
    for n in doc.get("notes", []):
        print(f"note: {n}")
    out = Path(args.out)
    print(f"wrote {out / 'bench.json'}, {out / 'bench.md'}" + (", " + str(out / "bench.png")
                                                              if (out / "bench.png").is_file() else ""))
    return 0
