"""``xwing demo``: the shipped model tracks the bundled flight clip -> ``out/demo/``.

``models/xwing.onnx`` on ``assets/demo/`` (a sequence directory with truth) through
``xwing track`` in its accuracy mode (``--refine full``: every frame aligned; the
fast mode is ``--refine none``), so the outputs are those of ``xwing track``
(poses, overlay, pewpew GIF/MP4, metrics) plus a printed summary: speed,
rotation error, lost rate; ``--compare`` adds the frame-by-frame baseline. Needs only the light inference install
(``make demo``). Until the model or the clip is in the repository it says which
is missing and exits 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xwing.cli import track
from xwing.cli.args import add_model_argument, add_refine_argument, add_runtime_arguments
from xwing.defaults import DEMO_CLIP, DEMO_OUT


def add_arguments(parser) -> None:
    add_model_argument(parser)
    parser.add_argument("--clip", default=DEMO_CLIP, help=f"sequence directory (default {DEMO_CLIP})")
    parser.add_argument("--out", default=DEMO_OUT, help=f"output directory (default {DEMO_OUT})")
    add_refine_argument(parser)
    add_runtime_arguments(parser)
    parser.add_argument("--compare", action="store_true", help="also run frame by frame and report both")


def missing(model: Path, clip: Path) -> list[str]:
    """Human lines for whatever the demo lacks (empty: ready)."""
    out = []
    if not model.is_file():
        out.append(f"no bundled model yet: {model} is missing (train with `xwing train`, export with "
                   f"`xwing export CKPT --out {model}`)")
    has_clip = clip.is_dir() and ((clip / "video.mp4").is_file() or any(clip.glob("*.jpg")))
    if not has_clip:
        out.append(f"no demo clip yet: {clip}/ is missing (render one with `xwing render {clip} --sequence`)")
    return out


def run(args) -> int:
    model, clip = Path(args.model), Path(args.clip)
    lacking = missing(model, clip)
    if lacking:
        for line in lacking:
            print(f"xwing demo: {line}")
        print("xwing demo: nothing to run yet.")
        return 0
    parser = argparse.ArgumentParser(prog="xwing track")
    track.add_arguments(parser)  # the demo is `xwing track` with its defaults
    argv = [str(clip), "--model", str(model), "--out", str(args.out), "--refine", args.refine,
            "--threads", str(args.threads)]
    if args.compare:
        argv.append("--compare")
    if args.providers:
        argv += ["--providers", *args.providers]
    return track.run(parser.parse_args(argv))
