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

from xwing.errors import XwingError
from xwing.geometry import metrics
from xwing.geometry.camera import (
    Camera,
    K_from_gl_projection,
    T_cam_obj_from_model_matrix,
    gl_projection_from_K,
    model_matrix_from_T_cam_obj,
    seed_camera,
)
from xwing.geometry.crop import CropMap, crop_around, letterbox
from xwing.geometry.pnp import PnPResult, solve_pnp
from xwing.geometry.projection import project_points
from xwing.io.calibration import load_camera, load_camera_info
from xwing.io.dataset import SeedDataset, load_matrix, save_camera_info, save_matrix, write_sample
from xwing.model.keypoints import SEED_BOX_CORNERS, SEED_LASERS, box_corners_of_points
from xwing.model.symmetry import MIRROR_PAIRS

__all__ = [
    "MIRROR_PAIRS", "SEED_BOX_CORNERS", "SEED_LASERS", "Camera", "CropMap", "K_from_gl_projection", "PnPResult",
    "SeedDataset", "T_cam_obj_from_model_matrix", "XwingError", "box_corners_of_points", "crop_around",
    "gl_projection_from_K", "letterbox", "load_camera", "load_camera_info", "load_matrix", "metrics",
    "model_matrix_from_T_cam_obj", "project_points", "save_camera_info", "save_matrix", "seed_camera",
    "solve_pnp", "write_sample",
]
