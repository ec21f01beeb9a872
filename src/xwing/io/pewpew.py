"""The seed's laser animation ("pewpew"), reproduced exactly (docs/seed-facts.md), on tracked poses.

Rules (the seed's ``utils.py``):

* Firing: at the start of every 25-frame period (frames 0, 25, 50, ...) each
  cannon draws its firing frame uniformly from the period's first 5 frames; it
  fires once per period. Here no bolt is fired on a frame without a pose
  (``lost``): that cannon skips the period. ``seed`` fixes the pattern.
* A bolt is a segment [o, d] in model coordinates. On its firing frame
  ``o = d = origin``. Each following frame ``d`` advances by
  ``step = 0.2 (direction point - origin)`` (0.04 units toward the nose for the
  seed's cannons); once the bolt is longer than the cannon segment
  ``|direction point - origin|`` (0.2 units for the seed), ``o`` advances by the
  same step too, *before* ``d`` does. So a bolt grows 0, 0.04, ..., 0.2, 0.24 and
  then travels at 0.24 (the seed's "about 0.2-0.24": its float sums made the
  0.2 comparison either way; we compare with a 1e-9 tolerance, which makes the
  rule exact). Bolts never expire.
* Each bolt is projected with the pose **of its firing frame** and drawn as a
  1-pixel green (0, 255, 0) anti-aliased line (``cv2.LINE_AA``) between the
  truncated integer pixel positions of its ends, in the seed's pixel-edge
  convention (``int(u + 0.5)`` in ours; see :mod:`xwing.geometry.camera`). A bolt with
  any coordinate > 1000 px (the seed's rule, one-sided), an end behind the camera
  or a coordinate below -1e6 (both would break the drawing) is skipped.
* Timing: 33 ms per frame (30 fps MP4; GIF delays 30, 30, 40 ms).

The animation is split in two pure steps so that each can be tested:
:func:`firing_schedule` (which cannon fires when) and :func:`bolt_segments`
(every bolt's model-space segment and its firing frame at a given frame), then
:func:`draw_bolts` draws one frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.projection import project_points
from xwing.model.keypoints import SEED_LASERS

PERIOD = 25
FIRE_WINDOW = 5
STEP_FRACTION = 0.2
GREEN = (0, 255, 0)
SKIP_BEYOND_PX = 1000
FRAME_MS = 33


@dataclass
class Bolt:
    """One bolt at one frame: ``segment`` (2, 3) [o, d] in model coordinates,
    fired by ``cannon`` at frame ``fired``."""

    cannon: int
    fired: int
    segment: np.ndarray


def firing_schedule(n_frames: int, n_cannons: int = 4, seed: int = 0,
                    can_fire: np.ndarray | None = None) -> list[tuple[int, int]]:
    """(frame, cannon) firing events, sorted by frame then cannon.

    One random draw per cannon per period (seeded), whether or not it can fire,
    so the pattern of the frames that do fire does not depend on tracking losses.
    ``can_fire`` (n_frames,) bool: False for frames without a pose.
    """
    rng = np.random.default_rng(seed)
    events = []
    for start in range(0, n_frames, PERIOD):
        offsets = rng.integers(0, FIRE_WINDOW, size=n_cannons)
        for cannon, off in enumerate(offsets):
            frame = start + int(off)
            if frame < n_frames and (can_fire is None or bool(can_fire[frame])):
                events.append((frame, cannon))
    return sorted(events)


def bolt_segment(lasers: np.ndarray, cannon: int, age: int) -> np.ndarray:
    """Segment (2, 3) [o, d] of a bolt of ``cannon`` ``age`` frames after its firing frame."""
    origin, direction = lasers[cannon]
    step = STEP_FRACTION * (direction - origin)  # (3,)
    max_len = float(np.linalg.norm(direction - origin))
    # Closed form of the per-frame rule on integer step counts (no float drift): the
    # tail starts moving once the bolt is m steps long, the least m with m step > max_len.
    m = int(np.floor(max_len / float(np.linalg.norm(step)) + 1e-9)) + 1
    d_steps, o_steps = age, max(0, age - m)
    return np.stack([origin + o_steps * step, origin + d_steps * step])


def bolt_segments(frame: int, events: list[tuple[int, int]], lasers: np.ndarray = SEED_LASERS) -> list[Bolt]:
    """Every bolt alive at ``frame`` (fired at or before it)."""
    return [Bolt(cannon, fired, bolt_segment(lasers, cannon, frame - fired))
            for fired, cannon in events if fired <= frame]


def bolt_pixels(bolt: Bolt, poses: list, K: np.ndarray, dist: np.ndarray | None = None):
    """The integer pixel ends ((u0, v0), (u1, v1)) of a bolt drawn with its firing
    frame's pose, or None when the seed's rule skips it."""
    uv = project_points(bolt.segment, poses[bolt.fired], K, dist)  # (2, 2) pixel centres at integers
    if not np.all(np.isfinite(uv)):
        return None
    uv_seed = uv + 0.5  # the seed's pixel-edge convention
    # The seed's rule is one-sided (> 1000); the -1e6 guard only keeps OpenCV's ints sane.
    if np.any(uv_seed > SKIP_BEYOND_PX) or np.any(uv_seed < -1e6):
        return None
    ends = np.trunc(uv_seed).astype(np.int64)
    return (int(ends[0, 0]), int(ends[0, 1])), (int(ends[1, 0]), int(ends[1, 1]))


def draw_bolts(image: np.ndarray, frame: int, events, poses: list, K: np.ndarray,
               dist: np.ndarray | None = None, lasers: np.ndarray = SEED_LASERS) -> np.ndarray:
    """Draw every bolt alive at ``frame`` on ``image`` (RGB uint8, in place)."""
    import cv2

    for bolt in bolt_segments(frame, events, lasers):
        ends = bolt_pixels(bolt, poses, K, dist)
        if ends is not None:
            cv2.line(image, ends[0], ends[1], GREEN, 1, cv2.LINE_AA)
    return image


def load_lasers(path: str | Path | None) -> np.ndarray:
    """``--lasers FILE``: a JSON list of ``[[ox, oy, oz], [dx, dy, dz]]`` (origin,
    direction point) in model coordinates -> (C, 2, 3); ``None`` -> the seed's."""
    if path is None:
        return SEED_LASERS.copy()
    path = Path(path)
    if not path.is_file():
        raise XwingError("lasers file not found", path)
    try:
        lasers = np.asarray(json.loads(path.read_text()), dtype=np.float64)
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise XwingError(f"lasers must be a JSON list of [origin, direction point] pairs ({e})", path) from None
    if lasers.ndim != 3 or lasers.shape[1:] != (2, 3) or not np.all(np.isfinite(lasers)):
        raise XwingError(f"lasers must have shape (C, 2, 3), got {lasers.shape}", path)
    if np.any(np.linalg.norm(lasers[:, 1] - lasers[:, 0], axis=1) <= 0):
        raise XwingError("a laser's direction point equals its origin", path)
    return lasers


