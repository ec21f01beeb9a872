"""Test fixtures: smooth seeded oracle flights and stand-in frames (no renderer needed).

The oracle detector (:class:`xwing.infer.oracle.OracleDetector`) reads only the
truth, so the tracker can be tested on these flights with blank or stand-in frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xwing.geometry.camera import Camera, model_matrix_from_T_cam_obj
from xwing.geometry.pose import make_T, random_rotation, rotvec_to_R
from xwing.geometry.projection import project_points
from xwing.io.dataset import save_camera_info, save_matrix
from xwing.io.draw import draw_box
from xwing.io.video import Mp4Writer
from xwing.model.keypoints import SEED_BOX_CORNERS


def synthetic_flight(n_frames: int, camera: Camera, seed: int = 0, fps: float = 30.0,
                     exit_frame: bool = True) -> list[np.ndarray]:
    """A smooth seeded flight (n_frames poses ``T_cam_obj`` (4, 4)) for the oracle.

    The ship turns continuously (about 20-60 deg/s about a random axis, plus a slow
    wobble), at distance 1.6-2.6, weaving across the view; with ``exit_frame``
    its path carries it partly out of the frame's right edge around the middle
    and back. Needs no renderer: tests and benchmarks of the tracker use it with
    :class:`OracleDetector` and blank frames.
    """
    rng = np.random.default_rng(seed)
    R0 = random_rotation(rng)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    rate = np.radians(rng.uniform(20, 60)) / fps  # rad per frame
    wobble_axis = rng.normal(size=3)
    wobble_axis /= np.linalg.norm(wobble_axis)
    phase = rng.uniform(0, 2 * np.pi, 3)
    half_w = (camera.width / 2.0) / camera.K[0, 0]  # tan of the half field of view
    poses = []
    for i in range(n_frames):
        s = i / max(n_frames - 1, 1)
        z = 2.1 + 0.5 * np.sin(2 * np.pi * s + phase[0])
        x_rel = 0.45 * np.sin(2 * np.pi * 1.3 * s + phase[1])  # share of the half width
        if exit_frame:
            x_rel += 1.0 * np.exp(-((s - 0.5) / 0.08) ** 2)  # a swerve out of the right edge
        y_rel = 0.35 * np.sin(2 * np.pi * 0.9 * s + phase[2])
        t = np.array([x_rel * half_w * z, y_rel * half_w * z, z])
        R = rotvec_to_R(axis * rate * i) @ rotvec_to_R(wobble_axis * 0.3 * np.sin(2 * np.pi * 2 * s)) @ R0
        poses.append(make_T(R, t))
    return poses


def draw_stand_in(T_cam_obj: np.ndarray | None, camera: Camera, background: int = 24) -> np.ndarray:
    """A frame (H, W, 3) RGB for the oracle: the ship's box drawn at ``T_cam_obj``
    (the oracle never looks at it; it makes the videos watchable)."""
    img = np.full((camera.height, camera.width, 3), background, np.uint8)
    if T_cam_obj is not None:
        draw_box(img, project_points(SEED_BOX_CORNERS, T_cam_obj, camera.K, camera.dist), (200, 200, 200),
                 corners=False)
    return img


def write_oracle_sequence(root, poses: list, camera: Camera, fps: float = 30.0) -> None:
    """A sequence directory as ``xwing render --sequence`` lays it out (``video.mp4``,
    ``N_mat.json`` per frame with a pose, ``camera_info.json``), with stand-in frames."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    save_camera_info(root, camera)
    writer = Mp4Writer(root / "video.mp4", fps=fps, quality=9)
    for i, T in enumerate(poses):
        writer.write(draw_stand_in(T, camera))
        if T is not None:
            save_matrix(root / f"{i}_mat.json", model_matrix_from_T_cam_obj(T, camera.view_matrix))
    writer.close()
