"""Checkpoints: the one module that knows their layout (everything else reads and writes them here).

A checkpoint is a dict saved with ``torch.save`` and read back with
``weights_only=True`` (plain containers and tensors only). Two kinds:

* training checkpoint (``last.pt``, ``best.pt``): ``model`` (float32 state dict),
  ``optimizer``, ``scheduler``, ``step``, ``best`` (lowest validation rotation
  error so far), ``rng`` (torch and Python RNG states), then the portable part;
* weights (``weights.pt``, ``models/xwing.pt``): ``model`` in fp16, then the
  portable part (and ``step`` when cut from a training checkpoint).

The portable part is what rebuilding and decoding the network needs:
``config`` (:class:`~xwing.learn.config.TrainConfig` dict), ``points``
(:class:`~xwing.model.points.PointSet`), ``codec``
(:class:`~xwing.infer.codec.HeatmapCodec`), ``net``
(:class:`~xwing.learn.net.NetConfig`), ``camera`` (the training camera) and
``images_seen``. Files are written atomically: readers never see half a file.
Resume is exact because a training checkpoint holds every state the loop has
(the data depend only on seed and position).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from xwing.errors import XwingError
from xwing.infer.codec import HeatmapCodec
from xwing.io.atomic import AtomicFile
from xwing.learn.config import TrainConfig
from xwing.learn.net import NetConfig, build_net
from xwing.model.points import PointSet

#: What a weights file keeps of a training checkpoint besides the weights, in this order.
PORTABLE_KEYS = ("config", "points", "codec", "net", "camera", "images_seen", "step")


# --- files ---------------------------------------------------------------------------------------


def save_checkpoint(path: str | Path, state: dict) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it over ``path``."""
    import torch

    with AtomicFile(path) as f:
        torch.save(state, f.tmp)


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


# --- writing -------------------------------------------------------------------------------------


def _half(state: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def _float(state: dict) -> dict:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _portable(cfg: TrainConfig, pts: PointSet, codec: HeatmapCodec, net_cfg: NetConfig, camera,
              images_seen: int) -> dict:
    return {"config": cfg.to_dict(), "points": pts.to_dict(), "codec": codec.to_dict(), "net": net_cfg.to_dict(),
            "camera": camera.to_dict(), "images_seen": images_seen}


def training_state(model, opt, sched, step: int, best: float, cfg: TrainConfig, pts: PointSet,
                   codec: HeatmapCodec, net_cfg: NetConfig, camera, images_seen: int) -> dict:
    """The full training checkpoint of the loop's current state."""
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "step": step, "best": best, "rng": rng_state(),
            **_portable(cfg, pts, codec, net_cfg, camera, images_seen)}


def save_weights(model, cfg: TrainConfig, pts: PointSet, codec: HeatmapCodec, net_cfg: NetConfig, camera,
                 path: str | Path, images_seen: int = 0) -> None:
    """The small portable file: fp16 weights + config, points, codec, camera."""
    save_checkpoint(path, {"model": _half(model.state_dict()),
                           **_portable(cfg, pts, codec, net_cfg, camera, images_seen)})


def save_fp16_weights(checkpoint: str | Path, out: str | Path) -> float:
    """Checkpoint -> small fp16 weights file (what ``xwing train --init`` and export read); MB."""
    ck = load_checkpoint(checkpoint)
    small = {k: ck[k] for k in PORTABLE_KEYS if k in ck}
    small["model"] = _half(ck["model"])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(Path(out), small)
    return Path(out).stat().st_size / 1e6


# --- reading -------------------------------------------------------------------------------------


def config_of(ck: dict) -> TrainConfig:
    """The run's :class:`TrainConfig`."""
    return TrainConfig.from_dict(ck["config"])


def points_of(ck: dict) -> PointSet:
    """The exact keypoints the weights were trained on."""
    return PointSet.from_dict(ck["points"])


def describe(ck: dict) -> dict:
    """What a checkpoint says beyond weights and config: ``net`` (dict), ``camera`` (dict, or None
    in files that lack it), ``images_seen`` and ``step`` (0 where absent)."""
    return {"net": ck["net"], "camera": ck.get("camera"), "images_seen": int(ck.get("images_seen", 0)),
            "step": int(ck.get("step", 0))}


def load_weights(model, ck: dict) -> None:
    """Load the checkpoint's weights (either kind) into ``model`` as float32."""
    try:
        model.load_state_dict(_float(ck["model"]))
    except RuntimeError as e:
        raise XwingError(f"checkpoint weights do not fit its network ({str(e).splitlines()[0][:120]})") from None


def model_from_checkpoint(ck: dict):
    """Checkpoint dict -> (model in float32, eval mode, TrainConfig, PointSet, codec)."""
    cfg, pts, codec = config_of(ck), points_of(ck), HeatmapCodec.from_dict(ck["codec"])
    model = build_net(NetConfig.from_dict(ck["net"]))
    load_weights(model, ck)
    return model.eval(), cfg, pts, codec


def restore_training(ck: dict, model, opt, sched) -> tuple[int, float]:
    """Put a training checkpoint's model, optimiser, scheduler and RNG states back; (step, best)."""
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    set_rng_state(ck["rng"])
    return int(ck["step"]), float(ck["best"])


# --- RNG -----------------------------------------------------------------------------------------


def rng_state() -> dict:
    """torch's and Python's RNG states, in a form ``weights_only`` loading accepts."""
    import torch

    return {"torch": torch.get_rng_state(), "python": json.dumps(random.getstate())}


def set_rng_state(s: dict) -> None:
    import torch

    torch.set_rng_state(s["torch"])
    st = json.loads(s["python"])
    random.setstate((st[0], tuple(st[1]), st[2]))