def render_pewpew(frames, poses: list, K: np.ndarray, dist: np.ndarray | None = None,
                  lasers: np.ndarray = SEED_LASERS, seed: int = 0):
    """Yield each frame (copied) with its bolts drawn.

    ``frames``: iterable of RGB uint8 images; ``poses``: per frame a (4, 4)
    ``T_cam_obj`` or None (lost: no bolt fires then).
    """
    can_fire = np.array([p is not None for p in poses], bool)
    events = firing_schedule(len(poses), len(lasers), seed, can_fire)
    for i, frame in enumerate(frames):
        yield draw_bolts(frame.copy(), i, events, poses, K, dist, lasers)


class PewPew:
    """The animation as a stream: :meth:`draw` each frame in order with its pose (or None).

    Same result as :func:`render_pewpew` (same seeded draws, one per cannon per
    period), but it needs only the past, so it can run live from a camera.
    """

    def __init__(self, K: np.ndarray, dist: np.ndarray | None = None, lasers: np.ndarray = SEED_LASERS,
                 seed: int = 0):
        self.K, self.dist, self.lasers = K, dist, lasers
        self.rng = np.random.default_rng(seed)
        self.frame = 0
        self.offsets = None
        self.events: list[tuple[int, int]] = []
        self.poses: dict[int, np.ndarray] = {}  # firing frame -> its pose

    def draw(self, image: np.ndarray, T_cam_obj: np.ndarray | None) -> np.ndarray:
        """Draw on a copy of ``image`` (RGB uint8) the bolts alive at this frame."""
        import cv2

        i = self.frame
        if i % PERIOD == 0:
            self.offsets = self.rng.integers(0, FIRE_WINDOW, size=len(self.lasers))
        if T_cam_obj is not None:
            for cannon, off in enumerate(self.offsets):
                if i == (i // PERIOD) * PERIOD + int(off):
                    self.events.append((i, cannon))
                    self.poses[i] = np.asarray(T_cam_obj, dtype=np.float64)
        out = image.copy()
        for fired, cannon in self.events:
            bolt = Bolt(cannon, fired, bolt_segment(self.lasers, cannon, i - fired))
            ends = bolt_pixels(bolt, self.poses, self.K, self.dist)
            if ends is not None:
                cv2.line(out, ends[0], ends[1], GREEN, 1, cv2.LINE_AA)
        self.frame += 1
        return out
