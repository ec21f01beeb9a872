"""``xwing export CKPT --out models/xwing.onnx``: a checkpoint -> a self-contained ONNX model.

The export itself is :func:`xwing.learn.export.export_onnx` (checked against
PyTorch unless ``--no-check``); ``--pt-out`` also writes the small fp16
weights file, ``--bench`` prints ONNX Runtime latencies afterwards.
"""

from __future__ import annotations

import argparse
import json

from xwing.errors import XwingError


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


def run(args) -> int:
    # torch: only once an export really starts, never for --help
    from xwing.learn.checkpoint import save_fp16_weights
    from xwing.learn.export import benchmark, export_onnx

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
