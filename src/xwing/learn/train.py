"""Train the keypoint network: a plain loop that reads top to bottom.

Data: seed-format directories (``cfg.data``; ours or the seed's original
dataset) or images rendered on the fly (no data). Outputs in ``cfg.out`` (a run
directory)::

    config.json      the resolved TrainConfig (also inside every checkpoint)
    last.pt          full checkpoint: model, optimiser, scheduler, step, RNG (atomic)
    best.pt          the checkpoint with the lowest validation rotation error
    weights.pt       fp16 weights + everything export needs (small, portable)
    metrics.csv      one row per validation; tb/ TensorBoard logs

The config is :mod:`xwing.learn.config`, the loss :mod:`xwing.learn.losses`
(the roll symmetry lives there), validation :mod:`xwing.learn.validate`, the
checkpoint layout :mod:`xwing.learn.checkpoint`. Resume is exact: every image
and augmentation depends only on (seed, position), and the checkpoint holds
model, optimiser, scheduler, step and RNG states. Several GPUs: run under
``torchrun`` (WORLD_SIZE, RANK, LOCAL_RANK), each process takes its share of
every batch.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.camera import seed_camera
from xwing.infer.codec import HeatmapCodec
from xwing.io.atomic import atomic_write_json
from xwing.learn.augment import AugmentConfig
from xwing.learn.checkpoint import (
    config_of,
    load_checkpoint,
    load_weights,
    points_of,
    restore_training,
    save_checkpoint,
    save_weights,
    training_state,
)
from xwing.learn.config import NET_FIELDS, VAL_SEED_OFFSET, TrainConfig
from xwing.learn.data import FolderDataset, PositionSampler, RenderedDataset, collate
from xwing.learn.losses import compute_loss
from xwing.learn.net import NetConfig, build_net
from xwing.learn.validate import validate
from xwing.model.points import PointSet, point_set


def make_parts(cfg: TrainConfig) -> tuple[PointSet, HeatmapCodec, NetConfig]:
    """Config -> (PointSet, HeatmapCodec, NetConfig)."""
    pts = point_set(cfg.points)
    codec = HeatmapCodec(stride=cfg.stride, margin=cfg.margin, sigma=cfg.sigma, decode_mode=cfg.decode_mode,
                         seed_targets=cfg.seed_targets)
    net_cfg = NetConfig(arch=cfg.arch, backbone=cfg.backbone, num_keypoints=len(pts.points_3d),
                        channels=cfg.channels, stride=cfg.stride, margin=cfg.margin)
    return pts, codec, net_cfg


def make_optimizer(cfg: TrainConfig, model):
    """(optimiser, scheduler): AdamW or Adam; cosine with warmup (stepped every step) or the
    seed's ReduceLROnPlateau (stepped at every validation)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.epochs * cfg.steps_per_epoch
    if cfg.schedule == "cosine":
        def lr_at(step):
            if step < cfg.warmup_steps:
                return (step + 1) / cfg.warmup_steps
            p = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
            return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    else:  # the seed's ReduceLROnPlateau on the validation loss proxy
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=5, threshold=1e-4,
                                                           cooldown=2, min_lr=1e-6)
    return opt, sched


def augment_config(cfg: TrainConfig) -> AugmentConfig:
    """The run's augmentation."""
    return AugmentConfig(hflip=cfg.hflip, rot90=cfg.rot90, scale=(cfg.scale_min, cfg.scale_max),
                         translate=cfg.translate, photometric=cfg.photometric, seed_style=cfg.seed_style_aug)


def generator_options(cfg: TrainConfig) -> dict:
    """The run's keyword arguments of ``GeneratorConfig`` (crops of the network's input size)."""
    gen_opts = {"view": cfg.view, **json.loads(cfg.render_options or "{}")}
    if cfg.view == "crop":
        gen_opts.setdefault("crop_size", cfg.input_size)
    return gen_opts


