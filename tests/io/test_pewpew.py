"""xwing.io.pewpew: the seed's laser animation, rule by rule, on known poses."""

import json

import numpy as np
import pytest

from xwing.errors import XwingError
from xwing.geometry.camera import seed_camera
from xwing.geometry.pose import make_T, rotvec_to_R
from xwing.geometry.projection import project_points
from xwing.io.pewpew import (
    FIRE_WINDOW,
    GREEN,
    PERIOD,
    Bolt,
    PewPew,
    bolt_pixels,
    bolt_segment,
    bolt_segments,
    draw_bolts,
    firing_schedule,
    load_lasers,
    render_pewpew,
)
from xwing.model.keypoints import SEED_LASERS


def seed_rule(lasers, cannon, age):
    """The seed's update, literally: per frame, the tail moves once the bolt is longer
    than the cannon segment, then the head moves (float positions)."""
    origin, direction = lasers[cannon]
    step = 0.2 * (direction - origin)
    o, d = origin.copy(), origin.copy()
    for _ in range(age):
        if np.linalg.norm(d - o) > np.linalg.norm(direction - origin) + 1e-9:
            o = o + step
        d = d + step
    return np.stack([o, d])


def test_each_cannon_fires_once_per_period_in_its_first_five_frames():
    events = firing_schedule(100, seed=3)
    for start in range(0, 100, PERIOD):
        in_period = [(f, c) for f, c in events if start <= f < start + PERIOD]
        assert sorted(c for _, c in in_period) == [0, 1, 2, 3]
        assert all(start <= f < start + FIRE_WINDOW for f, _ in in_period)
    assert firing_schedule(100, seed=3) == events  # seeded
    assert firing_schedule(100, seed=4) != events


def test_no_bolt_fires_on_a_lost_frame_and_the_others_keep_their_frames():
    full = firing_schedule(50, seed=1)
    can_fire = np.ones(50, bool)
    lost_frame = full[0][0]
    can_fire[lost_frame] = False
    partial = firing_schedule(50, seed=1, can_fire=can_fire)
    assert all(f != lost_frame for f, _ in partial)
    assert partial == [e for e in full if e[0] != lost_frame]


def test_bolt_growth_and_travel_follow_the_seed_rule():
    for age in range(40):
        for cannon in range(4):
            assert np.allclose(bolt_segment(SEED_LASERS, cannon, age), seed_rule(SEED_LASERS, cannon, age))
    lengths = [np.linalg.norm(np.subtract(*bolt_segment(SEED_LASERS, 0, a))) for a in range(12)]
    assert lengths[0] == 0.0  # nothing visible on the firing frame
    assert np.allclose(lengths[:7], [0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.24])
    assert np.allclose(lengths[7:], 0.24)  # then constant length
    seg = bolt_segment(SEED_LASERS, 2, 10)
    assert np.allclose(seg[1] - SEED_LASERS[2, 0], [0, -0.4, 0])  # 10 steps of 0.04 toward the nose (-y)


def test_bolt_pixels_are_where_the_firing_pose_projects_them():
    cam = seed_camera()
    T0 = make_T(rotvec_to_R([0.1, 0.2, 0.3]), [0.0, 0.05, 1.6])
    T_later = make_T(rotvec_to_R([1.0, -0.5, 0.2]), [0.2, -0.1, 2.5])
    events = [(0, 1)]
    poses = [T0] + [T_later] * 9
    bolt = bolt_segments(6, events)[0]
    assert bolt.fired == 0 and bolt.cannon == 1
    uv = project_points(bolt.segment, T0, cam.K)
    ends = bolt_pixels(bolt, poses, cam.K)
    assert ends == tuple(tuple(int(x) for x in np.trunc(p + 0.5)) for p in uv)  # seed pixel-edge, truncated
    img = draw_bolts(np.zeros((256, 256, 3), np.uint8), 6, events, poses, cam.K)
    green = (img[..., 1] > 0) & (img[..., 0] == 0) & (img[..., 2] == 0)
    assert green[ends[0][1], ends[0][0]] and green[ends[1][1], ends[1][0]]
    # every lit pixel lies on the segment between the ends (anti-aliasing: within 1.5 px)
    ys, xs = np.nonzero(img[..., 1])
    p0, p1 = np.array(ends[0], float), np.array(ends[1], float)
    d = p1 - p0
    t = np.clip(((np.stack([xs, ys], 1) - p0) @ d) / (d @ d), 0, 1)
    dist = np.linalg.norm(np.stack([xs, ys], 1) - (p0 + t[:, None] * d), axis=1)
    assert dist.max() < 1.5
    assert tuple(img[ends[0][1], ends[0][0]]) == GREEN or img[ends[0][1], ends[0][0], 1] > 100


