"""A long clip for memory and streaming checks: the bundled clip upscaled and looped.

The bundled 256 x 256 clip (``assets/demo/video.mp4``) is upscaled with bilinear
interpolation and played forth and back until ``--frames`` frames are written,
so the ship moves smoothly across every loop point. Memory is flat here too:
the source frames are read once (150 frames) and each output frame is resized
as it is written.

    .venv/bin/python scripts/long_clip.py /tmp/long.mp4 --frames 20000 --size 640
    /usr/bin/time -v .venv/bin/xwing track /tmp/long.mp4 --out /tmp/long_track
    .venv/bin/python scripts/long_clip.py /tmp/4k.mp4 --frames 60 --frame 3840x2160
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from xwing.io.video import Mp4Writer, open_source

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo" / "video.mp4"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output .mp4")
    ap.add_argument("--frames", type=int, default=20000, help="frames to write (default 20000)")
    ap.add_argument("--size", type=int, default=640, help="output side in pixels (default 640)")
    ap.add_argument("--frame", default=None, metavar="WxH",
                    help="a frame of W x H instead (e.g. 3840x2160): the clip scaled to H, centred, black beside it")
    ap.add_argument("--source", default=str(DEMO), help="clip to loop (default the bundled clip)")
    args = ap.parse_args(argv)
    src = [f for _, _, f in open_source(args.source).frames()]
    order = list(range(len(src))) + list(range(len(src) - 2, 0, -1))  # forth and back, no repeated ends
    w, h = (args.size, args.size) if args.frame is None else map(int, args.frame.lower().split("x"))
    side = min(w, h)
    x0, y0 = (w - side) // 2, (h - side) // 2
    canvas = np.zeros((h, w, 3), np.uint8)
    writer = Mp4Writer(args.out)
    try:
        for k in tqdm(range(args.frames), unit="frame"):
            frame = src[order[k % len(order)]]
            canvas[y0:y0 + side, x0:x0 + side] = cv2.resize(frame, (side, side), interpolation=cv2.INTER_LINEAR)
            writer.write(canvas)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    print(f"wrote {args.out}: {args.frames} frames of {w} x {h}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
