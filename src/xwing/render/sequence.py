"""Smooth flights: a spline trajectory rendered frame by frame, as a dataset and a clip.

The flight (:func:`flight_path`), in the camera frame: the ship comes in from
far away near one side, approaches to about 0.8-1.0 units while crossing the
frame, banks through its turns, passes partly out of the frame at one side,
does a full barrel roll, and leaves into the distance. Positions follow a
uniform cubic B-spline (C2: smooth velocity *and* acceleration) through
randomly jittered keyframes; the nose points along the velocity, the top is
kept toward the image's up direction, banked into turns in proportion to the
sideways acceleration, plus the roll. Which side, the keyframes' jitter, the
lighting and the background come from the seed.

The output directory is both a seed-format dataset (``N.jpg``, ``N_mat.json``,
``camera_info.json``) and a clip (``video.mp4``, H.264 at ``fps``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.camera import Camera, model_matrix_from_T_cam_obj
from xwing.geometry.pose import make_T, rotvec_to_R
from xwing.io.atomic import atomic_write_json
from xwing.io.dataset import save_camera_info, write_sample
from xwing.render.appearance import sample_appearance
from xwing.render.background import BackgroundBank
from xwing.render.effects import add_noise
from xwing.render.generator import GeneratorConfig, SampleGenerator
from xwing.render.gl import renderer_name
from xwing.render.writer import MeshSource, identity, prepare_output
from xwing.version import __version__

#: Keyframes (u, v as fractions of the image, depth z): approach, cross, the pass
#: partly beyond the right border (u > 1), roll, exit.
KEYFRAMES = np.array([
    (0.05, 0.30, 2.6), (0.15, 0.35, 2.3), (0.35, 0.45, 1.6), (0.55, 0.55, 1.05), (0.80, 0.55, 0.85),
    (1.10, 0.45, 0.85), (0.85, 0.28, 1.2), (0.55, 0.30, 1.6), (0.35, 0.45, 2.1), (0.20, 0.55, 2.6),
    (0.10, 0.60, 2.9),
])
#: Share of the flight (start, end) spent in the barrel roll.
ROLL_SPAN = (0.62, 0.80)


def _bspline(ctrl: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform cubic B-spline of control points (N, D) at parameters t (M,) in [0, 1]
    -> position, first and second derivative (M, D) each. Phantom end points
    (reflections) make it start at the first and end at the last control point
    with non-zero speed."""
    P = np.concatenate([2 * ctrl[:1] - ctrl[1:2], ctrl, 2 * ctrl[-1:] - ctrl[-2:-1]])
    n_seg = len(P) - 3
    s = np.clip(t, 0, 1) * n_seg
    i = np.minimum(s.astype(int), n_seg - 1)
    u = (s - i)[:, None]
    p0, p1, p2, p3 = P[i], P[i + 1], P[i + 2], P[i + 3]
    pos = ((1 - u) ** 3 * p0 + (3 * u ** 3 - 6 * u ** 2 + 4) * p1 + (-3 * u ** 3 + 3 * u ** 2 + 3 * u + 1) * p2
           + u ** 3 * p3) / 6
    vel = ((-3 * (1 - u) ** 2) * p0 + (9 * u ** 2 - 12 * u) * p1 + (-9 * u ** 2 + 6 * u + 3) * p2
           + 3 * u ** 2 * p3) / 6 * n_seg
    acc = (6 * (1 - u) * p0 + (18 * u - 12) * p1 + (-18 * u + 6) * p2 + 6 * u * p3) / 6 * n_seg ** 2
    return pos, vel, acc


