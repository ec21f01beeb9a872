"""xwing: learn and track the 6-DoF pose of a known 3D model from monocular images and video.

The public API: light, numpy-only geometry imported here; heavier parts
(rendering, training, tracking) live in their modules and import their
dependencies when used.

    >>> import xwing
    >>> cam = xwing.seed_camera()                       # the seed's 256 x 256 camera
    >>> uv = xwing.project_points(xwing.SEED_BOX_CORNERS, T_cam_obj, cam.K)
    >>> result = xwing.solve_pnp(uv, xwing.SEED_BOX_CORNERS, cam.K)
"""

__version__ = "0.1.0"

from xwing.geometry.camera import (Camera, K_from_gl_projection, T_cam_obj_from_model_matrix, gl_projection_from_K, model_matrix_from_T_cam_obj, seed_camera)
from xwing.io.calibration import load_camera, load_camera_info
from xwing.io.dataset import SeedDataset, load_matrix, save_camera_info, save_matrix, write_sample
from xwing.errors import XwingError
from xwing.model.symmetry import MIRROR_PAIRS
from xwing.model.keypoints import SEED_BOX_CORNERS, SEED_LASERS, box_corners_of_points
from xwing.geometry.pnp import PnPResult, solve_pnp
from xwing.geometry.projection import project_points
from xwing.geometry.crop import CropMap, crop_around, letterbox
from xwing.geometry import metrics

__all__ = [
    "Camera", "CropMap", "PnPResult", "crop_around", "letterbox", "metrics", "solve_pnp", "K_from_gl_projection", "MIRROR_PAIRS", "SEED_BOX_CORNERS", "SEED_LASERS", "SeedDataset",
    "T_cam_obj_from_model_matrix", "XwingError", "box_corners_of_points", "gl_projection_from_K",
    "load_camera", "load_camera_info", "load_matrix", "model_matrix_from_T_cam_obj", "project_points",
    "save_camera_info", "save_matrix", "seed_camera", "write_sample",
]
