"""``xwing train-side``: train the top/bottom classifier that settles the ship's roll.

The training is :func:`xwing.learn.side_train.train_side`; it writes ``--out``
(``.npz``, what :class:`xwing.infer.side.SideClassifier` loads) and its ``.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xwing.errors import XwingError
from xwing.io.atomic import atomic_write_json
from xwing.learn.side_train import SideTrainConfig, evaluate_side, train_side
from xwing.render.appearance import LOOKS


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
    p.add_argument("--look", choices=LOOKS, default=d.look,
                   help=f"paint of the training images: near the X-wing's (ship) or far beyond it (wide; "
                        f"default {d.look})")
    p.add_argument("--variants", type=int, default=d.variants,
                   help="random ship variants (canopy, droid, panels) the training images take in turn "
                        f"(0: the procedural X-wing; default {d.variants})")
    p.add_argument("--profile", action="store_true",
                   help="also sample the ship's side profile (the symmetry plane), which shows the canopy and "
                        "the droid where the mid-plane is seen edge-on")
    p.add_argument("--held-out-count", type=int, default=d.held_out_count,
                   help=f"images of the held-out ship measured after training (default {d.held_out_count})")
    p.add_argument("--evaluate", metavar="FILE", default=None,
                   help="measure this trained classifier on the validation images and the held-out ship "
                        "instead of training (writes FILE's name with .eval.json)")


def run(args) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise XwingError("xwing train-side needs torch: pip install 'xwing[train,render]'") from None
    if args.count < 10 or args.val_count < 10 or args.held_out_count < 10:
        raise XwingError("--count, --val-count and --held-out-count must be at least 10")
    if args.variants < 0:
        raise XwingError("--variants must be 0 or more")
    cfg = SideTrainConfig(count=args.count, val_count=args.val_count, seed=args.seed,
                          max_error_px=args.max_error_px, epochs=args.epochs, threads=args.threads, look=args.look,
                          variants=args.variants, held_out_count=args.held_out_count, profile=args.profile)
    if args.evaluate:
        model = Path(args.evaluate)
        if not model.is_file():
            raise XwingError("side classifier not found", model)
        doc = evaluate_side(model, cfg)
        out = model.with_suffix(".eval.json")
        atomic_write_json(out, doc)
    else:
        out = Path(args.out)
        doc = train_side(cfg, out)
        out = out.with_suffix(".json")
    for name in ("val", "held_out"):
        v = doc[name]
        print(f"side classifier, {name.replace('_', '-')}: {v['n']} images, top/bottom right {v['accuracy']:.3f} "
              f"(face-on {v['face_on']['accuracy']:.3f}, oblique {v['oblique']['accuracy']:.3f}, "
              f"edge-on {v['edge_on']['accuracy']:.3f}); confident on {v['confident_share']:.2f}: "
              f"{v['confident_accuracy']:.3f}; roll right {v['roll_accuracy']:.3f} (face-on "
              f"{v['face_on']['roll_accuracy']:.3f}, edge-on {v['edge_on']['roll_accuracy']:.3f})")
    print(f"wrote {out}")
    if "numpy_vs_torch_max_abs_logit_diff" in doc:
        print(json.dumps({"numpy_vs_torch_max_abs_logit_diff": doc["numpy_vs_torch_max_abs_logit_diff"]}))
    return 0