def make_data(cfg: TrainConfig, pts: PointSet, codec: HeatmapCodec, main_proc: bool):
    """(training dataset, validation items, training camera). Every item depends only on
    (seed, position); folders without ``cfg.val_data`` give up their last ``val_size`` images
    to validation when there are enough of them."""
    from torch.utils.data import DataLoader

    aug, gen_opts = augment_config(cfg), generator_options(cfg)
    camera = seed_camera()
    held_out = None
    if cfg.data and not cfg.val_data:
        n_all = len(FolderDataset(list(cfg.data), pts, codec, cfg.input_size, cfg.seed, None))
        if n_all >= 4 * cfg.val_size:  # hold out the last val_size images
            held_out = slice(n_all - cfg.val_size, n_all)
        elif main_proc:
            print(f"note: {n_all} training images are too few to hold out {cfg.val_size}: validating on "
                  "training images (pass --val-data DIR for an honest validation)")
    if cfg.data:
        train_subset = slice(0, held_out.start) if held_out else None
        train_ds = FolderDataset(list(cfg.data), pts, codec, cfg.input_size, cfg.seed, aug, subset=train_subset)
        camera = train_ds.sets[0].camera
    else:
        train_ds = RenderedDataset(pts, codec, cfg.input_size, cfg.seed, aug, gen_opts, camera)
    if cfg.val_data or cfg.data:
        val_ds = FolderDataset(cfg.val_data or list(cfg.data), pts, codec, cfg.input_size, cfg.seed, None,
                               subset=None if cfg.val_data else held_out)
        val_items = [val_ds[i] for i in range(min(cfg.val_size, len(val_ds)))]
    else:
        val_ds = RenderedDataset(pts, codec, cfg.input_size, cfg.seed + VAL_SEED_OFFSET, None, gen_opts, camera)
        val_items = []
        if main_proc:  # rendered in a worker process, so the parent never holds a GL context
            val_items = list(DataLoader(val_ds, batch_size=None, sampler=range(cfg.val_size),
                                        num_workers=1))
    return train_ds, val_items, camera


