"""The seed's dataset layout, read and written exactly as it is.

Layout::

    DIR/
      0.jpg  0_mat.json      # image N and its model matrix (object -> world, 4x4 row-major JSON)
      1.jpg  1_mat.json
      ...
      camera_info.json       # camera_world_matrix, model_view_matrix, projection_matrix (4x4 each)
      manifest.json, video.mp4, ...   # extra files may sit beside them; they are ignored

Images are RGB ``uint8`` arrays (H, W, 3) inside xwing (:mod:`xwing.io.images` reads
and writes them). Everything read is validated; problems raise :class:`XwingError`
naming the file (:class:`~xwing.errors.DamagedFileError` for an image cut short or
corrupt, which :func:`xwing.eval.evaluate.evaluate` counts as unreadable). Writes
are atomic (temporary file + rename), and a sample counts as written once its
``N_mat.json`` exists: the image is written first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.camera import Camera, T_cam_obj_from_model_matrix
from xwing.geometry.pose import is_rigid
from xwing.geometry.projection import in_image, project_points
from xwing.io.atomic import atomic_write_text
from xwing.io.calibration import camera_from_camera_info, read_json
from xwing.io.images import read_image, write_image
from xwing.model.keypoints import SEED_BOX_CORNERS

CAMERA_INFO = "camera_info.json"
_IMAGE_RE = re.compile(r"^(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


# --- matrices --------------------------------------------------------------------------------


def load_matrix(path: str | Path) -> np.ndarray:
    """Read a seed ``N_mat.json``: a rigid 4x4 row-major matrix -> (4, 4) float64."""
    path = Path(path)
    if not path.is_file():
        raise XwingError("file not found", path)
    try:
        M = np.asarray(json.loads(path.read_text()), dtype=np.float64)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise XwingError("not valid JSON", path) from None
    except (TypeError, ValueError):
        raise XwingError("not a numeric 4x4 matrix", path) from None
    if M.shape != (4, 4):
        raise XwingError(f"expected a 4x4 matrix, got shape {M.shape}", path)
    if not np.all(np.isfinite(M)):
        raise XwingError("matrix has non-finite values", path)
    if not is_rigid(M):
        raise XwingError("matrix is not a rigid transform (rotation not orthonormal or last row not 0 0 0 1)",
                         path)
    return M


def save_matrix(path: str | Path, M: np.ndarray) -> None:
    """Write a 4x4 matrix as the seed did: a JSON list of 4 row lists (atomic)."""
    M = np.asarray(M, dtype=np.float64)
    if M.shape != (4, 4):
        raise ValueError(f"expected (4, 4), got {M.shape}")
    atomic_write_text(path, json.dumps(M.tolist()))


# --- samples -----------------------------------------------------------------------------------


def write_sample(root: str | Path, index: int, image_rgb: np.ndarray, model_matrix: np.ndarray,
                 jpeg_quality: int = 95) -> None:
    """Write sample ``index`` (``N.jpg`` then ``N_mat.json``, each atomically)."""
    root = Path(root)
    write_image(root / f"{index}.jpg", image_rgb, jpeg_quality)
    save_matrix(root / f"{index}_mat.json", model_matrix)


def sample_complete(root: str | Path, index: int) -> bool:
    """True when sample ``index`` has both files (the resume rule of ``xwing render``)."""
    root = Path(root)
    return (root / f"{index}_mat.json").is_file() and (root / f"{index}.jpg").is_file()


def save_camera_info(root: str | Path, camera: Camera) -> None:
    """Write ``root/camera_info.json`` in the seed's format."""
    atomic_write_text(Path(root) / CAMERA_INFO, json.dumps(camera.to_camera_info()))


@dataclass
class Sample:
    """One labelled image.

    Attributes:
        index: N of ``N.jpg``.
        image: (H, W, 3) uint8 RGB.
        model_matrix: (4, 4) object -> world, as in ``N_mat.json``.
        T_cam_obj: (4, 4) object -> OpenCV camera.
        keypoints: (8, 2) projected box corners, pixel centres at integers.
        in_image: (8,) bool, corner inside the image (and in front of the camera).
    """

    index: int
    image: np.ndarray
    model_matrix: np.ndarray
    T_cam_obj: np.ndarray
    keypoints: np.ndarray
    in_image: np.ndarray


class SeedDataset:
    """A seed-format directory: ``ds[i]`` is the i-th :class:`Sample` in index order.

    Args:
        root: the directory.
        points: (K, 3) model points to label (default: the seed's 8 box corners).
        load_images: set False to skip decoding images (poses and labels only).

    The camera comes from ``camera_info.json`` with the image size of the first
    image (the file holds none).
    """

    def __init__(self, root: str | Path, points: np.ndarray = SEED_BOX_CORNERS, load_images: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise XwingError("dataset directory not found", self.root)
        self.points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        self.load_images = load_images
        self._files: dict[int, Path] = {}
        for p in self.root.iterdir():
            m = _IMAGE_RE.match(p.name)
            if m:
                self._files[int(m.group(1))] = p
        self.indices = sorted(self._files)
        if not self.indices:
            raise XwingError("no images named N.jpg in this directory", self.root)
        info_path = self.root / CAMERA_INFO
        if not info_path.is_file():
            raise XwingError(f"missing {CAMERA_INFO}", self.root)
        height, width = self._image_size(self._files[self.indices[0]])

        self.camera = camera_from_camera_info(read_json(info_path), width, height, source=info_path)

    @staticmethod
    def _image_size(path: Path) -> tuple[int, int]:
        import cv2

        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise XwingError("unreadable image", path)
        return img.shape[:2]

    def __len__(self) -> int:
        return len(self.indices)

    def image_path(self, i: int) -> Path:
        return self._files[self.indices[i]]

    def model_matrix(self, i: int) -> np.ndarray:
        return load_matrix(self.root / f"{self.indices[i]}_mat.json")

    def T_cam_obj(self, i: int) -> np.ndarray:
        return T_cam_obj_from_model_matrix(self.model_matrix(i), self.camera.view_matrix)

    def __getitem__(self, i: int) -> Sample:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        M = self.model_matrix(i)
        T = T_cam_obj_from_model_matrix(M, self.camera.view_matrix)
        kp = project_points(self.points, T, self.camera.K, self.camera.dist)
        vis = in_image(kp, self.camera.width, self.camera.height)
        image = np.zeros((0, 0, 3), np.uint8)
        if self.load_images:
            image = read_image(self.image_path(i))
            if image.shape[:2] != (self.camera.height, self.camera.width):
                raise XwingError(f"image is {image.shape[1]} x {image.shape[0]}, the dataset's first image is "
                                 f"{self.camera.width} x {self.camera.height}", self.image_path(i))
        return Sample(self.indices[i], image, M, T, kp, vis)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
