"""``xwing train``: train the keypoint network (:func:`xwing.learn.train.train`).

``--preset fast`` (default) or ``seed`` picks the recipe, a few common fields
have their own options, and ``--set FIELD=VALUE`` reaches any other
:class:`~xwing.learn.config.TrainConfig` field. ``--resume`` continues the run
in ``--out`` exactly; ``--epochs`` with it extends the schedule.
"""

from __future__ import annotations

import argparse
from dataclasses import fields, replace
from pathlib import Path

from xwing.errors import XwingError
from xwing.learn.config import SEED_PRESET, TrainConfig

#: TrainConfig fields with an option of their own (``--input-size`` for ``input_size``).
_CLI_FIELDS = ("out", "val_data", "backbone", "channels", "points", "loss", "input_size", "view", "render_options",
               "lr", "batch_size", "epochs", "steps_per_epoch", "val_size", "seed", "workers", "device",
               "max_minutes", "max_steps", "checkpoint_minutes", "init", "sigma", "margin")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=("fast", "seed"), default="fast",
                   help="fast: light timm backbone + FPN, CE heatmaps, roll-symmetric loss (default); "
                        "seed: the seed's U-Net/EfficientNet-B0, MSE, sigma 10, its labels and flips")
    p.add_argument("--data", action="append", default=None, metavar="DIR",
                   help="seed-format training directory (repeatable); none: render on the fly")
    p.add_argument("--out", default=None, help="run directory (default runs/train)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly from last.pt")
    p.add_argument("--no-symmetric", dest="symmetric", action="store_false", default=None,
                   help="plain keypoint loss (no roll-symmetric minimum / flip output)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any TrainConfig field (repeatable), e.g. --set hflip=0 --set loss=mse")
    for name in _CLI_FIELDS[1:]:
        if name == "out":
            continue
        typ = type(getattr(TrainConfig(), name))
        p.add_argument("--" + name.replace("_", "-"), type=typ, default=None)


def config_from_args(args) -> TrainConfig:
    """The preset, then the named options, then every ``--set``."""
    cfg = TrainConfig()
    if args.preset == "seed":
        cfg = replace(cfg, preset="seed", **SEED_PRESET)
    over = {name: getattr(args, name) for name in _CLI_FIELDS if getattr(args, name, None) is not None}
    if args.data:
        over["data"] = tuple(args.data)
    if args.symmetric is not None:
        over["symmetric"] = args.symmetric
    types = {f.name: type(getattr(cfg, f.name)) for f in fields(TrainConfig)}
    for item in args.set or []:
        key, _, value = item.partition("=")
        if key not in types or key == "data":
            raise XwingError(f"--set: unknown config field {key!r}")
        try:
            over[key] = (value.lower() in ("1", "true", "yes")) if types[key] is bool else types[key](value)
        except ValueError:
            raise XwingError(f"--set {key}: cannot read {value!r} as {types[key].__name__}") from None
    return replace(cfg, **over)


def run(args) -> int:
    cfg = config_from_args(args)
    for d in cfg.data:
        if not Path(d).is_dir():
            raise XwingError("training directory not found", d)
    if cfg.input_size % 32:
        raise XwingError(f"--input-size must be a multiple of 32, got {cfg.input_size}")
    from xwing.learn.train import train  # torch: only once a run really starts, never for --help

    metrics = train(cfg, resume=args.resume, extend_epochs=args.epochs is not None)
    if metrics:
        print("final validation: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                             for k, v in metrics.items()))
    print(f"run directory: {cfg.out}")
    return 0