def train(cfg: TrainConfig, resume: bool = False, extend_epochs: bool = False) -> dict:
    """Run training; returns the last validation metrics.

    With ``resume`` the run in ``cfg.out`` continues from ``last.pt`` under its saved
    config; only run-control fields (max_minutes, max_steps, workers, device) come
    from ``cfg``, and ``epochs`` too when ``extend_epochs`` (a longer schedule: from
    then on no longer the same run as the original one).
    """
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    # Distributed setup (torchrun sets these); a single process otherwise.
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cfg.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    main_proc = rank == 0
    out = Path(cfg.out)
    ck_path = out / "last.pt"
    if main_proc:
        out.mkdir(parents=True, exist_ok=True)

    # Resume: the checkpoint's config wins (only run-control fields may change).
    ck = None
    if resume:
        if not ck_path.is_file():
            raise XwingError("nothing to resume: no last.pt", out)
        ck = load_checkpoint(ck_path)
        saved = config_of(ck)
        cfg = replace(saved, max_minutes=cfg.max_minutes, max_steps=cfg.max_steps, workers=cfg.workers,
                      device=cfg.device, epochs=cfg.epochs if extend_epochs else saved.epochs)
    if main_proc:
        atomic_write_json(out / "config.json", cfg.to_dict())
    init = load_checkpoint(cfg.init) if cfg.init and ck is None else None
    if init is not None:  # --init: the network and its labels come from the weights
        init_cfg = config_of(init)
        cfg = replace(cfg, **{k: getattr(init_cfg, k) for k in NET_FIELDS})
        if main_proc:
            atomic_write_json(out / "config.json", cfg.to_dict())

    # Model, optimiser, schedule (seeded first, so a run's initial weights are its seed's).
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    pts, codec, net_cfg = make_parts(cfg)
    source = ck if ck is not None else init
    if source is not None:  # keep the exact points those weights were trained on
        pts = points_of(source)
    model = build_net(net_cfg).to(device)
    if init is not None:
        load_weights(model, init)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt, sched = make_optimizer(cfg, model)
    total_steps = cfg.epochs * cfg.steps_per_epoch
    step, best = 0, float("inf")
    if ck is not None:
        step, best = restore_training(ck, model, opt, sched)
    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    roll_perm = torch.as_tensor(np.asarray(pts.roll180_perm), device=device)

    train_ds, val_items, camera = make_data(cfg, pts, codec, main_proc)
    writer = None
    if main_proc:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out / "tb"))
        except Exception:  # noqa: BLE001 - TensorBoard is optional
            writer = None
    use_amp = device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    t_start = time.time()
    last_ck_time = time.time()
    images_seen = step * cfg.batch_size
    metrics: dict = {}

    def checkpoint(path=ck_path):
        save_checkpoint(path, training_state(model, opt, sched, step, best, cfg, pts, codec, net_cfg, camera,
                                             images_seen))

    # One loader for the whole run (workers, and their GL contexts, live across epochs).
    sampler = PositionSampler(step * cfg.batch_size, total_steps * cfg.batch_size, rank, world)
    loader = DataLoader(train_ds, batch_size=cfg.batch_size // world, sampler=sampler, num_workers=cfg.workers,
                        collate_fn=collate, drop_last=True, pin_memory=device.type == "cuda",
                        persistent_workers=False, prefetch_factor=4 if cfg.workers else None)
    bar = tqdm(total=total_steps, initial=step, desc="train", disable=not main_proc, dynamic_ncols=True,
               mininterval=1.0 if os.isatty(2) else 30.0)
    parts = {"loss": float("nan")}
    model.train()
    for batch in loader:
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        x = batch["image"].permute(0, 3, 1, 2).float()
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
            heat, scores = ddp_model(x)
        loss, parts = compute_loss(heat, scores, batch, roll_perm, cfg)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if cfg.schedule == "cosine":
            sched.step()
        step += 1
        images_seen += cfg.batch_size
        bar.update(1)
        if main_proc:
            bar.set_postfix(refresh=False, epoch=step // cfg.steps_per_epoch, loss=f"{parts['loss']:.3f}",
                            flip=f"{parts['flip_share']:.2f}")
            if writer is not None and step % 10 == 0:
                for k, v in parts.items():
                    writer.add_scalar(f"train/{k}", v, step)
                writer.add_scalar("train/lr", opt.param_groups[0]["lr"], step)
        if step % cfg.steps_per_epoch == 0 and main_proc:  # end of an epoch: validate, save
            metrics = validate(model, val_items, codec, pts, cfg, device)
            metrics.update(step=step, epoch=step // cfg.steps_per_epoch, images_seen=images_seen,
                           minutes=round((time.time() - t_start) / 60, 3), lr=opt.param_groups[0]["lr"],
                           loss=parts["loss"])
            if cfg.schedule == "plateau":
                sched.step(parts["loss"])
            _log_metrics(out, metrics, writer)
            bar.write(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))
            if metrics["rot_err_deg_median"] < best:
                best = metrics["rot_err_deg_median"]
                checkpoint(out / "best.pt")
            checkpoint()
            save_weights(model, cfg, pts, codec, net_cfg, camera, out / "weights.pt", images_seen)
            last_ck_time = time.time()
        out_of_time = cfg.max_minutes and (time.time() - t_start) > 60 * cfg.max_minutes
        if (cfg.max_steps and step >= cfg.max_steps) or out_of_time:
            break
        if main_proc and time.time() - last_ck_time > 60 * cfg.checkpoint_minutes:
            checkpoint()
            last_ck_time = time.time()
    bar.close()
    if main_proc:
        checkpoint()
        save_weights(model, cfg, pts, codec, net_cfg, camera, out / "weights.pt", images_seen)
    if writer is not None:
        writer.close()
    if world > 1:
        dist.destroy_process_group()
    return metrics


def _log_metrics(out: Path, metrics: dict, writer) -> None:
    """One row of metrics.csv (header on the first), and the same to TensorBoard."""
    path = out / "metrics.csv"
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(metrics))
        if new:
            w.writeheader()
        w.writerow(metrics)
    if writer is not None:
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                writer.add_scalar(f"val/{k}", v, metrics["step"])
