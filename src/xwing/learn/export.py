"""A checkpoint -> a self-contained ONNX model (what ``xwing export`` runs).

The ONNX model takes ``image`` (B, H, W, 3) uint8 RGB (batch, height and width
dynamic; H, W multiples of 32; normalisation is inside the graph) and returns
``heatmaps`` (B, K, Hc, Wc) logits on the codec's canvas and ``scores`` (B, 2)
logits [presence, flip]. Its metadata (key ``xwing``, JSON) holds the input
size, normalisation, the keypoint table with its symmetries, the codec, the
training camera and the training summary, so inference needs nothing else
(:class:`xwing.infer.detector.OnnxDetector`). The export is checked against PyTorch
on random images at two sizes and batch sizes; the max abs difference is printed.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.infer.detector import META_FORMAT, META_KEY, OnnxDetector
from xwing.infer.latency import onnx_latency
from xwing.io.atomic import AtomicFile
from xwing.learn.checkpoint import describe, load_checkpoint, model_from_checkpoint
from xwing.learn.net import MEAN_RGB, STD_RGB, ExportWrapper


def checkpoint_to_onnx(checkpoint: str | Path, out: str | Path) -> Path:
    """Export a training checkpoint for inference (no check, quiet); any failure of a
    bad file becomes one :class:`XwingError` naming it."""
    try:
        export_onnx(checkpoint, out, check=False, verbose=False)
    except XwingError:
        raise
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise XwingError(f"not a loadable checkpoint or ONNX model ({type(e).__name__})", checkpoint) from None
    return Path(out)


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = 17, check: bool = True,
                verbose: bool = True) -> dict:
    """Export; returns the metadata dict plus ``max_abs_diff`` (when checked)."""
    import onnx
    import torch

    out = Path(out)
    ck = load_checkpoint(checkpoint)
    model, cfg, pts, codec = model_from_checkpoint(ck)
    facts = describe(ck)
    wrapper = ExportWrapper(model).eval()
    size = int(cfg.input_size)
    dummy = torch.zeros(1, size, size, 3, dtype=torch.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": META_FORMAT, "version": 1,
        "input_size": size, "input": "image (B, H, W, 3) uint8 RGB, H and W multiples of 32",
        "normalisation": {"mean_rgb": list(MEAN_RGB), "std_rgb": list(STD_RGB), "where": "inside the model"},
        "outputs": {"heatmaps": "(B, K, Hc, Wc) logits on the codec canvas",
                    "scores": "(B, 2) logits [presence, flip]"},
        "points": pts.to_dict(), "codec": codec.to_dict(), "symmetric": bool(cfg.symmetric),
        "camera": facts["camera"], "net": facts["net"], "preset": cfg.preset,
        "train": {"images_seen": facts["images_seen"], "step": facts["step"],
                  "loss": cfg.loss, "points": cfg.points, "seed": cfg.seed,
                  "data": list(cfg.data) or f"rendered on the fly (view={cfg.view})"},
    }
    if not cfg.data and cfg.view == "crop":  # how full the ship filled the training crops (for zoomed passes)
        fill = json.loads(cfg.render_options or "{}").get("crop_fill")
        if fill is None:
            try:
                from xwing.render.generator import GeneratorConfig

                fill = list(GeneratorConfig().crop_fill)
            except Exception:  # noqa: BLE001 - the render extras are optional here
                fill = None
        meta["train"]["crop_fill"] = fill
    meta["train"]["view"] = "folders" if cfg.data else cfg.view
    with AtomicFile(out) as f:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(
                wrapper, (dummy,), str(f.tmp), input_names=["image"], output_names=["heatmaps", "scores"],
                dynamic_axes={"image": {0: "batch", 1: "height", 2: "width"},
                              "heatmaps": {0: "batch", 2: "canvas_h", 3: "canvas_w"}, "scores": {0: "batch"}},
                opset_version=opset, dynamo=False)
        m = onnx.load(str(f.tmp))
        m.producer_name = "xwing"
        prop = m.metadata_props.add()
        prop.key, prop.value = META_KEY, json.dumps(meta)
        onnx.save(m, str(f.tmp))
        if check:  # before the rename: a check that raises leaves nothing at ``out``
            meta["max_abs_diff"] = _check(f.tmp, wrapper, size, verbose)
    meta["size_mb"] = out.stat().st_size / 1e6
    return meta


def _check(path: Path, wrapper, size: int, verbose: bool) -> float:
    """Max abs difference ONNX Runtime vs PyTorch over two batch/size combinations."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for b, s in ((1, size), (2, size + 32)):
        x = rng.integers(0, 256, (b, s, s, 3), dtype=np.uint8)
        got = sess.run(None, {"image": x})
        with torch.no_grad():
            ref = [t.numpy() for t in wrapper(torch.from_numpy(x))]
        for g, r in zip(got, ref, strict=True):
            if g.shape != r.shape:
                raise RuntimeError(f"ONNX output shape {g.shape} != PyTorch {r.shape}")
            worst = max(worst, float(np.abs(g - r).max()))
        if verbose:
            print(f"  checked batch {b} at {s} x {s}: heatmaps {got[0].shape}, max abs diff so far {worst:.2e}")
    return worst


def benchmark(path: str | Path, sizes=(128, 160, 256), repeats: int = 50, threads: int = 0) -> dict:
    """Median batch-1 latency (ms) of the ONNX model alone and with decoding, per input size."""
    det = OnnxDetector(path, threads=threads or None)
    rng = np.random.default_rng(0)
    out = {}
    for s in sizes:
        t = onnx_latency(det, s, warmup=5, repeats=repeats, stages=("network", "detect"), rng=rng)
        out[s] = {"onnx_ms": t["network"]["median"], "onnx_decode_ms": t["detect"]["median"]}
    return out
