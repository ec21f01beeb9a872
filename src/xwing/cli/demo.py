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

DEFAULT_MODEL = Path("models/xwing.onnx")
DEFAULT_CLIP = Path("assets/demo")
DEFAULT_OUT = Path("out/demo")


def add_arguments(parser) -> None:
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help=f"ONNX model (default {DEFAULT_MODEL})")
    parser.add_argument("--clip", default=str(DEFAULT_CLIP), help=f"sequence directory (default {DEFAULT_CLIP})")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument("--providers", nargs="+", default=None, help="ONNX Runtime execution providers")
    parser.add_argument("--refine", choices=("none", "zoom", "full"), default="full",
                        help="full (default): align every frame, the accurate mode (~4 fps on a 2-core CPU); "
                             "none: the fast mode (~75 fps); see xwing track --help")
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
    from xwing.cli import track

    model, clip = Path(args.model), Path(args.clip)
    lacking = missing(model, clip)
    if lacking:
        for line in lacking:
            print(f"xwing demo: {line}")
        print("xwing demo: nothing to run yet.")
        return 0
    parser = argparse.ArgumentParser(prog="xwing track")
    track.add_arguments(parser)  # the demo is `xwing track` with its defaults
    argv = [str(clip), "--model", str(model), "--out", str(args.out), "--refine", args.refine]
    if args.compare:
        argv.append("--compare")
    if args.providers:
        argv += ["--providers", *args.providers]
    return track.run(parser.parse_args(argv))
