"""``xwing train``: train the keypoint network (a plain loop that reads top to bottom).

Data: seed-format directories (``--data DIR``, repeatable; ours or the seed's
original dataset) or images rendered on the fly (no ``--data``). Outputs in
``--out`` (a run directory)::

    config.json      the resolved TrainConfig (also inside every checkpoint)
    last.pt          full checkpoint: model, optimiser, scheduler, step, RNG (atomic)
    best.pt          the checkpoint with the lowest validation rotation error
    weights.pt       fp16 weights + everything export needs (small, portable)
    metrics.csv      one row per validation; tb/ TensorBoard logs

The ship's 180-degree roll near-symmetry (FACTS.md) is handled explicitly
(``symmetric=True``): the keypoint loss of each image is the smaller of its
loss against the true labelling and against the roll-relabelled one
(``PointSet.roll180_perm``), so the net never has to guess top from bottom to
localise points. A second global output, *side*, says which side of the ship
faces the camera (only the canopy and droid tell); the two labellings imply
opposite sides (:func:`xwing.model.symmetry.side_of`, from the 2D points alone), so
inference keeps the labelling that agrees with it, and the other one as a
second hypothesis (:func:`xwing.model.symmetry.resolve_roll`).

Heatmap loss ``ce``: cross-entropy between the spatial softmax of the logits
and the normalised Gaussian target (leaves the all-zeros plateau that MSE sits
on at once); ``mse``: the seed's loss on raw heatmaps.

Resume is exact: every image and augmentation depends only on (seed, position),
and the checkpoint holds model, optimiser, scheduler, step and RNG states.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
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
    backbone: str = "mobilenetv3_large_100"
    channels: int = 64
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



#: Fields that define the network and its outputs: taken from the weights with ``--init``.
_NET_FIELDS = ("arch", "backbone", "channels", "stride", "margin", "sigma", "seed_targets", "decode_mode", "points",
               "symmetric")

#: The seed's whole recipe (FACTS.md), to measure it side by side.
SEED_PRESET = dict(
    arch="seed_unet", backbone="efficientnet-b0", channels=0, stride=1, margin=0, sigma=10.0, seed_targets=True,
    decode_mode="argmax", loss="mse", symmetric=False, input_size=256, view="full", seed_style_aug=True,
    hflip=0.0, rot90=0.0, scale_min=1.0, scale_max=1.0, translate=0.0, photometric=0.0, optimizer="adam",
    lr=1e-3, weight_decay=0.0, schedule="plateau", warmup_steps=0, batch_size=16, points="corners",
    render_options="{}",
)


def make_parts(cfg: TrainConfig):
    """Config -> (PointSet, HeatmapCodec, NetConfig)."""
    from xwing.model.keypoints import point_set
    from xwing.infer.codec import HeatmapCodec
    from xwing.learn.net import NetConfig

    pts = point_set(cfg.points)
    codec = HeatmapCodec(stride=cfg.stride, margin=cfg.margin, sigma=cfg.sigma, decode_mode=cfg.decode_mode,
                         seed_targets=cfg.seed_targets)
    net_cfg = NetConfig(arch=cfg.arch, backbone=cfg.backbone, num_keypoints=len(pts.points_3d),
                        channels=cfg.channels, stride=cfg.stride, margin=cfg.margin)
    return pts, codec, net_cfg


# --- loss ----------------------------------------------------------------------------------


def keypoint_loss(heat, target, weight, cfg: TrainConfig):
    """Per-image keypoint loss (B,) of logits ``heat`` (B, K, Hc, Wc) against
    ``target`` (B, K, Hc, Wc) with ``weight`` (B, K)."""
    import torch.nn.functional as F

    heat = heat.float()
    if cfg.loss == "ce":
        logp = F.log_softmax(heat.flatten(2), dim=-1)  # (B, K, Hc*Wc)
        t = target.flatten(2)
        t = t / t.sum(-1, keepdim=True).clamp_min(1e-12)
        per_k = -(t * logp).sum(-1)  # (B, K)
    elif cfg.loss == "mse":
        per_k = ((heat - target) ** 2).flatten(2).mean(-1)
    else:
        raise ValueError(f"unknown loss {cfg.loss!r}")
    return (per_k * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)


def compute_loss(heat, scores, batch, roll_perm, cfg: TrainConfig):
    """Total loss and its parts. With ``cfg.symmetric`` the keypoint loss is the
    minimum over the true and the roll-relabelled targets, and the flip output is
    trained on which one won."""
    import torch
    import torch.nn.functional as F

    target, weight, present = batch["heatmap"], batch["weight"], batch["present"]
    l_true = keypoint_loss(heat, target, weight, cfg)
    if cfg.symmetric:
        l_roll = keypoint_loss(heat, target[:, roll_perm], weight[:, roll_perm], cfg)
        flipped = (l_roll < l_true).float()
        l_kp = torch.minimum(l_true, l_roll)
    else:
        flipped = torch.zeros_like(l_true)
        l_kp = l_true
    n_present = present.sum().clamp_min(1.0)
    loss_kp = (l_kp * present).sum() / n_present
    loss_presence = F.binary_cross_entropy_with_logits(scores[:, 0].float(), present)
    # The second score says which side of the ship faces the camera (an image property,
    # independent of the labelling the keypoint head happened to pick); inference picks
    # the labelling that agrees with it (symmetry.resolve_roll).
    loss_flip = (F.binary_cross_entropy_with_logits(scores[:, 1].float(), batch["side"], reduction="none")
                 * present).sum() / n_present
    total = loss_kp + cfg.presence_weight * loss_presence
    if cfg.symmetric:
        total = total + cfg.flip_weight * loss_flip
    with torch.no_grad():
        parts = {"loss": float(total), "loss_kp": float(loss_kp), "loss_presence": float(loss_presence),
                 "loss_flip": float(loss_flip), "flip_share": float((flipped * present).sum() / n_present)}
    return total, parts


# --- validation -------------------------------------------------------------------------------


def decode_outputs(heat, scores, codec, pts, symmetric: bool):
    """Network outputs (numpy) -> (uv (B, K, 2), conf (B, K), presence (B,), flip (B,),
    uv_alt (B, K, 2)): keypoints in the labelling that agrees with the side output
    (when ``symmetric``); ``uv_alt`` is the other (roll-relabelled) hypothesis."""
    from xwing.model.symmetry import resolve_roll
    from xwing.infer.codec import sigmoid

    uv, conf = codec.decode(heat)
    presence = sigmoid(scores[:, 0])
    if symmetric:
        uv, conf, uv_alt, _, flip = resolve_roll(uv, conf, sigmoid(scores[:, 1]), pts.points_3d, pts.roll180_perm)
    else:
        uv_alt, flip = uv[:, np.asarray(pts.roll180_perm)], np.zeros(len(uv))
    return uv, conf, presence, flip, uv_alt


def validate(model, items, codec, pts, cfg: TrainConfig, device) -> dict:
    """Metrics on the fixed validation items: network keypoint error (true labels, and
    the labelling-free error), PCK, rotation error and flip rate via PnP, the 8 box
    corners projected from the PnP pose, presence accuracy."""
    import torch

    from xwing.model.keypoints import SEED_BOX_CORNERS
    from xwing.geometry.metrics import rotation_error_deg
    from xwing.geometry.pnp import solve_pnp
    from xwing.geometry.projection import project_points

    model.eval()
    heats, scores = [], []
    with torch.no_grad():
        for i in range(0, len(items), 32):
            x = torch.stack([it["image"] for it in items[i:i + 32]]).to(device).permute(0, 3, 1, 2).float()
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            h, s = model(x)
            heats.append(h.float().cpu().numpy())
            scores.append(s.float().cpu().numpy())
    model.train()
    heat, score = np.concatenate(heats), np.concatenate(scores)
    uv, conf, presence, flip, uv_alt = decode_outputs(heat, score, codec, pts, cfg.symmetric)
    kp_err, kp_err_sym, rot_err, corner_err, pres_ok = [], [], [], [], []
    for j, it in enumerate(items):
        present = float(it["present"]) > 0.5
        pres_ok.append((presence[j] > 0.5) == present)
        if not present:
            continue
        w = it["weight"].numpy() > 0
        gt = it["uv"].numpy().astype(np.float64)
        e = np.linalg.norm(uv[j] - gt, axis=1)
        e_alt = np.linalg.norm(uv_alt[j] - gt, axis=1)
        kp_err.extend(e[w])
        kp_err_sym.extend((e if e[w].mean() <= e_alt[w].mean() else e_alt)[w] if w.any() else [])
        K = it["K"].numpy()
        T_gt = it["T_cam_obj"].numpy()
        res = solve_pnp(uv[j], pts.points_3d, K, conf=conf[j])
        if res.ok:
            rot_err.append(rotation_error_deg(res.T_cam_obj[:3, :3], T_gt[:3, :3]))
            ce = np.linalg.norm(project_points(SEED_BOX_CORNERS, res.T_cam_obj, K)
                                - project_points(SEED_BOX_CORNERS, T_gt, K), axis=1)
            corner_err.append(float(np.median(np.where(np.isfinite(ce), ce, np.inf))))
        else:
            rot_err.append(float("inf"))
            corner_err.append(float("inf"))
    kp_err, rot_err = np.asarray(kp_err), np.asarray(rot_err)

    def med(a):
        return float(np.median(a)) if len(a) else float("nan")

    return {
        "kp_err_px_median": med(kp_err),
        "kp_err_px_mean": float(np.mean(kp_err)) if len(kp_err) else float("nan"),
        "kp_err_sym_px_median": med(kp_err_sym),
        "pck_1px": float(np.mean(kp_err <= 1)) if len(kp_err) else float("nan"),
        "pck_2px": float(np.mean(kp_err <= 2)) if len(kp_err) else float("nan"),
        "pck_5px": float(np.mean(kp_err <= 5)) if len(kp_err) else float("nan"),
        "corner_err_px_median": med(corner_err),
        "rot_err_deg_median": med(rot_err),
        "flip_rate": float(np.mean(rot_err > 90)) if len(rot_err) else float("nan"),
        "presence_acc": float(np.mean(pres_ok)),
    }


# --- checkpoints ------------------------------------------------------------------------------


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a temporary file, then rename: readers never see half a file."""
    import torch

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; a bad file -> XwingError naming it."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise XwingError("checkpoint not found", path)
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise XwingError(f"not a readable xwing checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120]})",
                         path) from None
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise XwingError("not an xwing checkpoint (no 'model' and 'config' entries)", path)
    return ck


