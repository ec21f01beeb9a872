"""One bench run: check the inputs, run the chosen parts, merge them into an earlier
``bench.json`` (a partial run keeps the other parts) and write the outputs.

Each part keeps the command, time and load average it was measured under, so
figures merged from several runs stay traceable.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm import tqdm

from xwing.defaults import DEFAULT_MODEL, DEFAULT_REFINE
from xwing.errors import XwingError
from xwing.eval.bench.accuracy import accuracy, ensure_testset, same_budget
from xwing.eval.bench.basin import align_basin
from xwing.eval.bench.config import PARTS, BenchConfig
from xwing.eval.bench.machine import load_average, machine_info
from xwing.eval.bench.recipes import resolve_recipes, speed_model_for
from xwing.eval.bench.report import assemble, write_markdown, write_plot
from xwing.eval.bench.speed import (
    ensure_flight,
    model_speed_best,
    oracle_spec,
    render_speed,
    track_speed,
    video_read_ms,
)
from xwing.infer.detector import OnnxDetector
from xwing.io.atomic import atomic_write_json, json_safe
from xwing.io.video import open_source
from xwing.version import __version__


def check_inputs(cfg: BenchConfig) -> None:
    """Fail on bad input files now, in one line, before any long work."""
    for flag, path in (("--ours-ckpt", cfg.ours_ckpt), ("--seed-ckpt", cfg.seed_ckpt)):
        if path and not Path(path).is_file():
            raise XwingError(f"{flag}: model or checkpoint not found", path)
    if cfg.model and cfg.model.lower() != "none" and cfg.model != DEFAULT_MODEL and not Path(cfg.model).is_file():
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
            t = {"flight": str(flight), "oracle_noise_px": cfg.oracle_noise_px, "track_size": 128,
                 "video_read_ms": video_read_ms(flight)}
            t["n_frames"] = open_source(flight).n_frames
            inner = tqdm(desc="track runs", unit="run", leave=False, disable=not progress, dynamic_ncols=True)
            t["refine"] = {"ours": cfg.track_refine, "seed": "none"}
            for name, per_frame in (("ours", False), ("seed", True)):
                refine = t["refine"][name]
                path = speed_files.get(name)
                if not path:
                    continue
                size = OnnxDetector(path).input_size
                t[name] = {"model_file": path}
                if "cost" in cfg.track_modes:
                    t[name]["cost"] = track_speed(flight, oracle_spec(path, size, cfg.oracle_noise_px), per_frame,
                                                  cfg.track_threads, cfg.track_repeats, None, size,
                                                  on_run=inner.update, refine=refine)
                trained = recipes[name].trained or (name == "ours" and "shipped" in recipes)
                if "model" in cfg.track_modes and trained:
                    t[name]["model"] = track_speed(flight, path, per_frame, cfg.track_threads, cfg.track_repeats,
                                                   None, size if per_frame else 0, on_run=inner.update,
                                                   refine=refine)
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
            acc: dict = {"refine_ours": cfg.refine or DEFAULT_REFINE, "refine_seed": "none"}
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
                    acc["same_budget"] = same_budget(acc["training"])
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
