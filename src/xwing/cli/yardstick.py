"""``xwing yardstick MODEL DATASET --out DIR``: the network's keypoint error measured one way on
its training validation crops and on the pipeline's zoomed crops of DATASET.

The definitions are :mod:`xwing.eval.yardstick`'s. The validation crops are rendered as the
model's training run rendered them (its seed and ``crop_fill`` from the ONNX metadata,
overridable). Writes ``yardstick.json`` and ``yardstick.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from xwing.cli.args import add_model_argument, add_runtime_arguments, load_model
from xwing.errors import XwingError
from xwing.eval.yardstick import measure, validation_crops, zoom_crops
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.io.atomic import atomic_write_json, atomic_write_text, json_safe
from xwing.io.dataset import SeedDataset
from xwing.learn.config import VAL_SEED_OFFSET


def add_arguments(parser) -> None:
    add_model_argument(parser, positional=True)
    parser.add_argument("dataset", help="seed-format directory (N.jpg, N_mat.json, camera_info.json)")
    parser.add_argument("--out", required=True, help="output directory (yardstick.json, yardstick.md)")
    parser.add_argument("--limit", type=int, default=300, help="images of DATASET (default 300)")
    parser.add_argument("--val-size", type=int, default=300, help="validation crops with the ship (default 300)")
    parser.add_argument("--val-seed", type=int, default=None,
                        help="seed of the validation crops (default: the model's training seed + 1,000,003)")
    parser.add_argument("--render-options", default=None,
                        help="generator options of the validation crops, JSON (default: the model's crop_fill)")
    parser.add_argument("--zoom-size", type=int, default=0,
                        help="network input side of the zoomed passes (default: the model's input size)")
    add_runtime_arguments(parser)


def run(args) -> int:
    dataset = SeedDataset(args.dataset)
    detector = load_model(args.model, args.providers, args.threads)
    train = (getattr(detector, "meta", None) or {}).get("train", {})
    seed = args.val_seed if args.val_seed is not None else int(train.get("seed", 0)) + VAL_SEED_OFFSET
    if args.render_options is not None:
        try:
            options = json.loads(args.render_options)
        except json.JSONDecodeError as e:
            raise XwingError(f"--render-options is not valid JSON ({e.msg})") from None
    else:
        options = {"crop_fill": train["crop_fill"]} if "crop_fill" in train else {}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=args.val_size, desc="validation crops", unit="crop") as bar:
        val = validation_crops(args.val_size, seed, detector.input_size, options, bar.update)
    estimator = PoseEstimator(detector, dataset.camera, PipelineConfig(refine="zoom", side="none",
                                                                        zoom_size=args.zoom_size))
    n = min(args.limit, len(dataset))
    with tqdm(total=n, desc="zoomed crops", unit="img") as bar:
        zoomed, missed = zoom_crops(estimator, dataset, n, bar.update)
    result = {"model": str(args.model), "dataset": str(args.dataset), "validation_seed": seed,
              "render_options": options, "images": n, "images_without_zoom": missed,
              "zoom_size": estimator.zoom_size,
              "validation": measure(detector, val), "zoom": measure(detector, zoomed)}
    atomic_write_json(out / "yardstick.json", json_safe(result))
    atomic_write_text(out / "yardstick.md", report(result))
    v, z = result["validation"], result["zoom"]
    print(f"network keypoints, crop px (true labelling / roll-free): validation {_cell(v, 'kp_err_crop_px')} / "
          f"{_cell(v, 'kp_err_crop_px_rollfree')}, zoomed {_cell(z, 'kp_err_crop_px')} / "
          f"{_cell(z, 'kp_err_crop_px_rollfree')}; image px: {_cell(v, 'kp_err_image_px')} / "
          f"{_cell(v, 'kp_err_image_px_rollfree')} vs {_cell(z, 'kp_err_image_px')} / "
          f"{_cell(z, 'kp_err_image_px_rollfree')}")
    print(f"wrote {out / 'yardstick.json'}, {out / 'yardstick.md'}")
    return 0


def _cell(d: dict, key: str) -> str:
    v = d.get(key)
    return "-" if v is None or v != v else f"{v:.2f}"


def report(r: dict) -> str:
    keys = ("kp_err_crop_px", "kp_err_crop_px_rollfree", "kp_err_image_px", "kp_err_image_px_rollfree",
            "relabelled_share")
    lines = [f"# Keypoint yardstick: {Path(r['model']).name}", "",
             f"Validation crops: seed {r['validation_seed']}, options {json.dumps(r['render_options'])}; zoomed "
             f"crops: {r['images']} images of {r['dataset']} ({r['images_without_zoom']} without a zoomed pass).",
             "Errors: medians over the points on the codec's canvas (definitions: xwing.eval.yardstick).", "",
             "| set | subset | crops | crop px | crop px, roll-free | image px | image px, roll-free | relabelled |",
             "|---|---|---|---|---|---|---|---|"]
    for name in ("validation", "zoom"):
        d = r[name]
        groups = [("all", d)] + [(f"fill {k}", v) for k, v in d.get("by_fill", {}).items()]
        groups += [(f"zoom {k}", v) for k, v in d.get("by_zoom", {}).items()]
        groups += [(f"truncated {k}", v) for k, v in d.get("by_truncated", {}).items()]
        for label, g in groups:
            cells = " | ".join(_cell(g, k) for k in keys)
            lines.append(f"| {name} | {label} | {g.get('n_crops', 0)} | {cells} |")
    lines += ["", "| make-up | validation | zoom |", "|---|---|---|"]
    for k in r["validation"].get("make_up", {}):
        lines.append(f"| {k} | {_cell(r['validation']['make_up'], k)} | {_cell(r['zoom'].get('make_up', {}), k)} |")
    return "\n".join(lines) + "\n"
