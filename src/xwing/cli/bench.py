"""``xwing bench --out DIR``: the command line of the benchmark (:mod:`xwing.eval.bench`).

The options map one to one onto :class:`~xwing.eval.bench.BenchConfig`; the
command that reproduces a run (options that differ from the defaults) is written
into bench.json beside each part it measured.
"""

from __future__ import annotations

from pathlib import Path

from xwing.defaults import DEFAULT_MODEL, DEFAULT_REFINE
from xwing.errors import XwingError
from xwing.eval.bench import BenchConfig, run_bench
from xwing.eval.bench.config import GOAL_ROT_ERR_RATIO, GOAL_SPEEDUP_TRACK, PARTS
from xwing.eval.bench.report import fmt
from xwing.infer.refine import REFINE_MODES


def add_arguments(p) -> None:
    """The options of ``xwing bench`` (what each part measures: :mod:`xwing.eval.bench`)."""
    p.add_argument("--out", required=True, help="output directory (bench.json, bench.md, bench.png)")
    p.add_argument("--only", choices=PARTS, action="append", default=None,
                   help="run only this part (repeatable); the other parts of an earlier DIR/bench.json are kept")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"the shipped ONNX model (default {DEFAULT_MODEL}, if present): ours for speed; "
                        "'none': ignore it")
    p.add_argument("--ours-ckpt", default="", help="checkpoint or ONNX trained with `xwing train --preset fast`")
    p.add_argument("--seed-ckpt", default="",
                   help="checkpoint or ONNX trained with `xwing train --preset seed` (never committed); without it "
                        "a random --preset seed net gives the speed (needs torch)")
    p.add_argument("--threads", default="1,0",
                   help="ONNX Runtime intra-op threads, a comma-separated list, each value measured for the "
                        "latency figures (0: one per core); each model's faster setting is reported; the accuracy "
                        "part uses the last (default 1,0)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls before each latency measurement (default 3)")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per latency figure (default 20)")
    p.add_argument("--flight", default="", help="sequence directory to track (default: render one into DIR/flight)")
    p.add_argument("--flight-frames", type=int, default=150, help="frames of the rendered flight (default 150)")
    p.add_argument("--flight-seed", type=int, default=11, help="seed of the rendered flight (default 11)")
    p.add_argument("--track-threads", default="1,2",
                   help="ONNX Runtime intra-op threads for tracking, a comma-separated list, each value measured "
                        "(0: one per core); each recipe's faster one is reported (default 1,2)")
    p.add_argument("--track-repeats", type=int, default=3, help="tracking runs per setting (default 3)")
    p.add_argument("--track-modes", default="cost,model",
                   help="cost (oracle paying the networks' cost) and/or model (trained networks), comma-separated")
    p.add_argument("--track-refine", choices=tuple(REFINE_MODES), default=DEFAULT_REFINE,
                   help=f"our tracker's mode in the tracking part (default {DEFAULT_REFINE}, xwing track's; the "
                        "seed recipe always tracks per frame without refinement)")
    p.add_argument("--render-count", type=int, default=20, help="images per renderer speed figure (default 20)")
    p.add_argument("--testset", default="data/test", help="seed-format test set (default data/test, `make testset`)")
    p.add_argument("--test-limit", type=int, default=0, help="evaluate only the first N test images")
    p.add_argument("--test-count", type=int, default=0,
                   help="without the test set, render its first N images (same stream) into DIR/testset")
    p.add_argument("--refine", choices=tuple(REFINE_MODES), default=None,
                   help="our pipeline's refinement in the accuracy part (default: xwing eval's default)")
    p.add_argument("--align-samples", type=int, default=20,
                   help="rendered samples for the alignment basin (default 20)")
    p.add_argument("--align-seed", type=int, default=777, help="seed of those samples (default 777)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _int_list(text: str, name: str) -> tuple[int, ...]:
    """``"1,0"`` -> ``(1, 0)``; a one-line error naming ``name`` for anything else."""
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise XwingError(f"{name} wants comma-separated integers, got '{text}'") from None
    if not vals or min(vals) < 0:
        raise XwingError(f"{name} wants non-negative integers, got '{text}'")
    return vals


def config_from_args(args) -> BenchConfig:
    """The :class:`~xwing.eval.bench.BenchConfig` of the parsed options (checked first, in one line each)."""
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
                       seed_ckpt=args.seed_ckpt, threads=_int_list(args.threads, "--threads"), warmup=args.warmup,
                       repeats=args.repeats,
                       flight=args.flight, flight_frames=args.flight_frames, flight_seed=args.flight_seed,
                       track_threads=_int_list(args.track_threads, "--track-threads"),
                       track_repeats=args.track_repeats, track_modes=modes, track_refine=args.track_refine,
                       render_count=args.render_count,
                       testset=args.testset, test_limit=args.test_limit, test_count=args.test_count,
                       refine=args.refine or "", align_samples=args.align_samples, align_seed=args.align_seed)


def summary_lines(doc: dict) -> list[str]:
    """The headline figures of a bench.json document, as printed at the end of a run."""
    o, s = doc["ours"], doc["seed"]
    lines = [f"ours: {fmt(o['ms_batch1'], '{:.2f}')} ms batch 1, {fmt(o['fps_batch16'], '{:.0f}')} img/s batch 16, "
             f"{fmt(o['fps_end_to_end'], '{:.1f}')} fps tracking, rotation error {fmt(o['rot_err_deg_median'])} deg",
             f"seed: {fmt(s['ms_batch1'], '{:.2f}')} ms batch 1, {fmt(s['fps_batch16'], '{:.0f}')} img/s batch 16, "
             f"{fmt(s['fps_end_to_end'], '{:.1f}')} fps tracking, rotation error {fmt(s['rot_err_deg_median'])} deg",
             f"speedup_track {fmt(doc['speedup_track'], '{:.2f}')} (goal >= {GOAL_SPEEDUP_TRACK:g}), rot_err_ratio "
             f"{fmt(doc['rot_err_ratio'], '{:.2f}')} (goal >= {GOAL_ROT_ERR_RATIO:g})"]
    if doc.get("render"):
        lines.append(f"renderer: {fmt(doc['render']['img_per_s'], '{:.1f}')} img/s (256 x 256)")
    if doc.get("align"):
        lines.append("align basin (start px -> final median px, < 0.5 px share, accepted): " + ", ".join(
            f"{k} -> {fmt(v['final_err_px_median'])} ({fmt(v['below_05px'], '{:.2f}')}, {fmt(v['ok_rate'], '{:.2f}')})"
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
