"""The training configuration: :class:`TrainConfig`, and the seed's recipe as a preset.

A run's config is saved as ``config.json`` beside its outputs and inside every
checkpoint, so a run can be resumed, exported or compared later under exactly
the settings it was trained with. Importing this module needs no torch (the
command line reads it for ``xwing train --help``).
"""

from __future__ import annotations

from dataclasses import dataclass

from xwing.config import SavedConfig


@dataclass(frozen=True)
class TrainConfig(SavedConfig):
    """Everything a run depends on (saved as config.json and inside checkpoints)."""

    preset: str = "fast"
    out: str = "runs/train"
    data: tuple[str, ...] = ()  # seed-format directories; empty: render on the fly
    val_data: str = ""  # seed-format directory; empty: rendered (seed + 1)
    # network + codec
    arch: str = "fpn"
    # The fixed-budget winner on the 2-core CPU (models/README.md, "The recipe at a fixed budget"); the
    # shipped model is mobilenetv3_large_100 + 64, and ``--init models/xwing.pt`` keeps the weights' own network.
    backbone: str = "mobilenetv3_small_100"
    channels: int = 32
    stride: int = 4
    margin: int = 8
    sigma: float = 1.5
    seed_targets: bool = False
    decode_mode: str = "dark"
    points: str = "surface16"  # measured 2x better than the 8 box corners (runs/exp, E1 vs E4)
    # loss
    loss: str = "ce"  # "ce" | "mse"
    symmetric: bool = True
    presence_weight: float = 0.2
    flip_weight: float = 0.5
    # data
    input_size: int = 128
    view: str = "crop"  # generator view: "crop" (ship-centred crops) or "full"
    # extra GeneratorConfig keyword arguments (JSON); ships of 15-90 px in 128-px crops cover both the
    # whole-frame first pass and the zoomed pass (measured: 0.25-0.65 left the test set's scales out)
    render_options: str = '{"crop_fill": [0.12, 0.7]}'
    hflip: float = 0.5
    rot90: float = 0.0
    scale_min: float = 0.85
    scale_max: float = 1.15
    translate: float = 0.08
    photometric: float = 1.0
    seed_style_aug: bool = False
    # optimisation
    optimizer: str = "adamw"  # "adamw" | "adam"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # "cosine" (with warmup) | "plateau" (the seed's)
    warmup_steps: int = 100
    batch_size: int = 16
    epochs: int = 20
    steps_per_epoch: int = 250
    val_size: int = 128
    # run control
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    max_minutes: float = 0.0  # stop (resumably) after this wall-clock time; 0: no limit
    max_steps: int = 0  # stop (resumably) after this global step; 0: no limit
    checkpoint_minutes: float = 2.0
    init: str = ""  # start from a weights.pt / models/xwing.pt


#: A rendered validation set uses the run's seed plus this (``xwing.learn.train.make_data``;
#: ``xwing yardstick`` renders the same crops).
VAL_SEED_OFFSET = 1_000_003

#: Fields that define the network and its outputs: taken from the weights with ``--init``.
NET_FIELDS = ("arch", "backbone", "channels", "stride", "margin", "sigma", "seed_targets", "decode_mode", "points",
              "symmetric")

#: The seed's whole recipe (docs/seed-facts.md), to measure it side by side.
SEED_PRESET = dict(
    arch="seed_unet", backbone="efficientnet-b0", channels=0, stride=1, margin=0, sigma=10.0, seed_targets=True,
    decode_mode="argmax", loss="mse", symmetric=False, input_size=256, view="full", seed_style_aug=True,
    hflip=0.0, rot90=0.0, scale_min=1.0, scale_max=1.0, translate=0.0, photometric=0.0, optimizer="adam",
    lr=1e-3, weight_decay=0.0, schedule="plateau", warmup_steps=0, batch_size=16, points="corners",
    render_options="{}",
)
