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
)
from xwing.io.atomic import atomic_write_bytes, atomic_write_json
from xwing.model.keypoints import SEED_BOX_CORNERS
from xwing.model.mesh import HELD_OUT_VARIANT, sample_ship_variant, xwing_mesh
from xwing.model.symmetry import T_ROLL180, top_faces_camera
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


def _torch_net(in_channels: int = 3):
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d((3, 1)),
        nn.Flatten(), nn.Linear(96, 1))


#: Pose error (px, mean box corner) of the held-out measurement: what an aligned or tracked pose leaves.
HELD_OUT_MAX_ERROR_PX = 2.0


def render_patches(count: int, seed: int, max_error_px: float, progress: bool = False, look: str = "ship",
                   variants: int = 0, held_out: bool = False, grid_z=None):
    """(patches (N, NY, NX, 3) uint8, top (N,) float32, |cos| of view and normal (N,)).

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
    X, y, cosv = [], [], []
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
        if rng.random() < 0.5:
            T = T @ T_ROLL180
        X.append(sample_patch(s.image, T, cam.K, grid_z=grid_z))
        y.append(float(top_faces_camera(s.T_cam_obj)))
        t = s.T_cam_obj[:3, 3]
        cosv.append(abs(float(s.T_cam_obj[:3, 2] @ t / np.linalg.norm(t))))
    return np.stack(X), np.asarray(y, np.float32), np.asarray(cosv)


def accuracy_table(logits: np.ndarray, top: np.ndarray, cosv: np.ndarray) -> dict:
    """Share right overall, by |cos(view, normal)| band, and where confident (|p - 0.5| > 0.3)."""
    p = 1.0 / (1.0 + np.exp(-logits))
    right = (p > 0.5) == (top > 0.5)
    conf = np.abs(p - 0.5) > 0.3
    out = {"n": int(len(top)), "accuracy": float(right.mean()),
           "confident_share": float(conf.mean()), "confident_accuracy": float(right[conf].mean()) if conf.any()
           else math.nan}
    for lo, hi, name in ((0.0, 0.2, "edge_on"), (0.2, 0.5, "oblique"), (0.5, 1.01, "face_on")):
        m = (cosv >= lo) & (cosv < hi)
        out[name] = {"n": int(m.sum()), "accuracy": float(right[m].mean()) if m.any() else math.nan}
    return out


def train_side(cfg: SideTrainConfig, out: Path, progress: bool = True) -> dict:
    """Render, train, validate, write ``out`` (.npz) and its ``.json``; returns the JSON dict."""
    import torch
    import torch.nn.functional as F

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    # The optimiser first: it imports parts of torch that crash (segfault) when loaded
    # after Mesa's llvmpipe has made a GL context in this process.
    grid_z = GRID_Z if cfg.profile else None
    net = _torch_net(6 if cfg.profile else 3)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(cfg.count / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    use_cpu_renderer()
    t0 = time.time()
    Xtr, ytr, _ = render_patches(cfg.count, cfg.seed, cfg.max_error_px, progress, cfg.look, cfg.variants,
                                 grid_z=grid_z)
    Xva, yva, cva = render_patches(cfg.val_count, cfg.seed + 1, cfg.max_error_px, progress, grid_z=grid_z)
    Xho, yho, cho = render_patches(cfg.held_out_count, cfg.seed + 2, HELD_OUT_MAX_ERROR_PX, progress, "held_out",
                                   held_out=True, grid_z=grid_z)
    t_render = time.time() - t0
    A, B = torch.from_numpy(normalise_patches(Xtr)), torch.from_numpy(normalise_patches(Xva))
    ya = torch.from_numpy(ytr)
    epochs = range(cfg.epochs)
    if progress:
        from tqdm import tqdm

        epochs = tqdm(epochs, desc="train", unit="epoch")
    for _ in epochs:
        perm = torch.randperm(len(A))
        for k in range(0, len(A), cfg.batch_size):
            idx = perm[k:k + cfg.batch_size]
            x = A[idx]
            # The other roll hypothesis samples the mirrored patch: the label is the same.
            flip = torch.rand(len(idx)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss = F.binary_cross_entropy_with_logits(net(x)[:, 0], ya[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        val_logits = net(B)[:, 0].numpy()
        held_out_logits = net(torch.from_numpy(normalise_patches(Xho)))[:, 0].numpy()
    c1, c2, c3, fc = net[0], net[3], net[6], net[10]
    weights = {"format": np.array(SIDE_FORMAT_PROFILE if cfg.profile else SIDE_FORMAT),
               "grid_x": np.array(GRID_X, np.float64), "grid_y": np.array(GRID_Y, np.float64)}
    if cfg.profile:
        weights["grid_z"] = np.array(GRID_Z, np.float64)
    for name, layer in (("conv1", c1), ("conv2", c2), ("conv3", c3), ("fc", fc)):
        weights[f"{name}.w"] = layer.weight.detach().numpy().astype(np.float32)
        weights[f"{name}.b"] = layer.bias.detach().numpy().astype(np.float32)
    buf = io.BytesIO()
    np.savez_compressed(buf, **weights)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buf.getvalue())
    # The numpy forward pass must give the torch network's answers.
    np_logits = SideClassifier.load(out).logits(Xva[:64])
    doc = {"config": cfg.to_dict(), "train_images": int(len(A)), "val": accuracy_table(val_logits, yva, cva),
           "held_out": accuracy_table(held_out_logits, yho, cho),
           "numpy_vs_torch_max_abs_logit_diff": float(np.abs(np_logits - val_logits[:64]).max()),
           "render_s": round(t_render, 1), "total_s": round(time.time() - t0, 1)}
    atomic_write_json(out.with_suffix(".json"), doc)
    return doc


def evaluate_side(model: Path, cfg: SideTrainConfig, progress: bool = True) -> dict:
    """A trained classifier's figures on the validation images of ``cfg`` (``seed + 1``) and on the
    held-out ship (``seed + 2``), measured as :func:`train_side` measures (numpy, no torch)."""
    use_cpu_renderer()
    clf = SideClassifier.load(model)
    Xva, yva, cva = render_patches(cfg.val_count, cfg.seed + 1, cfg.max_error_px, progress, grid_z=clf.grid_z)
    Xho, yho, cho = render_patches(cfg.held_out_count, cfg.seed + 2, HELD_OUT_MAX_ERROR_PX, progress, "held_out",
                                   held_out=True, grid_z=clf.grid_z)
    return {"model": str(model), "config": cfg.to_dict(), "val": accuracy_table(clf.logits(Xva), yva, cva),
            "held_out": accuracy_table(clf.logits(Xho), yho, cho)}