def model_from_checkpoint(ck: dict):
    """Checkpoint dict -> (model in float32, eval mode, TrainConfig, PointSet, codec)."""
    from xwing.model.keypoints import PointSet
    from xwing.infer.codec import HeatmapCodec
    from xwing.learn.net import NetConfig, build_net

    cfg = TrainConfig.from_dict(ck["config"])
    pts = PointSet.from_dict(ck["points"])
    codec = HeatmapCodec.from_dict(ck["codec"])
    model = build_net(NetConfig.from_dict(ck["net"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise XwingError(f"checkpoint weights do not fit its network ({str(e).splitlines()[0][:120]})") from None
    return model.eval(), cfg, pts, codec


def _rng_state() -> dict:
    import torch

    return {"torch": torch.get_rng_state(), "python": json.dumps(random.getstate())}


def _set_rng_state(s: dict) -> None:
    import torch

    torch.set_rng_state(s["torch"])
    st = json.loads(s["python"])
    random.setstate((st[0], tuple(st[1]), st[2]))


# --- the run ------------------------------------------------------------------------------------


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

    from xwing.learn.augment import AugmentConfig
    from xwing.geometry.camera import seed_camera
    from xwing.io.atomic import atomic_write_json
    from xwing.learn.net import build_net
    from xwing.learn.data import FolderDataset, PositionSampler, RenderedDataset, collate

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
        saved = TrainConfig.from_dict(ck["config"])
        cfg = replace(saved, max_minutes=cfg.max_minutes, max_steps=cfg.max_steps, workers=cfg.workers,
                      device=cfg.device, epochs=cfg.epochs if extend_epochs else saved.epochs)
    if main_proc:
        atomic_write_json(out / "config.json", cfg.to_dict())

    source = ck if ck is not None else (load_checkpoint(cfg.init) if cfg.init else None)
    if source is not None and ck is None:  # --init: the network and its labels come from the weights
        init_cfg = TrainConfig.from_dict(source["config"])
        cfg = replace(cfg, **{k: getattr(init_cfg, k) for k in _NET_FIELDS})
        if main_proc:
            atomic_write_json(out / "config.json", cfg.to_dict())
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    pts, codec, net_cfg = make_parts(cfg)
    if source is not None:  # keep the exact points those weights were trained on
        from xwing.model.keypoints import PointSet

        pts = PointSet.from_dict(source["points"])
    model = build_net(net_cfg).to(device)
    if cfg.init and ck is None:
        init = source
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in init["model"].items()})
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
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
    step, best = 0, float("inf")
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        step, best = int(ck["step"]), float(ck["best"])
        _set_rng_state(ck["rng"])
    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    roll_perm = torch.as_tensor(np.asarray(pts.roll180_perm), device=device)

    # Data: every item depends only on (seed, position).
    aug = AugmentConfig(hflip=cfg.hflip, rot90=cfg.rot90, scale=(cfg.scale_min, cfg.scale_max),
                        translate=cfg.translate, photometric=cfg.photometric, seed_style=cfg.seed_style_aug)
    gen_opts = {"view": cfg.view, **json.loads(cfg.render_options or "{}")}
    if cfg.view == "crop":
        gen_opts.setdefault("crop_size", cfg.input_size)
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
        val_ds = RenderedDataset(pts, codec, cfg.input_size, cfg.seed + 1_000_003, None, gen_opts, camera)
        val_items = []
        if main_proc:  # rendered in a worker process, so the parent never holds a GL context
            val_items = list(DataLoader(val_ds, batch_size=None, sampler=range(cfg.val_size),
                                        num_workers=1))

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
        save_checkpoint(path, {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "step": step, "best": best, "rng": _rng_state(), "config": cfg.to_dict(), "points": pts.to_dict(),
            "codec": codec.to_dict(), "net": net_cfg.to_dict(), "camera": camera.to_dict(),
            "images_seen": images_seen})

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


def save_weights(model, cfg, pts, codec, net_cfg, camera, path: Path, images_seen: int = 0) -> None:
    """The small portable file: fp16 weights + config, points, codec, camera."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_checkpoint(path, {"model": state, "config": cfg.to_dict(), "points": pts.to_dict(),
                           "codec": codec.to_dict(), "net": net_cfg.to_dict(), "camera": camera.to_dict(),
                           "images_seen": images_seen})


def _log_metrics(out: Path, metrics: dict, writer) -> None:
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


# --- CLI ----------------------------------------------------------------------------------------

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
    metrics = train(cfg, resume=args.resume, extend_epochs=args.epochs is not None)
    if metrics:
        print("final validation: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                             for k, v in metrics.items()))
    print(f"run directory: {cfg.out}")
    return 0
