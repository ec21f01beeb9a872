"""``python -m xwing.render.compare [OUT.png]``: the procedural ship beside the seed's images.

Renders the ship at the poses of the seed's two reference samples
(``tests/data/seed_reference``) and writes one picture, 2 rows x 4 tiles: the
seed's image, our render at the same pose, our silhouette outlined on the seed's
image (geometry agreement), and the seed's 8 box labels on our render. This is
``docs/ship_vs_seed.png``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from xwing.geometry.camera import T_cam_obj_from_model_matrix, seed_camera
from xwing.geometry.projection import project_points
from xwing.io.draw import draw_box, draw_label
from xwing.io.images import read_image
from xwing.model.keypoints import SEED_BOX_CORNERS
from xwing.render import make_renderer
from xwing.render.background import BackgroundBank

REFERENCE = Path(__file__).resolve().parents[3] / "tests" / "data" / "seed_reference"


def ship_vs_seed(reference: str | Path = REFERENCE) -> np.ndarray:
    """(512, 1024, 3) RGB comparison picture (see the module docstring)."""
    import cv2

    reference = Path(reference)
    cam = seed_camera()
    renderer = make_renderer(cam, samples=16)
    background = BackgroundBank(256, 256, seed=2026, n=2).images[1][:256, :256]
    rows = []
    for i in (0, 1):
        T = T_cam_obj_from_model_matrix(np.array(json.loads((reference / f"{i}_mat.json").read_text())))
        seed = read_image(reference / f"{i}.jpg")
        ours, _ = renderer.render(T, background=background)
        _, coverage = renderer.render(T)
        outline = seed.copy()
        contours, _ = cv2.findContours((coverage > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(outline, contours, -1, (0, 255, 0), 1)
        labelled = ours.copy()
        draw_box(labelled, project_points(SEED_BOX_CORNERS, T, cam.K))
        tiles = [seed, ours, outline, labelled]
        for tile, name in zip(tiles, [f"seed reference/{i}.jpg", "xwing render, same pose",
                                      "our silhouette on the seed", "seed's 8 box labels"]):
            draw_label(tile, name)
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> int:
    import cv2

    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/ship_vs_seed.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(ship_vs_seed(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
