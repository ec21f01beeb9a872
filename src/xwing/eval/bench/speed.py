"""The speed parts: network latency (``model``), end-to-end tracking (``track``) and the
data engine (``render``).

Latencies are ONNX Runtime (CPU) at each ``--threads`` intra-op setting, the faster
reported (on a shared CPU fewer threads can win); tracking runs the whole loop of
:func:`xwing.eval.tracking.run_tracking` on one flight. Rendering (the flight, the
renderer figures) needs the render extras, imported only here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.eval.bench.config import COMPARE_SIZE, BenchConfig
from xwing.eval.tracking import run_tracking
from xwing.geometry.camera import seed_camera
from xwing.infer.detector import OnnxDetector
from xwing.infer.latency import onnx_latency, spread, time_calls
from xwing.io.video import open_source


def model_speed(path: str, threads: int, warmup: int, repeats: int, sizes=(COMPARE_SIZE,)) -> dict:
    """ONNX Runtime latency (batch 1) per input side, throughput of batch 16 at
    :data:`COMPARE_SIZE`, and the codec's decode time of one image's output, with
    ``threads`` intra-op threads (0: one per core)."""
    det = OnnxDetector(path, threads=threads or None)
    rng = np.random.default_rng(0)
    sizes = sorted({int(s) for s in sizes} | {det.input_size, COMPARE_SIZE})
    res = {"file": str(path), "size_mb": round(Path(path).stat().st_size / 1e6, 2), "input_size": det.input_size,
           "arch": det.meta.get("net", {}).get("arch"), "backbone": det.meta.get("net", {}).get("backbone"),
           "decode_mode": det.codec.decode_mode, "by_size": {}}
    for s in sizes:
        t = onnx_latency(det, s, warmup=warmup, repeats=repeats, stages=("network", "decode"), rng=rng)
        res["by_size"][str(s)] = {"ms_batch1": t["network"], "ms_decode": t["decode"]}
    b16 = onnx_latency(det, COMPARE_SIZE, batch=16, warmup=max(1, warmup // 2), repeats=max(3, repeats // 4),
                       stages=("network",), rng=rng)["network"]
    res["ms_batch16"] = b16
    res["ms_batch1"] = res["by_size"][str(COMPARE_SIZE)]["ms_batch1"]["median"]
    res["fps_batch16"] = 16e3 / b16["median"]
    res["ms_batch1_native"] = res["by_size"][str(det.input_size)]["ms_batch1"]["median"]
    return res


def model_speed_best(path: str, threads_list, warmup: int, repeats: int, sizes=(COMPARE_SIZE,)) -> dict:
    """:func:`model_speed` at each ORT intra-op thread count; the headline figures (``ms_batch1``,
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

    from xwing.render.generator import GeneratorConfig
    from xwing.render.sequence import render_sequence

    if p.exists():
        shutil.rmtree(p)
    render_sequence(p, cfg.flight_frames, GeneratorConfig(seed=cfg.flight_seed), seed_camera(), progress=progress)
    return p


def video_read_ms(flight: Path, repeats: int = 2) -> dict:
    """ms per frame to read and decode the flight's video alone (every tracker pays it)."""
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
                max_frames: int | None, input_size: int = 0, on_run=None, refine: str = "none") -> dict:
    """fps_end_to_end of :func:`xwing.eval.tracking.run_tracking` at each ORT intra-op thread count
    (median of ``repeats`` after a short warm-up run); the best thread count is reported."""
    by_threads = {}
    best = None
    for th in threads_list:
        run_tracking(flight, model_spec, per_frame=per_frame, input_size=input_size, threads=th or None,
                     max_frames=10, refine=refine)  # warm-up: page cache, decoder, allocator, compiled kernels
        fps, last = [], None
        for _ in range(max(1, repeats)):
            _, m = run_tracking(flight, model_spec, per_frame=per_frame, input_size=input_size,
                                threads=th or None, max_frames=max_frames, refine=refine)
            fps.append(m["fps_end_to_end"])
            last = m
            if on_run is not None:
                on_run()
        s = spread(fps)
        entry = {"fps": s, "n_frames": last["n_frames"], "status_counts": last["status_counts"], "refine": refine,
                 "stage_ms": last.get("stage_ms")}
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

        def one(gen=gen, k=k):
            gen.sample_index(k[0])
            k[0] += 1

        s = time_calls(one, 2, count)
        out[name] = {"ms_per_image": s, "img_per_s": 1e3 / s["median"]}
        if progress_update is not None:
            progress_update()
    out["renderer"] = renderer_name()
    out["img_per_s"] = out["full_256"]["img_per_s"]
    return out
