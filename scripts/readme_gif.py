"""Make the README's small pewpew GIF from `xwing demo`'s pewpew.mp4.

    python scripts/readme_gif.py out/demo/pewpew.mp4 docs/pewpew.gif

The full GIF of the demo is ~9 MB (noisy nebulae compress badly); the README
keeps the first 2 s at 24 colours (~1.7 MB) so docs/ stays under 3 MB.
"""

import sys

import imageio.v3 as iio
from PIL import Image

FRAMES, COLOURS, DELAY_MS = 60, 24, 33


def main(src: str, dst: str) -> None:
    frames = iio.imread(src)[:FRAMES]
    images = [Image.fromarray(f).quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT,
                                          dither=Image.Dither.NONE) for f in frames]
    images[0].save(dst, save_all=True, append_images=images[1:], duration=DELAY_MS, loop=0, optimize=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
