"""The ``xwing`` command line: one subcommand per job.

Each subcommand lives in its own module, which provides ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only when their command runs (or
its ``--help`` is asked for), and keep heavy imports (torch, moderngl) inside
functions, so ``xwing track`` never loads a training or rendering stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from xwing.errors import XwingError
from xwing.version import __version__

#: name -> (module, one-line help). Order is the order ``xwing --help`` shows.
COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("xwing.cli.inspect", "summarise a seed-format dataset and draw its labels on a contact sheet"),
    "train": ("xwing.cli.train", "train the keypoint network (rendered on the fly or seed-format folders)"),
    "train-side": ("xwing.cli.train_side",
                   "train the top/bottom classifier that settles the ship's roll (models/xwing.side.npz)"),
    "export": ("xwing.cli.export", "export a checkpoint to ONNX (dynamic batch and size, metadata inside)"),
    "eval": ("xwing.cli.eval", "keypoint and pose accuracy of a model on a labelled dataset (metrics.json, report)"),
    "yardstick": ("xwing.cli.yardstick",
                  "the network's keypoint error one way on its validation crops and on the pipeline's zoomed crops"),
    "predict": ("xwing.cli.predict", "pose of the ship in single images: keypoints, pose, overlay PNG"),
    "track": ("xwing.cli.track", "track the ship's 6-DoF pose in a video; overlays and the pewpew laser animation"),
    "demo": ("xwing.cli.demo", "the shipped model on the bundled flight clip -> out/demo/"),
    "render": ("xwing.cli.render", "render seed-format training data or flight sequences"),
    "bench": ("xwing.cli.bench",
              "our pipeline against the seed's recipe: speed, accuracy, alignment basin (bench.json/md)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xwing", description="Learn and track the 6-DoF pose of a known 3D model from images and video.")
    parser.add_argument("--version", action="version", version=f"xwing {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == command:  # only the chosen command's module is imported
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except XwingError as e:
        print(f"xwing {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xwing {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
