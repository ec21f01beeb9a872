"""Which ONNX file plays each recipe: ``ours``, ``seed`` and (if present) ``shipped``.

A checkpoint is exported to ONNX first (needs torch); a recipe without a model is
played by a randomly initialised network of its preset, which costs the same time
as a trained one (speed only, never accuracy). torch is imported only for those
two cases, never for an ONNX file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xwing.defaults import DEFAULT_MODEL
from xwing.errors import XwingError
from xwing.eval.bench.config import BenchConfig
from xwing.geometry.camera import seed_camera
from xwing.infer.detector import read_metadata


@dataclass
class Recipe:
    """One side of the comparison: its ONNX file and where it came from."""

    name: str
    onnx: str | None = None
    source: str = ""
    trained: bool = False
    training: dict = field(default_factory=dict)
    note: str = ""


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def export_random(preset: str, out: Path, seed: int = 0) -> Path:
    """Export a randomly initialised ``--preset fast|seed`` network to ``out`` (ONNX):
    its speed is a trained one's. Needs torch (imported here)."""
    from dataclasses import replace

    import torch

    from xwing.learn.checkpoint import save_weights
    from xwing.learn.config import SEED_PRESET, TrainConfig
    from xwing.learn.export import export_onnx
    from xwing.learn.net import build_net
    from xwing.learn.train import make_parts

    cfg = TrainConfig() if preset == "fast" else replace(TrainConfig(), preset="seed", **SEED_PRESET)
    pts, codec, net_cfg = make_parts(cfg)
    torch.manual_seed(seed)
    model = build_net(net_cfg).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    weights = out.with_suffix(".pt")
    save_weights(model, cfg, pts, codec, net_cfg, seed_camera(), weights)
    try:
        export_onnx(weights, out, check=False, verbose=False)
    finally:
        weights.unlink(missing_ok=True)
    return out


def training_info(path: str | Path) -> dict:
    """What a model's training cost: preset, wall-clock budget, minutes, images seen (from a
    checkpoint, with torch, and the run's metrics.csv beside it; or from ONNX metadata)."""
    path = Path(path)
    info: dict = {"file": str(path)}
    if path.suffix.lower() == ".onnx":
        meta = read_metadata(path)
        train = meta.get("train", {})
        info.update(preset=meta.get("preset"), images_seen=train.get("images_seen"), step=train.get("step"),
                    loss=train.get("loss"), points=train.get("points"))
        return info
    from xwing.learn.checkpoint import describe, load_checkpoint

    ck = load_checkpoint(path)
    cfg, seen = ck.get("config", {}), describe(ck)
    info.update(preset=cfg.get("preset"), budget_minutes=cfg.get("max_minutes") or None,
                images_seen=seen["images_seen"], step=seen["step"],
                input_size=cfg.get("input_size"), view=cfg.get("view"), device=cfg.get("device"),
                batch_size=cfg.get("batch_size"))
    csv_path = path.parent / "metrics.csv"
    if csv_path.is_file():
        import csv

        rows = list(csv.DictReader(csv_path.open()))
        if rows and rows[-1].get("minutes"):
            try:
                info["minutes_at_last_validation"] = float(rows[-1]["minutes"])
            except ValueError:
                pass
    return info


def to_onnx(path: str | Path, out_dir: Path, name: str) -> Path:
    """An ONNX file for ``path``: itself, or a checkpoint exported into ``out_dir``."""
    path = Path(path)
    if not path.is_file():
        raise XwingError("model or checkpoint not found", path)
    if path.suffix.lower() == ".onnx":
        read_metadata(path)  # a one-line error for a foreign file, now rather than mid-run
        return path
    if not _torch_available():
        raise XwingError("a checkpoint needs torch to export (pip install 'xwing[train]'), or pass an .onnx file",
                         path)
    from xwing.learn.export import checkpoint_to_onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    return checkpoint_to_onnx(path, out_dir / f"{name}.onnx")


def resolve_recipes(cfg: BenchConfig, out: Path, notes: list[str], need_speed: bool = True) -> dict[str, Recipe]:
    """Which ONNX file stands for ``ours``, ``seed`` and (if present) ``shipped``; with
    ``need_speed``, random nets stand in for missing ones (speed only)."""
    models = out / "models"
    recipes: dict[str, Recipe] = {}
    shipped = Path(cfg.model) if cfg.model and cfg.model.lower() != "none" else None
    if shipped is not None and shipped.is_file():
        recipes["shipped"] = Recipe("shipped", str(to_onnx(shipped, models, "shipped")), f"shipped model {shipped}",
                                    trained=True)
    elif shipped is not None and cfg.model != DEFAULT_MODEL:
        raise XwingError("model not found", cfg.model)

    ours, seed = Recipe("ours"), Recipe("seed")
    for r, ckpt, preset in ((ours, cfg.ours_ckpt, "fast"), (seed, cfg.seed_ckpt, "seed")):
        if ckpt:
            r.onnx = str(to_onnx(ckpt, models, r.name))
            r.source, r.trained = f"{ckpt} (xwing train --preset {preset})", True
            r.training = training_info(ckpt) if (Path(ckpt).suffix == ".onnx" or _torch_available()) else {}
    for r, want in ((ours, "fast"), (seed, "seed")):
        got = r.training.get("preset")
        if got and got != want:
            notes.append(f"{r.name}: the model was trained with --preset {got}, not --preset {want}")
    need_random = [r for r in (ours, seed) if r.onnx is None and not (r.name == "ours" and "shipped" in recipes)
                   and need_speed]
    if need_random and not _torch_available():
        for r in need_random:
            r.note = "no model: a random --preset net needs torch (pip install 'xwing[train]'); speed skipped"
            notes.append(f"{r.name}: {r.note}")
    elif need_random:
        for r in need_random:
            preset = "fast" if r.name == "ours" else "seed"
            r.onnx = str(export_random(preset, models / f"{r.name}_random_{preset}.onnx"))
            r.source = f"randomly initialised --preset {preset} network (same compute as a trained one)"
    if ours.onnx is None and "shipped" in recipes:
        # Speed only: the shipped model is not a same-budget recipe, so ours.trained stays False.
        ours.onnx, ours.source = recipes["shipped"].onnx, recipes["shipped"].source
    recipes["ours"], recipes["seed"] = ours, seed
    return recipes


def speed_model_for(recipes: dict[str, Recipe]) -> dict[str, str | None]:
    """The ONNX file each recipe's speed is measured with (ours: the shipped model first)."""
    ours = recipes["shipped"].onnx if "shipped" in recipes else recipes["ours"].onnx
    return {"ours": ours, "seed": recipes["seed"].onnx}
