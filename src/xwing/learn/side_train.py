"""Train the top/bottom classifier of :mod:`xwing.infer.side` on rendered images (``xwing train-side``).

Data: the data engine's full frames (:class:`~xwing.render.generator.SampleGenerator`,
its default distribution, ship in view), each sampled on the canonical grid at the
true pose moved by a random SE(3) step that puts the box corners 0 to
``max_error_px`` (mean) off, about what PnP from the network leaves, and mirrored
at random (the other roll hypothesis samples exactly the mirrored patch). Label:
whether the top faces the camera at the true pose. Validation: the same with
``seed + 1``, reported overall, by viewing angle and where confident.

With ``look="wide"`` and ``variants > 0`` the training images are painted far beyond the
X-wing's look and the ship's top details vary (:func:`xwing.model.mesh.sample_ship_variant`),
so that the cue reads where the canopy and the droid are rather than one ship's textures.
Every run is also measured on a held-out ship (:data:`xwing.model.mesh.HELD_OUT_VARIANT`,
painted with the ``"held_out"`` look, seed ``seed + 2``, the pose 0-2 px off) that no
training image shows.

Writes ``OUT`` (``.npz``: weights, grid, format tag; what :class:`xwing.infer.side.SideClassifier`
loads) and ``OUT`` with ``.json`` (config and validation figures). Needs torch and
moderngl (``pip install 'xwing[train,render]'``).
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xwing.config import SavedConfig
from xwing.geometry.camera import seed_camera
from xwing.geometry.perturb import perturb_to_error
from xwing.infer.side import (
    GRID_X,
    GRID_Y,
    GRID_Z,
    SIDE_FORMAT,
    SIDE_FORMAT_PROFILE,
    SideClassifier,
    normalise_patches,
    sample_patch,
    top_logits,
)
from xwing.io.atomic import atomic_write_bytes, atomic_write_json
from xwing.model.keypoints import SEED_BOX_CORNERS
from xwing.model.mesh import HELD_OUT_VARIANT, sample_ship_variant, xwing_mesh
from xwing.model.symmetry import T_ROLL180, facing_cos, top_faces_camera
from xwing.render.generator import GeneratorConfig, SampleGenerator
from xwing.render.gl import use_cpu_renderer


@dataclass(frozen=True)
class SideTrainConfig(SavedConfig):
    """Everything a side-classifier run depends on (saved beside the weights)."""

    count: int = 16000
    val_count: int = 1000
    seed: int = 101
    max_error_px: float = 8.0
    epochs: int = 25
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-3
    threads: int = 0
    look: str = "ship"
    variants: int = 0
    held_out_count: int = 1000
    profile: bool = False


def _torch_trunk():
    """One view's trunk (:class:`xwing.infer.side.SideClassifier`'s layout): (B, 3, NY, NX) -> (B, 1)."""
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d((3, 1)),
        nn.Flatten(), nn.Linear(96, 1))


def _torch_net(profile: bool = False):
    """The classifier: one trunk per 3-channel view (mid-plane; with ``profile`` also the profile),
    (B, 3 k, NY, NX) -> (B, k)."""
    import torch
    import torch.nn as nn

    class Views(nn.Module):
        def __init__(self, k: int):
            super().__init__()
            self.trunks = nn.ModuleList(_torch_trunk() for _ in range(k))

        def forward(self, x):
            return torch.cat([t(x[:, 3 * i:3 * i + 3]) for i, t in enumerate(self.trunks)], dim=1)

    return Views(2 if profile else 1)


#: Pose error (px, mean box corner) of the held-out measurement: what an aligned or tracked pose leaves.
HELD_OUT_MAX_ERROR_PX = 2.0


@dataclass
class Patches:
    """Rendered patches and what is known of each.

    Attributes:
        x: (N, NY, NX, C) uint8 patches sampled at the pose hypothesis.
        top: (N,) float32, 1 where the top faces the camera at the true pose.
        cos_true: (N,) |:func:`~xwing.model.symmetry.facing_cos`| of the true pose (the view's band).
        facing: (N,) :func:`~xwing.model.symmetry.facing_cos` of the hypothesis.
        rolled: (N,) bool, the hypothesis is the (perturbed) true pose rolled 180 degrees.
    """

    x: np.ndarray
    top: np.ndarray
    cos_true: np.ndarray
    facing: np.ndarray
    rolled: np.ndarray


def render_patches(count: int, seed: int, max_error_px: float, progress: bool = False, look: str = "ship",
                   variants: int = 0, held_out: bool = False, grid_z=None, roll: bool = True) -> Patches:
    """Patches of ``count`` rendered images (those with the ship in view), each at the true pose
    moved 0 to ``max_error_px`` off and, with ``roll``, rolled at random.

    ``variants``: that many ship variants (:func:`xwing.model.mesh.sample_ship_variant`,
    drawn from ``seed``) take the images in turn; 0: the procedural X-wing. ``held_out``:
    the held-out ship instead (:data:`xwing.model.mesh.HELD_OUT_VARIANT`). ``grid_z``: also the
    profile patch (:func:`xwing.infer.side.sample_patch`)."""
    cam = seed_camera()
    config = GeneratorConfig(seed=seed, p_out_of_view=0.0, look=look)
    if held_out:
        meshes = [xwing_mesh(HELD_OUT_VARIANT)]
    elif variants > 0:
        vrng = np.random.default_rng([seed, 11])
        meshes = [xwing_mesh(sample_ship_variant(vrng)) for _ in range(variants)]
    else:
        meshes = [None]
    gens = [SampleGenerator(config, cam, mesh) for mesh in meshes]
    rows = []
    it = range(count)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"render (seed {seed})", unit="img")
    for i in it:
        s = gens[i % len(gens)].sample_index(i)
        if not s.ship_visible:
            continue
        rng = np.random.default_rng([seed, i, 7])
        T = s.T_cam_obj
        if max_error_px > 0:
            T, _ = perturb_to_error(T, cam.K, SEED_BOX_CORNERS, float(rng.uniform(0.0, max_error_px)), rng)
        rolled = bool(rng.random() < 0.5) and roll  # drawn either way: the stream is the same
        if rolled:
            T = T @ T_ROLL180
        rows.append((sample_patch(s.image, T, cam.K, grid_z=grid_z), float(top_faces_camera(s.T_cam_obj)),
                     abs(facing_cos(s.T_cam_obj)), facing_cos(T), rolled))
    x, top, cos_true, facing, rolled = zip(*rows)
    return Patches(np.stack(x), np.asarray(top, np.float32), np.asarray(cos_true), np.asarray(facing),
                   np.asarray(rolled, bool))


def _check_sets(cfg: SideTrainConfig, grid_z, progress: bool) -> tuple[Patches, Patches]:
    """The patches every cue is measured on: validation renders of our ship (``seed + 1``) and the
    held-out ship (``seed + 2``, its paint, the pose 0-2 px off)."""
    val = render_patches(cfg.val_count, cfg.seed + 1, cfg.max_error_px, progress, grid_z=grid_z)
    held_out = render_patches(cfg.held_out_count, cfg.seed + 2, HELD_OUT_MAX_ERROR_PX, progress, "held_out",
                              held_out=True, grid_z=grid_z)
    return val, held_out


def accuracy_table(top_logits: np.ndarray, patches: Patches, roll_logits: np.ndarray | None = None) -> dict:
    """Share right overall, by the true pose's |cos(up, view)| band, and where confident (|p - 0.5| > 0.3):
    ``accuracy``, whether the top faces the camera; ``roll_accuracy``, whether the cue picks the true
    roll of the (perturbed) pose it is given: from ``roll_logits`` (format 2), else from the top logit
    and the pose's facing (:func:`xwing.model.symmetry.choose_roll`'s rule)."""
    p = 1.0 / (1.0 + np.exp(-top_logits))
    right = (p > 0.5) == (patches.top > 0.5)
    picks_given = roll_logits > 0 if roll_logits is not None else (p > 0.5) == (patches.facing > 0)
    roll_right = picks_given != patches.rolled
    conf = np.abs(p - 0.5) > 0.3
    out = {"n": int(len(right)), "accuracy": float(right.mean()), "roll_accuracy": float(roll_right.mean()),
           "confident_share": float(conf.mean()), "confident_accuracy": float(right[conf].mean()) if conf.any()
           else math.nan}
    for lo, hi, name in ((0.0, 0.2, "edge_on"), (0.2, 0.5, "oblique"), (0.5, 1.01, "face_on")):
        m = (patches.cos_true >= lo) & (patches.cos_true < hi)
        out[name] = {"n": int(m.sum()), "accuracy": float(right[m].mean()) if m.any() else math.nan,
                     "roll_accuracy": float(roll_right[m].mean()) if m.any() else math.nan}
    return out


def measure(clf: SideClassifier, patches: Patches) -> dict:
    """:func:`accuracy_table` of a trained classifier (numpy, as at inference)."""
    if clf.profile:
        roll = clf.roll_logits(patches.x, patches.facing)
        return accuracy_table(top_logits(roll, patches.facing), patches, roll)
    return accuracy_table(clf.logits(patches.x), patches)


def _step_loss(net, x, top, facing, profile: bool):
    """The batch's loss. Format 1: the top from a patch mirrored at random (the other roll samples
    the mirrored patch: same label). Format 2: each patch is the true roll's or, mirrored, the rolled
    pose's (facing negated), and the label is which; the output is built as at inference
    (:meth:`xwing.infer.side.SideClassifier.roll_logits`)."""
    import torch
    import torch.nn.functional as F

    flip = torch.rand(len(x)) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if not profile:
        return F.binary_cross_entropy_with_logits(net(x)[:, 0], top)
    facing = torch.where(flip, -facing, facing)
    out, mirrored = net(x), net(x.flip(3))
    g, h = 0.5 * (out[:, 0] + mirrored[:, 0]), 0.5 * (out[:, 1] - mirrored[:, 1])
    logit = torch.where(facing > 0, 1.0, -1.0) * g + h
    return F.binary_cross_entropy_with_logits(logit, (~flip).float())


def edge_on_weight(table: dict) -> float:
    """How much the cue's roll evidence counts edge-on against face-on, from its validation
    :func:`accuracy_table`: how far above chance it is right edge-on, as a share of how far
    face-on (0 at chance edge-on, 1 as good as face-on)."""
    edge, face = table["edge_on"]["roll_accuracy"], table["face_on"]["roll_accuracy"]
    if not (math.isfinite(edge) and math.isfinite(face)) or face <= 0.5:
        return 0.0
    return float(np.clip((edge - 0.5) / (face - 0.5), 0.0, 1.0))


def numpy_weights(net) -> dict:
    """The trunks' weights under :class:`xwing.infer.side.SideClassifier`'s names."""
    out = {}
    for prefix, trunk in zip(("", "profile."), net.trunks):
        for name, idx in (("conv1", 0), ("conv2", 3), ("conv3", 6), ("fc", 10)):
            out[f"{prefix}{name}.w"] = trunk[idx].weight.detach().numpy().astype(np.float32)
            out[f"{prefix}{name}.b"] = trunk[idx].bias.detach().numpy().astype(np.float32)
    return out


def train_side(cfg: SideTrainConfig, out: Path, progress: bool = True) -> dict:
    """Render, train, validate, write ``out`` (.npz) and its ``.json``; returns the JSON dict."""
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    # The optimiser first: it imports parts of torch that crash (segfault) when loaded
    # after Mesa's llvmpipe has made a GL context in this process.
    grid_z = GRID_Z if cfg.profile else None
    net = _torch_net(cfg.profile)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(cfg.count / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    use_cpu_renderer()
    t0 = time.time()
    # Format 2 learns which roll it is given: its training patches come unrolled and are rolled
    # (mirrored) in the batch, with the label.
    train = render_patches(cfg.count, cfg.seed, cfg.max_error_px, progress, cfg.look, cfg.variants, grid_z=grid_z,
                           roll=not cfg.profile)
    val, held_out = _check_sets(cfg, grid_z, progress)
    t_render = time.time() - t0
    A = torch.from_numpy(normalise_patches(train.x))
    top, facing = torch.from_numpy(train.top), torch.from_numpy(train.facing.astype(np.float32))
    epochs = range(cfg.epochs)
    if progress:
        from tqdm import tqdm

        epochs = tqdm(epochs, desc="train", unit="epoch")
    for _ in epochs:
        perm = torch.randperm(len(A))
        for k in range(0, len(A), cfg.batch_size):
            idx = perm[k:k + cfg.batch_size]
            loss = _step_loss(net, A[idx], top[idx], facing[idx], cfg.profile)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    weights = {"format": np.array(SIDE_FORMAT_PROFILE if cfg.profile else SIDE_FORMAT),
               "grid_x": np.array(GRID_X, np.float64), "grid_y": np.array(GRID_Y, np.float64)}
    if cfg.profile:
        weights["grid_z"] = np.array(GRID_Z, np.float64)
    weights.update(numpy_weights(net))
    clf = SideClassifier(weights, str(out))
    val_table = measure(clf, val)
    if cfg.profile:
        weights["edge_on_weight"] = np.array(edge_on_weight(val_table))
    buf = io.BytesIO()
    np.savez_compressed(buf, **weights)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buf.getvalue())
    # The numpy forward pass must give the torch network's answers.
    clf = SideClassifier.load(out)
    with torch.no_grad():
        torch_out = net(torch.from_numpy(normalise_patches(val.x[:64]))).numpy()
    doc = {"config": cfg.to_dict(), "train_images": int(len(A)), "val": val_table,
           "edge_on_weight": clf.edge_on_weight, "held_out": measure(clf, held_out),
           "numpy_vs_torch_max_abs_logit_diff": float(np.abs(clf._forward(val.x[:64]) - torch_out).max()),
           "render_s": round(t_render, 1), "total_s": round(time.time() - t0, 1)}
    atomic_write_json(out.with_suffix(".json"), doc)
    return doc


def evaluate_side(model: Path, cfg: SideTrainConfig, progress: bool = True) -> dict:
    """A trained classifier's figures on the validation images of ``cfg`` (``seed + 1``) and on the
    held-out ship (``seed + 2``), measured as :func:`train_side` measures (numpy, no torch)."""
    use_cpu_renderer()
    clf = SideClassifier.load(model)
    val, held_out = _check_sets(cfg, clf.grid_z, progress)
    return {"model": str(model), "config": cfg.to_dict(), "val": measure(clf, val), "held_out": measure(clf, held_out)}
