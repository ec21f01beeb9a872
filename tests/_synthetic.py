"""Tiny synthetic seed-format data for network tests: a shaded box drawn with OpenCV.

No renderer needed: the seed's bounding box is drawn face by face (painter's
order), each face with its own colour, and a bright "canopy" mark on the top
face so top and bottom differ, as on the real ship.
"""

from __future__ import annotations

import numpy as np

from xwing.geometry.camera import model_matrix_from_T_cam_obj, seed_camera
from xwing.geometry.pose import make_T, rotvec_to_R
from xwing.geometry.projection import project_points
from xwing.io.dataset import save_camera_info, write_sample
from xwing.model.keypoints import SEED_BOX_CORNERS

# Faces of the box as corner indices (seed order: bit0 x, bit1 y, bit2 z).
_FACES = [((0, 1, 3, 2), (40, 40, 160)), ((4, 5, 7, 6), (200, 60, 60)), ((0, 1, 5, 4), (60, 180, 60)),
          ((2, 3, 7, 6), (180, 180, 40)), ((0, 2, 6, 4), (40, 160, 180)), ((1, 3, 7, 5), (160, 40, 160))]


def random_pose(rng: np.random.Generator, distance=(0.9, 1.3)) -> np.ndarray:
    R = rotvec_to_R(rng.normal(size=3) * 2.0)
    t = np.array([rng.uniform(-0.06, 0.06), rng.uniform(-0.06, 0.06), rng.uniform(*distance)])
    return make_T(R, t)


def draw_box(T_cam_obj: np.ndarray, camera, rng: np.random.Generator | None = None) -> np.ndarray:
    import cv2

    img = np.full((camera.height, camera.width, 3), 20, np.uint8)
    if rng is not None:
        img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    uv = project_points(SEED_BOX_CORNERS, T_cam_obj, camera.K)
    X = SEED_BOX_CORNERS @ T_cam_obj[:3, :3].T + T_cam_obj[:3, 3]
    order = sorted(range(6), key=lambda f: -X[list(_FACES[f][0]), 2].mean())
    shift = 4
    for f in order:
        idx, colour = _FACES[f]
        poly = np.round(uv[list(idx)] * (1 << shift)).astype(np.int32)
        cv2.fillPoly(img, [poly], colour, lineType=cv2.LINE_AA, shift=shift)
        if f == 1:  # top face: a canopy mark near the nose
            c = np.round(project_points(np.array([[0.0, -0.08, 0.034]]), T_cam_obj, camera.K)[0]).astype(int)
            cv2.circle(img, tuple(int(v) for v in c), 3, (255, 255, 255), -1, cv2.LINE_AA)
    return img


def write_box_dataset(root, n: int, size: int = 128, seed: int = 0):
    """n samples of the box in seed format at ``size`` px; returns the camera."""
    cam = seed_camera(size, size)
    rng = np.random.default_rng(seed)
    for i in range(n):
        T = random_pose(rng)
        write_sample(root, i, draw_box(T, cam, rng), model_matrix_from_T_cam_obj(T, cam.view_matrix),
                     jpeg_quality=98)
    save_camera_info(root, cam)
    return cam


def ship_image(mesh, T, cam, rng, clutter=False, coverage=None):
    """The ship composited at 8x supersampling (the reference rasteriser) over stars or a
    cluttered texture; ``mesh`` has ``vertices`` and ``faces``; ``coverage`` (H, W), when
    given, replaces the rasterised one."""
    from xwing.infer.refine.raster import Raster, rasterize

    if coverage is None:
        r = rasterize(mesh.vertices, mesh.faces, T, cam.K, cam.width, cam.height, supersample=8, want_depth=False)
    else:
        r = Raster(np.asarray(coverage, np.float32), np.zeros(coverage.shape, np.int32), None)
    if clutter:
        import cv2

        noise = rng.uniform(0, 1, (cam.height // 8, cam.width // 8, 3)).astype(np.float32)
        bg = cv2.resize(noise, (cam.width, cam.height), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 0.6
    else:
        bg = (rng.uniform(0, 0.12, (cam.height, cam.width, 3)) * [0.5, 0.6, 1.0]).astype(np.float32)
        bg[rng.uniform(size=bg.shape[:2]) > 0.996] = 0.9
    # the ship: light grey with darker panels (a vertical gradient)
    shade = np.linspace(0.85, 0.6, cam.height, dtype=np.float32)[:, None, None] * [1.0, 0.98, 0.95]
    img = r.coverage[:, :, None] * shade + (1 - r.coverage[:, :, None]) * bg
    return (np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1) * 255).round().astype(np.uint8)
