"""``xwing export CKPT --out models/xwing.onnx``: a checkpoint -> a self-contained ONNX model.

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

import argparse
import json
import os
import warnings
from pathlib import Path

import numpy as np

from xwing.errors import XwingError


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

    from xwing.infer.detector import META_FORMAT, META_KEY
    from xwing.learn.net import MEAN_RGB, STD_RGB, ExportWrapper
    from xwing.learn.train import load_checkpoint, model_from_checkpoint

    out = Path(out)
    ck = load_checkpoint(checkpoint)
    model, cfg, pts, codec = model_from_checkpoint(ck)
    wrapper = ExportWrapper(model).eval()
    size = int(cfg.input_size)
    dummy = torch.zeros(1, size, size, 3, dtype=torch.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    meta = {
        "format": META_FORMAT, "version": 1,
        "input_size": size, "input": "image (B, H, W, 3) uint8 RGB, H and W multiples of 32",
        "normalisation": {"mean_rgb": list(MEAN_RGB), "std_rgb": list(STD_RGB), "where": "inside the model"},
        "outputs": {"heatmaps": "(B, K, Hc, Wc) logits on the codec canvas", "scores": "(B, 2) logits [presence, flip]"},
        "points": pts.to_dict(), "codec": codec.to_dict(), "symmetric": bool(cfg.symmetric),
        "camera": ck.get("camera"), "net": ck["net"], "preset": cfg.preset,
        "train": {"images_seen": int(ck.get("images_seen", 0)), "step": int(ck.get("step", 0)),
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
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(
                wrapper, (dummy,), str(tmp), input_names=["image"], output_names=["heatmaps", "scores"],
                dynamic_axes={"image": {0: "batch", 1: "height", 2: "width"},
                              "heatmaps": {0: "batch", 2: "canvas_h", 3: "canvas_w"}, "scores": {0: "batch"}},
                opset_version=opset, dynamo=False)
        m = onnx.load(str(tmp))
        m.producer_name = "xwing"
        prop = m.metadata_props.add()
        prop.key, prop.value = META_KEY, json.dumps(meta)
        onnx.save(m, str(tmp))
        if check:
            meta["max_abs_diff"] = _check(tmp, wrapper, size, verbose)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
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
        for g, r in zip(got, ref):
            if g.shape != r.shape:
                raise RuntimeError(f"ONNX output shape {g.shape} != PyTorch {r.shape}")
            worst = max(worst, float(np.abs(g - r).max()))
        if verbose:
            print(f"  checked batch {b} at {s} x {s}: heatmaps {got[0].shape}, max abs diff so far {worst:.2e}")
    return worst


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint (last.pt / best.pt) or fp16 weights (weights.pt, xwing.pt)")
    p.add_argument("--out", default="models/xwing.onnx", help="output ONNX file (default models/xwing.onnx)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the ONNX vs PyTorch check")
    p.add_argument("--pt-out", default=None, metavar="PATH",
                   help="also write the checkpoint's fp16 weights file (e.g. models/xwing.pt) for later training")
    p.add_argument("--bench", action="store_true",
                   help="after export, print ONNX Runtime batch-1 latency (ms, median) at 128, 160 and 256 px")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads for --bench (0: default)")


def benchmark(path: str | Path, sizes=(128, 160, 256), repeats: int = 50, threads: int = 0) -> dict:
    """Median batch-1 latency (ms) of the ONNX model alone and with decoding, per input size."""
    import time

    from xwing.infer.detector import OnnxDetector

    det = OnnxDetector(path, threads=threads or None)
    rng = np.random.default_rng(0)
    out = {}
    for s in sizes:
        img = rng.integers(0, 256, (1, s, s, 3), dtype=np.uint8)
        for _ in range(5):
            det.batch(img)
        raw, full = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            det.raw(img)
            t1 = time.perf_counter()
            det.batch(img)
            t2 = time.perf_counter()
            raw.append(t1 - t0)
            full.append(t2 - t1)
        out[s] = {"onnx_ms": 1e3 * float(np.median(raw)), "onnx_decode_ms": 1e3 * float(np.median(full))}
    return out


def save_fp16_weights(checkpoint: str | Path, out: str | Path) -> float:
    """Checkpoint -> small fp16 weights file (what ``xwing train --init`` and export read); MB."""
    from xwing.learn.train import load_checkpoint, save_checkpoint

    ck = load_checkpoint(checkpoint)
    small = {k: ck[k] for k in ("config", "points", "codec", "net", "camera", "images_seen", "step") if k in ck}
    small["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(Path(out), small)
    return Path(out).stat().st_size / 1e6


def run(args) -> int:
    meta = export_onnx(args.checkpoint, args.out, opset=args.opset, check=args.check)
    if args.pt_out:
        print(f"wrote {args.pt_out} ({save_fp16_weights(args.checkpoint, args.pt_out):.1f} MB, fp16)")
    diff = meta.get("max_abs_diff")
    print(f"wrote {args.out} ({meta['size_mb']:.1f} MB): input {meta['input_size']} px (any multiple of 32), "
          f"{len(meta['points']['points_3d'])} keypoints ({meta['train']['points']}), "
          f"max abs diff vs PyTorch {'not checked' if diff is None else f'{diff:.2e}'}")
    print(json.dumps({"out": str(args.out), "size_mb": round(meta["size_mb"], 3), "max_abs_diff": diff,
                      "input_size": meta["input_size"], "points": meta["train"]["points"]}))
    if args.bench:
        bench = benchmark(args.out, threads=args.threads)
        for size, r in bench.items():
            print(f"  {size} x {size}: {r['onnx_ms']:.2f} ms network, {r['onnx_decode_ms']:.2f} ms with decoding "
                  f"(batch 1, median)")
        print(json.dumps({"latency_ms": bench}))
    if diff is not None and diff > 1e-2:
        raise XwingError(f"ONNX output differs from PyTorch by {diff:.3g} (> 1e-2)", args.out)
    return 0
