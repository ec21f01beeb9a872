"""``xwing render OUT``: seed-format training data, or a flight sequence with its video.

Examples::

    xwing render data/train --count 100000 --seed 1 --workers 2
    xwing render data/test --count 1000 --seed 2026            # the shared test set
    xwing render data/part --count 100000 --shard 3/8          # one of 8 independent jobs
    xwing render data/flight --sequence --frames 300 --seed 7  # N.jpg + N_mat.json + video.mp4
    xwing render data/test --count 1000 --seed 2026 --bop data/bop --bop-split test  # also in BOP's layout

Same seed and options -> the same files; rerunning resumes; shards union to the
full set. ``--bop DIR`` also writes the finished set in BOP's layout under DIR
(:func:`xwing.io.bop.save_bop_dataset`: ``{split}/000000/rgb/{N:06d}.jpg``, the
same image bytes, with ``scene_gt.json``, ``scene_camera.json``,
``models/obj_000001.ply`` and ``models_info.json``, lengths in mm). Heavy imports
(moderngl) happen inside :func:`run`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from xwing.errors import XwingError
from xwing.geometry.camera import seed_camera
from xwing.io.calibration import load_camera
from xwing.render.appearance import LOOKS


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"need 0 <= I < N, got {text!r}")
    return i, n


def _probability(text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability, got {text!r}") from None
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"probability must be in [0, 1], got {p}")
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="output directory (created; resumed if it holds a partial run)")
    p.add_argument("--count", type=int, default=1000, help="number of samples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same files (default 0)")
    p.add_argument("--size", type=int, default=None,
                   help="square image size for the seed camera (default 256); with --camera, the size of a "
                        "seed camera_info.json")
    p.add_argument("--camera", type=Path, default=None,
                   help="camera file (seed camera_info.json, xwing JSON, OpenCV or ROS YAML); default: the seed's")
    p.add_argument("--mesh", type=Path, default=None, help="OBJ/PLY/GLB/STL model instead of the procedural X-wing")
    p.add_argument("--held-out-ship", action="store_true",
                   help="the procedural X-wing's held-out variant (canopy and droid no training variant has)")
    p.add_argument("--look", choices=LOOKS, default="ship",
                   help="paint: near the X-wing's (ship, default), far beyond it (wide), or the held-out paint "
                        "(held_out, with --held-out-ship: a ship no top/bottom training image shows)")
    p.add_argument("--fit-seed-box", action="store_true",
                   help="scale --mesh into the seed's box so the seed's 8 corner labels apply")
    p.add_argument("--backgrounds", type=Path, default=None, help="directory of background images "
                   "(default: procedural star fields and nebulae)")
    p.add_argument("--occluders", type=_probability, default=0.0, metavar="P",
                   help="probability of rocks in front of the ship (default 0, as in the test set)")
    p.add_argument("--truncated", type=_probability, default=0.20, metavar="P",
                   help="share of samples with a box corner outside the image (default 0.2)")
    p.add_argument("--out-of-view", type=_probability, default=0.05, metavar="P",
                   help="share of samples with the ship wholly outside the image (default 0.05)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument("--shard", type=_shard, default=(0, 1), metavar="I/N",
                   help="render only every N-th sample starting at I (split a job over machines)")
    p.add_argument("--sequence", action="store_true", help="render one smooth flight instead of random samples")
    p.add_argument("--frames", type=int, default=300, help="frames of --sequence (default 300)")
    p.add_argument("--fps", type=float, default=30.0, help="video frame rate of --sequence (default 30)")
    p.add_argument("--gpu", action="store_true",
                   help="render on the GPU where EGL offers one (default: Mesa's llvmpipe on the CPU, the same "
                        "bytes on every machine; the test set is always made this way)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--bop", type=Path, default=None, metavar="DIR",
                   help="also write the set as a BOP dataset under DIR (DIR may be OUT itself): "
                        "SPLIT/000000/rgb/NNNNNN.jpg (the same bytes), scene_gt.json, scene_camera.json, "
                        "models/obj_000001.ply and models_info.json, lengths in mm; not with --shard")
    p.add_argument("--bop-split", default="train", metavar="NAME",
                   help="BOP split folder of --bop: train, val, test, train_pbr, ... (default train)")


def _camera(args):
    if args.camera is None:
        size = args.size or 256
        if size < 16:
            raise XwingError(f"--size must be >= 16, got {size}")
        return seed_camera(size, size)
    if args.size is not None:
        return load_camera(args.camera, args.size, args.size)
    return load_camera(args.camera)


def run(args: argparse.Namespace) -> int:
    from xwing.render.generator import GeneratorConfig
    from xwing.render.writer import MeshSource, process_start, render_dataset

    # The speed figure covers the whole command when this process is the command itself.
    entry = Path(sys.argv[0] if sys.argv else "")
    is_command = entry.name == "xwing" or (entry.name == "__main__.py" and entry.parent.name == "xwing")
    started = process_start() if is_command else time.perf_counter()

    if args.workers < 1:
        raise XwingError(f"--workers must be >= 1, got {args.workers}")
    if args.truncated + args.out_of_view > 1:
        raise XwingError("--truncated plus --out-of-view must be <= 1")
    camera = _camera(args)
    if args.backgrounds is not None:
        from xwing.render.background import list_images

        list_images(args.backgrounds)  # fail here, not in a worker
    if args.mesh is None and args.fit_seed_box:
        raise XwingError("--fit-seed-box needs --mesh")
    if args.mesh is not None and args.held_out_ship:
        raise XwingError("--held-out-ship is a variant of the procedural X-wing: not with --mesh")
    if args.bop is not None and args.shard[1] > 1:
        raise XwingError("--bop writes the whole set: render the shards without it, then run the same command "
                         "once without --shard and with --bop (it renders nothing new)")
    if args.bop is not None:
        from xwing.io.bop import check_split

        check_split(args.bop_split)
    mesh_source = MeshSource(None if args.mesh is None else str(args.mesh), bool(args.fit_seed_box),
                             bool(args.held_out_ship))
    config = GeneratorConfig(seed=args.seed, p_truncated=args.truncated, p_out_of_view=args.out_of_view,
                             p_occluder=args.occluders, look=args.look,
                             backgrounds=None if args.backgrounds is None else str(args.backgrounds))
    if args.sequence:
        from xwing.render.sequence import render_sequence

        if args.frames < 2:
            raise XwingError(f"--frames must be >= 2, got {args.frames}")
        m = render_sequence(args.out, args.frames, config, camera, mesh_source, fps=args.fps,
                            progress=not args.no_progress, cpu=not args.gpu, t_start=started)
        print(f"wrote {args.frames} frames and {m['video']} to {args.out} "
              f"({m['speed']['images_per_s']:.0f} frames/s)")
        _write_bop(args, mesh_source)
        return 0
    m = render_dataset(args.out, args.count, config, camera, mesh_source, shard=args.shard, workers=args.workers,
                       progress=not args.no_progress, cpu=not args.gpu, t_start=started)
    c, sp = m["counts"], m["speed"]
    if c["rendered_this_run"]:
        rate = (f"in {sp['seconds']:.1f} s: {sp['images_per_s']:.0f} img/s (rendered + written, whole command, "
                f"{sp['workers']} worker(s))")
    else:
        rate = "nothing to render"
    print(f"{args.out}: {c['rendered_this_run']} rendered, {c['skipped_existing']} already there "
          f"(shard {m['shard'][0]}/{m['shard'][1]} of {m['count']}) {rate}")
    from xwing.render.writer import manifest_name

    print(f"  truncated {c['share_truncated']:.1%}, ship cut by border {c['share_ship_cut_by_border']:.1%}, "
          f"out of view {c['share_out_of_view']:.1%}; manifest: {args.out / manifest_name(tuple(m['shard']))}")
    _write_bop(args, mesh_source)
    return 0


def _write_bop(args, mesh_source) -> None:
    if args.bop is None:
        return
    from xwing.io.bop import save_bop_dataset

    b = save_bop_dataset(args.out, args.bop, mesh_source.load(), split=args.bop_split)
    print(f"BOP: {b['images']} images in {b['scene']}, model in {args.bop / 'models'}")


if __name__ == "__main__":  # pragma: no cover
    from xwing.cli import main

    sys.exit(main(["render", *sys.argv[1:]]))
