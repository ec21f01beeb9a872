"""xwing: learn and track the 6-DoF pose of a known 3D model from monocular images and video.

The public API, all on the light install (numpy, OpenCV, ONNX Runtime): the
geometry, and the estimator and tracker as objects (``docs/python-api.md``)::

    import xwing
    est = xwing.PoseEstimator.from_model("models/xwing.onnx")   # the model's camera, any image size
    pose = est.estimate(image)                                   # .ok, .T_cam_obj, .corners_px, ...
    tracker = xwing.Tracker.from_model("models/xwing.onnx")
    for r in tracker.track(frames): ...                          # causal FrameResults
    poses = tracker.finish()                                     # each segment's roll decided

Rendering and training live in their modules and import torch/moderngl when used.
"""

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
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.infer.result import PoseEstimate
from xwing.io.calibration import load_camera, load_camera_info
from xwing.io.dataset import SeedDataset, load_matrix, save_camera_info, save_matrix, write_sample
from xwing.model.keypoints import SEED_BOX_CORNERS, SEED_LASERS, box_corners_of_points
from xwing.model.symmetry import MIRROR_PAIRS
from xwing.track.tracker import FrameResult, Tracker, TrackerConfig
from xwing.version import __version__

__all__ = [
    "__version__",
    "MIRROR_PAIRS", "SEED_BOX_CORNERS", "SEED_LASERS", "Camera", "CropMap", "FrameResult", "K_from_gl_projection",
    "PipelineConfig", "PnPResult", "PoseEstimate", "PoseEstimator", "Tracker", "TrackerConfig",
    "SeedDataset", "T_cam_obj_from_model_matrix", "XwingError", "box_corners_of_points", "crop_around",
    "gl_projection_from_K", "letterbox", "load_camera", "load_camera_info", "load_matrix", "metrics",
    "model_matrix_from_T_cam_obj", "project_points", "save_camera_info", "save_matrix", "seed_camera",
    "solve_pnp", "write_sample",
]
