"""Argument groups that several commands share, and loading the model a command names.

Every command that runs a model declares its options through these functions,
so ``--refine``, ``--threads``, ``--mesh`` and friends mean the same everywhere
and take their defaults from :mod:`xwing.defaults`.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

from xwing.defaults import DEFAULT_MODEL, DEFAULT_REFINE, DEFAULT_THREADS
from xwing.errors import XwingError
from xwing.infer.estimator import PipelineConfig
from xwing.infer.factory import load_detector
from xwing.infer.refine import REFINE_MODES

MODEL_HELP = ("ONNX model from `xwing export`, a training checkpoint (.pt, needs the training extras), or "
              "'oracle[:noise=1,outliers=0.05,...]': the truth plus noise (labelled inputs only; tests, benchmarks)")


def add_model_argument(parser: argparse.ArgumentParser, positional: bool = False) -> None:
    """``MODEL`` (positional) or ``--model`` (default the shipped model)."""
    if positional:
        parser.add_argument("model", help=MODEL_HELP)
    else:
        parser.add_argument("--model", default=DEFAULT_MODEL, help=f"{MODEL_HELP} (default {DEFAULT_MODEL})")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """``--threads`` and ``--providers``: how ONNX Runtime runs the network."""
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"ONNX Runtime intra-op threads, 0: one per core (default {DEFAULT_THREADS})")
    parser.add_argument("--providers", nargs="+", default=None,
                        help="ONNX Runtime execution providers, e.g. CUDAExecutionProvider CPUExecutionProvider")


def add_refine_argument(parser: argparse.ArgumentParser) -> None:
    """``--refine MODE``: which refiners follow the network (:mod:`xwing.infer.refine`)."""
    described = "; ".join(f"{name}: {REFINE_MODES[name].describe()}" for name in REFINE_MODES)
    parser.add_argument("--refine", choices=tuple(REFINE_MODES), default=DEFAULT_REFINE,
                        help=f"{described} (default {DEFAULT_REFINE})")


def add_object_arguments(parser: argparse.ArgumentParser) -> None:
    """``--mesh`` / ``--fit-seed-box`` (the object model for alignment, box corners and ADD) and
    ``--side`` (the top/bottom classifier)."""
    parser.add_argument("--mesh", default="",
                        help="the model's mesh (OBJ/PLY/GLB/STL/OFF; needs trimesh: pip install 'xwing[render]') "
                             "for alignment, the reported box corners and ADD (default: the procedural X-wing)")
    parser.add_argument("--fit-seed-box", action="store_true",
                        help="scale --mesh onto the seed's box, as `xwing render --fit-seed-box` did")
    parser.add_argument("--side", default="auto",
                        help="top/bottom classifier that settles the roll: auto (MODEL.side.npz beside an ONNX "
                             "model, if there), none, or a file from `xwing train-side`")


def add_estimator_arguments(parser: argparse.ArgumentParser) -> None:
    """Everything a command that estimates poses shares: refine, input size, runtime, object."""
    add_refine_argument(parser)
    parser.add_argument("--input-size", type=int, default=0,
                        help="network input side of full-frame searches (default: the model's)")
    add_runtime_arguments(parser)
    add_object_arguments(parser)


def add_strict_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true",
                        help="a damaged image (cut short, corrupt) is an error; by default it is warned about "
                             "by name and counted as unreadable")


def add_bop_argument(parser: argparse.ArgumentParser, ids: str) -> None:
    """``--bop-out FILE``: the poses as a BOP results CSV (:mod:`xwing.io.bop`); ``ids`` says
    which scene and image ids this command gives them."""
    parser.add_argument("--bop-out", type=Path, default=None, metavar="FILE",
                        help="also write the poses as a BOP results CSV (scene_id,im_id,obj_id,score,R,t,time; "
                             f"t in mm, model units read as metres; obj_id 1; {ids}; images without a pose "
                             "left out)")


def pipeline_config(args):
    """The :class:`~xwing.infer.estimator.PipelineConfig` of the shared arguments."""
    return PipelineConfig(input_size=args.input_size, refine=args.refine, mesh=args.mesh,
                          fit_seed_box=args.fit_seed_box, side=args.side)


def load_model(model: str, providers: list[str] | None = None, threads: int | None = None):
    """The detector a command's model spec names. A training checkpoint (any file but ``.onnx``: ``.pt``) is exported
    to a temporary ONNX file by the network's own exporter first: the one path from an
    inference command into the training code (and torch), taken only for such a file."""
    path = Path(model)
    if path.is_file() and path.suffix.lower() != ".onnx" and not model.startswith("oracle"):
        if importlib.util.find_spec("torch") is None:
            raise XwingError("a checkpoint needs torch (pip install 'xwing[train]'), or export it first with "
                             "`xwing export`", path)
        from xwing.learn.export import checkpoint_to_onnx

        model = str(checkpoint_to_onnx(path, Path(tempfile.mkdtemp(prefix="xwing-ckpt-")) / f"{path.stem}.onnx"))
    return load_detector(model, providers, threads)
