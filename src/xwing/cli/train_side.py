"""``xwing train-side``: train the top/bottom classifier that settles the ship's roll.

The training is :func:`xwing.learn.side_train.train_side`; it writes ``--out``
(``.npz``, what :class:`xwing.infer.side.SideClassifier` loads) and its ``.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xwing.errors import XwingError
from xwing.learn.side_train import SideTrainConfig, train_side


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="models/xwing.side.npz",
                   help="weights file (default models/xwing.side.npz, found next to models/xwing.onnx)")
    d = SideTrainConfig()
    p.add_argument("--count", type=int, default=d.count, help=f"training images (default {d.count})")
    p.add_argument("--val-count", type=int, default=d.val_count, help=f"validation images (default {d.val_count})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"data seed (validation: seed + 1; default {d.seed})")
    p.add_argument("--max-error-px", type=float, default=d.max_error_px,
                   help=f"poses are 0 to this many px off the truth (default {d.max_error_px})")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs (default {d.epochs})")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: its choice)")


def run(args) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise XwingError("xwing train-side needs torch: pip install 'xwing[train,render]'") from None
    if args.count < 10 or args.val_count < 10:
        raise XwingError("--count and --val-count must be at least 10")
    cfg = SideTrainConfig(count=args.count, val_count=args.val_count, seed=args.seed,
                          max_error_px=args.max_error_px, epochs=args.epochs, threads=args.threads)
    out = Path(args.out)
    doc = train_side(cfg, out)
    v = doc["val"]
    print(f"side classifier: {v['n']} validation images, right {v['accuracy']:.3f} "
          f"(face-on {v['face_on']['accuracy']:.3f}, oblique {v['oblique']['accuracy']:.3f}, "
          f"edge-on {v['edge_on']['accuracy']:.3f}); confident on {v['confident_share']:.2f}: "
          f"{v['confident_accuracy']:.3f}")
    print(f"wrote {out} and {out.with_suffix('.json')}")
    print(json.dumps({"numpy_vs_torch_max_abs_logit_diff": doc["numpy_vs_torch_max_abs_logit_diff"]}))
    return 0