def _smoothstep(x):
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def flight_path(rng: np.random.Generator, n_frames: int, camera: Camera, scale: float = 1.0) -> np.ndarray:
    """(n_frames, 4, 4) ``T_cam_obj`` of one smooth flight (see the module docstring);
    ``scale`` multiplies all distances (for models larger or smaller than the seed's)."""
    key = KEYFRAMES.copy()
    key[:, :2] += rng.uniform(-0.05, 0.05, (len(key), 2))
    key[:, 2] *= rng.uniform(0.9, 1.1, len(key)) * scale
    if rng.random() < 0.5:  # fly the mirrored route
        key[:, 0] = 1.0 - key[:, 0]
    W, H = camera.width, camera.height
    uv1 = np.stack([key[:, 0] * W - 0.5, key[:, 1] * H - 0.5, np.ones(len(key))], axis=1)  # (N, 3)
    ctrl = (uv1 @ np.linalg.inv(camera.K).T) * key[:, 2:3]  # (N, 3) camera-frame positions
    t = np.linspace(0, 1, n_frames)
    pos, vel, acc = _bspline(ctrl, t)

    up_ref = np.array([0.0, -1.0, 0.0])  # image up in the OpenCV camera frame
    bank_gain = rng.uniform(0.25, 0.45) * scale  # curvature 1/0.5 (seed units) banks ~35-40 degrees
    roll_dir = rng.choice([-1.0, 1.0])
    fwd = vel / np.maximum(np.linalg.norm(vel, axis=1, keepdims=True), 1e-9)  # (n, 3) nose directions
    ups = up_ref - fwd * (fwd @ up_ref)[:, None]
    degenerate = np.linalg.norm(ups, axis=1) < 1e-3  # flying straight up/down the image
    ups[degenerate] = np.cross(fwd[degenerate], [1.0, 0.0, 0.0])
    ups /= np.linalg.norm(ups, axis=1, keepdims=True)
    rights = np.cross(fwd, ups)
    # Coordinated turn: bank toward the side the path curves to, by the curvature,
    # smoothed over ~3 % of the flight so the bank never snaps.
    curvature = np.einsum("nd,nd->n", acc, rights) / np.maximum(np.einsum("nd,nd->n", vel, vel), 1e-9)
    bank = np.clip(np.arctan(bank_gain * curvature), -1.0, 1.0)
    sigma = max(1.0, 0.03 * n_frames)
    k = np.arange(-int(3 * sigma), int(3 * sigma) + 1)
    kernel = np.exp(-0.5 * (k / sigma) ** 2)
    bank = np.convolve(np.pad(bank, len(k) // 2, mode="edge"), kernel / kernel.sum(), mode="valid")
    roll = roll_dir * 2 * np.pi * _smoothstep((t - ROLL_SPAN[0]) / (ROLL_SPAN[1] - ROLL_SPAN[0]))
    Ts = np.empty((n_frames, 4, 4))
    for k in range(n_frames):
        z_axis = rotvec_to_R(fwd[k] * (bank[k] + roll[k])) @ ups[k]  # model +z (top), camera frame
        y_axis = -fwd[k]                                              # the nose is model -y
        x_axis = np.cross(y_axis, z_axis)
        Ts[k] = make_T(np.stack([x_axis, y_axis, z_axis], axis=1), pos[k])
    return Ts


def render_sequence(out: str | Path, n_frames: int, config: GeneratorConfig, camera: Camera, mesh_source=None,
                    fps: float = 30.0, progress: bool = True, jpeg_quality: int = 92, cpu: bool = True,
                    t_start: float | None = None) -> dict:
    """Render one flight into ``out``: frames, poses, camera_info.json, video.mp4, manifest.json."""
    import imageio_ffmpeg
    from tqdm import tqdm

    t0 = time.perf_counter() if t_start is None else t_start
    out = Path(out)
    if n_frames < 2:
        raise XwingError(f"--frames must be >= 2, got {n_frames}")
    if camera.has_distortion:
        raise XwingError("the camera has lens distortion; rendering supports pinhole cameras only")
    if cpu:
        from xwing.render.gl import use_cpu_renderer

        use_cpu_renderer()
    mesh_source = mesh_source or MeshSource()
    gen = SampleGenerator(config, camera, mesh_source.load())
    prepare_output(out)
    save_camera_info(out, camera)
    rng = np.random.default_rng([int(config.seed), 0x5E9])
    Ts = flight_path(rng, n_frames, camera, gen.size_scale)
    appearance = sample_appearance(rng)
    renderer, _ = gen._resources()

    bank = BackgroundBank(camera.width, camera.height, seed=config.seed, n=1, directory=config.backgrounds)
    background = bank.sample(rng)
    noise_sigma = rng.uniform(0.5, 3.0)
    W, H = camera.width, camera.height
    video_tmp = out / ".video.tmp.mp4"
    writer = imageio_ffmpeg.write_frames(str(video_tmp), (W, H), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         quality=8, macro_block_size=2, ffmpeg_log_level="error")
    writer.send(None)
    try:
        for k in tqdm(range(n_frames), unit="frame", desc="sequence", disable=not progress):
            frame_rng = np.random.default_rng([int(config.seed), 0x5E9, k])
            img, _ = renderer.render(Ts[k], camera, appearance, background)
            img = add_noise(img, noise_sigma, frame_rng)
            write_sample(out, k, img, model_matrix_from_T_cam_obj(Ts[k], camera.view_matrix), jpeg_quality)
            writer.send(np.ascontiguousarray(img))
        writer.close()
        os.replace(video_tmp, out / "video.mp4")
    except BaseException:
        writer.close()
        video_tmp.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - t0
    manifest = {"kind": "sequence", "xwing_version": __version__, "seed": config.seed,
                **identity(config, camera, gen.mesh, n_frames), "frames": n_frames, "fps": fps,
                "video": "video.mp4", "keypoints": gen.corners.tolist(),
                "renderer": {"gl": [renderer_name()], "cpu_requested": bool(cpu)},
                "flight": {"keyframes_uvz": KEYFRAMES.tolist(), "roll_span": list(ROLL_SPAN)},
                "speed": {"images_per_s": n_frames / seconds, "seconds": round(seconds, 3)}}
    atomic_write_json(out / "manifest.json", manifest)
    return manifest
