"""Camera files: the seed's ``camera_info.json`` and calibration files (OpenCV, ROS, JSON).

Everything read is validated (finite values, rigid view matrix, a real perspective
projection); problems raise :class:`~xwing.errors.XwingError` naming the file.
The conventions are :mod:`xwing.geometry.camera`'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.camera import SEED_SIZE, Camera, K_from_gl_projection
from xwing.geometry.pose import is_rigid


def _matrix4(value, name: str, source) -> np.ndarray:
    try:
        M = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise XwingError(f"'{name}' is not a numeric 4x4 matrix", source) from None
    if M.shape != (4, 4):
        raise XwingError(f"'{name}' must be 4x4, got shape {M.shape}", source)
    if not np.all(np.isfinite(M)):
        raise XwingError(f"'{name}' has non-finite values", source)
    return M


def camera_from_camera_info(info: dict, width: int = SEED_SIZE, height: int = SEED_SIZE,
                            source: str | Path = "camera_info.json") -> Camera:
    """Seed ``camera_info.json`` content -> :class:`Camera` for images of ``width`` x ``height``.

    The file holds no image size: the caller takes it from the images (256 x 256 for
    the seed). Near and far are read back from the projection matrix.
    """
    if not isinstance(info, dict):
        raise XwingError("camera_info must be a JSON object", source)
    for key in ("model_view_matrix", "projection_matrix"):
        if key not in info:
            raise XwingError(f"missing '{key}'", source)
    view = _matrix4(info["model_view_matrix"], "model_view_matrix", source)
    P = _matrix4(info["projection_matrix"], "projection_matrix", source)
    if not is_rigid(view):
        raise XwingError("'model_view_matrix' is not a rigid transform", source)
    if "camera_world_matrix" in info:
        cw = _matrix4(info["camera_world_matrix"], "camera_world_matrix", source)
        if not np.allclose(cw @ view, np.eye(4), atol=1e-4):
            raise XwingError("'camera_world_matrix' is not the inverse of 'model_view_matrix'", source)
    if abs(P[3, 2] + 1.0) > 1e-6 or P[0, 0] <= 0 or P[1, 1] <= 0:
        raise XwingError("'projection_matrix' is not an OpenGL perspective projection", source)
    a, b = P[2, 2], P[2, 3]  # a = -(f+n)/(f-n), b = -2fn/(f-n)
    near, far = b / (a - 1.0), b / (a + 1.0)
    return Camera(K_from_gl_projection(P, width, height), width, height, view_matrix=view,
                  near=float(near), far=float(far))


def load_camera_info(path: str | Path, width: int = SEED_SIZE, height: int = SEED_SIZE) -> Camera:
    """Read a seed ``camera_info.json``; see :func:`camera_from_camera_info`."""
    return camera_from_camera_info(read_json(path), width, height, source=path)


def read_json(path: str | Path):
    """A JSON file's content; a missing or malformed file is a one-line error naming it."""
    path = Path(path)
    if not path.is_file():
        raise XwingError("file not found", path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise XwingError(f"not valid JSON ({e})", path) from None


# --- calibration files ------------------------------------------------------------------


def load_camera(path: str | Path, width: int | None = None, height: int | None = None) -> Camera:
    """Read a camera from any supported file.

    Formats, told apart by content:

    * the seed's ``camera_info.json`` (no size inside: ``width``/``height`` or 256);
    * JSON ``{"K": 3x3, "dist": [...], "width": W, "height": H}``;
    * OpenCV FileStorage YAML/XML (``camera_matrix``, ``distortion_coefficients``
      as ``!!opencv-matrix``, ``image_width``, ``image_height``);
    * ROS ``camera_info`` YAML (``camera_matrix: {rows, cols, data}``, ...).

    ``width``/``height``, when given, must match a size stored in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise XwingError("camera file not found", path)
    try:
        cam = _load_any_camera(path, width, height)
    except XwingError as e:
        if e.path is None:  # raised by Camera itself (NaN, a zero focal length): name the file
            raise XwingError(str(e), path) from None
        raise
    if (width is not None and width != cam.width) or (height is not None and height != cam.height):
        raise XwingError(f"calibration is for {cam.width} x {cam.height} images, not {width} x {height}", path)
    return cam


def _load_any_camera(path: Path, width: int | None, height: int | None) -> Camera:
    text = path.read_text(errors="replace")
    suffix = path.suffix.lower()
    if suffix == ".json" or text.lstrip().startswith("{"):
        data = read_json(path)
        if isinstance(data, dict) and "projection_matrix" in data:
            return camera_from_camera_info(data, width or SEED_SIZE, height or SEED_SIZE, source=path)
        cam = Camera.from_dict(data if isinstance(data, dict) else {}, source=path)
    elif "opencv-matrix" in text or suffix == ".xml" or text.startswith("%YAML"):
        cam = _load_opencv_storage(path)
    elif suffix in (".yaml", ".yml"):
        cam = _load_ros_yaml(path, text)
    else:
        raise XwingError("unknown camera file format (want .json, OpenCV .yaml/.xml or ROS .yaml)", path)
    return cam


def _load_opencv_storage(path: Path) -> Camera:
    import cv2

    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except cv2.error as e:
        raise XwingError(f"OpenCV cannot parse this file ({str(e).strip().splitlines()[-1]})", path) from None
    try:
        if not fs.isOpened():
            raise XwingError("OpenCV cannot open this calibration file", path)
        K = fs.getNode("camera_matrix").mat()
        dist = fs.getNode("distortion_coefficients").mat()
        w, h = fs.getNode("image_width").real(), fs.getNode("image_height").real()
    finally:
        fs.release()
    if K is None or K.shape != (3, 3):
        raise XwingError("'camera_matrix' (3x3 !!opencv-matrix) missing or malformed", path)
    if not w or not h:
        raise XwingError("'image_width' and 'image_height' are required", path)
    return Camera(K, int(w), int(h), np.zeros(0) if dist is None else dist.reshape(-1))


def _load_ros_yaml(path: Path, text: str) -> Camera:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise XwingError(f"not valid YAML ({str(e).splitlines()[0]})", path) from None
    if not isinstance(data, dict) or "camera_matrix" not in data:
        raise XwingError("YAML calibration needs 'camera_matrix'", path)

    def mat(key, shape=None):
        node = data.get(key)
        if node is None:
            return None
        try:
            values = np.asarray(node["data"] if isinstance(node, dict) else node, dtype=np.float64)
            if isinstance(node, dict) and "rows" in node and "cols" in node:
                values = values.reshape(int(node["rows"]), int(node["cols"]))
        except (KeyError, TypeError, ValueError) as e:
            raise XwingError(f"'{key}' is malformed ({e})", path) from None
        if shape is not None and values.size != np.prod(shape):
            raise XwingError(f"'{key}' must have {np.prod(shape)} values", path)
        return values if shape is None else values.reshape(shape)

    K = mat("camera_matrix", (3, 3))
    dist = mat("distortion_coefficients")
    try:
        w, h = int(data["image_width"]), int(data["image_height"])
    except (KeyError, TypeError, ValueError):
        raise XwingError("'image_width' and 'image_height' are required", path) from None
    return Camera(K, w, h, np.zeros(0) if dist is None else dist.reshape(-1))
