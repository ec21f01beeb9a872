"""``xwing inspect DATASET``: what is in a seed-format dataset, and do its labels sit on the ship?

Prints a summary (sample count, image size, camera, distance and rotation
ranges, share of samples with a box corner outside the image), writes it as
``summary.json`` and draws ``contact_sheet.png``: up to 64 samples, evenly spread
over the dataset, with the projected box corners and edges.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.pose import rotation_angle_deg
from xwing.geometry.projection import in_image, project_points
from xwing.io.atomic import atomic_write_bytes, atomic_write_json
from xwing.io.dataset import SeedDataset
from xwing.io.draw import contact_sheet, draw_box, draw_label
from xwing.model.keypoints import SEED_BOX_CORNERS

MAX_TILES = 64


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, help="seed-format directory (N.jpg, N_mat.json, camera_info.json)")
    p.add_argument("--out", type=Path, default=None, help="write contact_sheet.png and summary.json here")
    p.add_argument("--tiles", type=int, default=MAX_TILES, help=f"samples on the contact sheet (max {MAX_TILES})")
    p.add_argument("--tile-size", type=int, default=256, help="tile width in pixels (images are scaled to it)")


def summarize(ds: SeedDataset, progress: bool = True) -> dict:
    """Statistics of a dataset's poses and labels (reads poses only, not images)."""
    from tqdm import tqdm

    cam = ds.camera
    dist, rot, outside, all_out = [], [], 0, 0
    for i in tqdm(range(len(ds)), desc="poses", unit="sample", disable=not progress, leave=False):
        T = ds.T_cam_obj(i)
        dist.append(float(np.linalg.norm(T[:3, 3])))
        rot.append(rotation_angle_deg(ds.model_matrix(i)[:3, :3]))

        vis = in_image(project_points(SEED_BOX_CORNERS, T, cam.K, cam.dist), cam.width, cam.height)
        outside += int(not vis.all())
        all_out += int(not vis.any())
    dist, rot = np.array(dist), np.array(rot)
    return {
        "dataset": str(ds.root),
        "n_samples": len(ds),
        "image_size": [cam.width, cam.height],
        "camera": {"K": cam.K.tolist(), "dist": cam.dist.tolist(), "hfov_deg": cam.hfov_deg},
        "distance": {"min": float(dist.min()), "median": float(np.median(dist)), "max": float(dist.max())},
        "rotation_from_identity_deg": {"min": float(rot.min()), "median": float(np.median(rot)),
                                       "max": float(rot.max())},
        "share_corner_outside": outside / len(ds),
        "share_all_corners_outside": all_out / len(ds),
    }


def contact_sheet_image(ds: SeedDataset, tiles: int = MAX_TILES, tile_size: int = 256) -> np.ndarray:
    """(H, W, 3) RGB grid of up to ``tiles`` samples with their projected boxes."""
    import cv2

    n = min(tiles, MAX_TILES, len(ds))
    picks = np.unique(np.linspace(0, len(ds) - 1, n).round().astype(int))
    out = []
    for i in picks:
        s = ds[int(i)]
        scale = tile_size / s.image.shape[1]
        img = s.image
        if scale != 1.0:
            img = cv2.resize(img, (tile_size, round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        img = np.ascontiguousarray(img)
        uv = (s.keypoints + 0.5) * scale - 0.5  # pixel centres map as u' = (u + 0.5) s - 0.5
        draw_box(img, uv)
        draw_label(img, f"#{s.index}")
        out.append(img)
    return contact_sheet(out, columns=min(8, len(out)))


def format_summary(s: dict) -> str:
    K = np.array(s["camera"]["K"])
    return "\n".join([
        f"dataset         {s['dataset']}",
        f"samples         {s['n_samples']}",
        f"image size      {s['image_size'][0]} x {s['image_size'][1]}",
        f"camera          fx {K[0, 0]:.3f}  fy {K[1, 1]:.3f}  cx {K[0, 2]:.3f}  cy {K[1, 2]:.3f}  "
        f"hfov {s['camera']['hfov_deg']:.2f} deg",
        f"distance        {s['distance']['min']:.3f} .. {s['distance']['max']:.3f} "
        f"(median {s['distance']['median']:.3f})",
        f"rotation        {s['rotation_from_identity_deg']['min']:.1f} .. "
        f"{s['rotation_from_identity_deg']['max']:.1f} deg from identity",
        f"corner outside  {100 * s['share_corner_outside']:.1f} % of samples "
        f"(all 8 outside: {100 * s['share_all_corners_outside']:.1f} %)",
    ])


def run(args: argparse.Namespace) -> int:
    import cv2

    ds = SeedDataset(args.dataset)
    summary = summarize(ds)
    print(format_summary(summary))
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise XwingError(f"cannot create output directory ({e.strerror})", args.out) from None
        sheet = contact_sheet_image(ds, args.tiles, args.tile_size)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        atomic_write_bytes(args.out / "contact_sheet.png", buf.tobytes())
        atomic_write_json(args.out / "summary.json", summary)
        print(f"wrote {args.out / 'contact_sheet.png'} and {args.out / 'summary.json'}")
    return 0