def test_a_bolt_keeps_its_firing_pose():
    cam = seed_camera()
    T0 = make_T(np.eye(3), [0, 0, 1.5])
    events = [(0, 0)]
    a = draw_bolts(np.zeros((256, 256, 3), np.uint8), 4, events, [T0] * 5, cam.K)
    moved = [T0] + [make_T(rotvec_to_R([0, 0, 1.0]), [0.3, 0, 2.0])] * 4
    b = draw_bolts(np.zeros((256, 256, 3), np.uint8), 4, events, moved, cam.K)
    assert a.any() and np.array_equal(a, b)


def test_far_or_behind_bolts_are_skipped():
    cam = seed_camera()
    bolt = Bolt(0, 0, bolt_segment(SEED_LASERS, 0, 3))
    right = make_T(np.eye(3), [0.5, 0, 0.1])  # u just above 1000 px
    assert project_points(bolt.segment, right, cam.K)[:, 0].max() + 0.5 > 1000
    assert bolt_pixels(bolt, [right], cam.K) is None
    assert bolt_pixels(bolt, [make_T(np.eye(3), [0.3, 0, 0.1])], cam.K) is not None  # below 1000: drawn
    near = make_T(np.eye(3), [0, 0, 0.0105])  # ends far outside to the upper left: the seed drew those
    assert project_points(bolt.segment, near, cam.K).min() < -1000
    assert bolt_pixels(bolt, [near], cam.K) is not None
    behind = make_T(np.eye(3), [0, 0, -1.0])
    assert bolt_pixels(Bolt(0, 0, bolt_segment(SEED_LASERS, 0, 3)), [behind], cam.K) is None


def test_streaming_animation_equals_the_batch_one():
    cam = seed_camera()
    rng = np.random.default_rng(0)
    poses = [make_T(rotvec_to_R([0.3, 0.1 * i / 10, 0.2]), [rng.normal(0, 0.01), 0, 1.8]) for i in range(60)]
    poses[26] = poses[27] = None  # lost frames
    frames = [np.full((96, 128, 3), 10, np.uint8) for _ in poses]
    batch = list(render_pewpew(frames, poses, cam.for_frame_size(128, 96).K, seed=9))
    pew = PewPew(cam.for_frame_size(128, 96).K, seed=9)
    stream = [pew.draw(f, p) for f, p in zip(frames, poses)]
    assert all(np.array_equal(x, y) for x, y in zip(batch, stream))
    assert sum(int(x[..., 1].sum()) for x in batch) > 0
    assert frames[0].max() == 10  # inputs untouched


def test_load_lasers(tmp_path):
    assert np.array_equal(load_lasers(None), SEED_LASERS)
    good = tmp_path / "l.json"
    good.write_text(json.dumps([[[0, 0, 0], [0, -1, 0]]]))
    assert load_lasers(good).shape == (1, 2, 3)
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps([[0, 0, 0]]))
    with pytest.raises(XwingError, match="shape"):
        load_lasers(bad)
    with pytest.raises(XwingError, match="not found"):
        load_lasers(tmp_path / "nope.json")
