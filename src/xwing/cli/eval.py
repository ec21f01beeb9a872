"""``xwing eval MODEL DATASET --out DIR``: keypoint and pose accuracy on a labelled set.

Writes ``metrics.json`` (the keys of :mod:`xwing.eval.summary`, per subset and per
stage, plus the model, dataset and pipeline config), ``report.md`` and
``plots.png`` (where matplotlib is installed); with ``--bop-out FILE`` also the
poses as a BOP results CSV (:mod:`xwing.io.bop`): scene 0, im_id = N of ``N.jpg``,
score = the estimate's quality, time = its seconds.

MODEL: an ONNX file, ``oracle[:noise=..,outliers=..,seed=..]`` (true keypoints
plus noise: checks the pipeline without a network), or a checkpoint where torch
is importable.
"""

from __future__ import annotations

from pathlib import Path

from xwing.cli.args import (
    add_bop_argument,
    add_estimator_arguments,
    add_model_argument,
    add_strict_argument,
    load_model,
    pipeline_config,
)
from xwing.eval.evaluate import evaluate
from xwing.eval.report import format_cell, write_plots, write_report
from xwing.infer.estimator import PoseEstimator
from xwing.io.atomic import atomic_write_json, json_safe
from xwing.io.bop import BopEstimate, prepare_results_path, save_bop_results
from xwing.io.dataset import SeedDataset


def add_arguments(parser) -> None:
    add_model_argument(parser, positional=True)
    parser.add_argument("dataset", help="seed-format directory (N.jpg, N_mat.json, camera_info.json)")
    parser.add_argument("--out", required=True, help="output directory (metrics.json, report.md, plots.png)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    add_estimator_arguments(parser)
    add_strict_argument(parser)
    add_bop_argument(parser, "scene 0, im_id = N of N.jpg")


def run(args) -> int:
    dataset = SeedDataset(args.dataset)
    detector = load_model(args.model, args.providers, args.threads)
    config = pipeline_config(args)
    estimator = PoseEstimator(detector, dataset.camera, config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.bop_out is not None:
        prepare_results_path(args.bop_out)
    metrics, records = evaluate(estimator, dataset, progress=True, limit=args.limit, strict=args.strict)
    metrics["model"] = str(args.model)
    metrics["dataset"] = str(args.dataset)
    metrics["config"] = config.to_dict()
    notes = []
    note = write_plots(out, records)
    if note:
        notes.append(note)
    atomic_write_json(out / "metrics.json", json_safe(metrics))
    if args.bop_out is not None:
        n_bop = save_bop_results(args.bop_out, bop_estimates(records))
    write_report(out, metrics, f"xwing eval: {Path(args.model).name} on {args.dataset} (refine {args.refine})", notes)
    m = metrics
    print(f"{m['n_images']} images: corner error median {format_cell(m['kp_err_px_median'])} px, "
          f"rotation error median {format_cell(m['rot_err_deg_median'])} deg, ADD-0.1d {format_cell(m['add_01d'])}, "
          f"flip rate {format_cell(m['flip_rate'])}, {format_cell(m['ms_per_image'])} ms/image"
          + (f"; {m['n_unreadable']} unreadable image(s) left out" if m["n_unreadable"] else ""))
    print(f"wrote {out / 'metrics.json'}, {out / 'report.md'}" + ("" if note else f", {out / 'plots.png'}"))
    if args.bop_out is not None:
        print(f"wrote {args.bop_out} ({n_bop} BOP estimates)")
    return 0


def bop_estimates(records) -> list[BopEstimate]:
    """The evaluated poses as BOP estimates: scene 0, im_id = N, score = quality, time = the
    image's estimation time in s; images without a pose are left out, as BOP does."""
    return [BopEstimate.from_T(0, r.index, r.T_est, r.score, r.ms / 1e3) for r in records if r.T_est is not None]
