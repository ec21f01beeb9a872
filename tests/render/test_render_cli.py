"""``xwing render``: seed layout, determinism, resume, shards, workers, read-back, bad input."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from _gl import require_gl  # noqa: E402
from xwing.cli import main

SMALL = ["--size", "64", "--no-progress"]


def render(out, *extra, count=10, seed=5):
    return main(["render", str(out), "--count", str(count), "--seed", str(seed), *SMALL, *extra])


def files(d: Path) -> dict[str, bytes]:
    """Dataset files (images, poses, camera) by name; manifests hold timings and are left out."""
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())
            if p.is_file() and not p.name.startswith("manifest") and not p.name.startswith(".")}


def test_seed_layout_and_read_back(tmp_path, capsys):
    require_gl()
    from xwing.geometry.camera import seed_camera
    from xwing.io.dataset import SeedDataset
    from xwing.render.generator import GeneratorConfig, SampleGenerator

    out = tmp_path / "ds"
    assert render(out) == 0
    text = capsys.readouterr().out
    assert "img/s" in text
    names = set(files(out))
    assert names == {f"{i}.jpg" for i in range(10)} | {f"{i}_mat.json" for i in range(10)} | {"camera_info.json"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 5 and manifest["count"] == 10 and manifest["speed"]["images_per_s"] > 0
    assert manifest["counts"]["rendered_this_run"] == 10
    # The foundation's reader gets back exactly the poses the generator drew.
    ds = SeedDataset(out)
    assert len(ds) == 10 and ds.camera.width == 64
    np.testing.assert_allclose(ds.camera.K, seed_camera(64, 64).K, atol=1e-6)
    gen = SampleGenerator(GeneratorConfig(seed=5), seed_camera(64, 64))
    for i in range(10):
        s = ds[i]
        np.testing.assert_allclose(s.T_cam_obj, gen.sample_index(i).T_cam_obj, atol=1e-12)
        assert s.image.shape == (64, 64, 3)


def test_deterministic_resume_shards_workers(tmp_path):
    require_gl()
    import xwing.render.writer as writer

    full = tmp_path / "full"
    assert render(full, count=40) == 0
    reference = files(full)

    # Same seed -> same files; another seed -> other files.
    again = tmp_path / "again"
    assert render(again, count=40) == 0
    assert files(again) == reference
    other = tmp_path / "other"
    assert render(other, count=40, seed=6) == 0
    assert files(other)["3.jpg"] != reference["3.jpg"]

    # Interrupted after 7 samples, then rerun: the same files as one uninterrupted run.
    part = tmp_path / "part"
    real, calls = writer.write_one, []

    def dying(gen, out, index):
        if len(calls) == 7:
            raise KeyboardInterrupt
        calls.append(index)
        return real(gen, out, index)

    writer.write_one = dying
    try:
        assert render(part, count=40) == 130
    finally:
        writer.write_one = real
    assert len([n for n in files(part) if n.endswith("_mat.json")]) == 7
    (part / ".9.jpg.stale.tmp").write_bytes(b"half")  # a killed atomic write
    os.utime(part / ".9.jpg.stale.tmp", (0, 0))
    assert render(part, count=40) == 0
    assert files(part) == reference
    assert not (part / ".9.jpg.stale.tmp").exists()
    m = json.loads((part / "manifest.json").read_text())
    assert m["counts"]["skipped_existing"] == 7 and m["counts"]["rendered_this_run"] == 33

    # Shards union to the full set without overlap.
    sharded = tmp_path / "sharded"
    seen = set()
    for i in range(3):
        assert render(sharded, "--shard", f"{i}/3", count=40) == 0
        now = {n for n in files(sharded) if n.endswith(".jpg")}
        assert not (now - seen) & seen
        assert len(now - seen) == len(range(i, 40, 3))
        seen = now
    assert files(sharded) == reference
    assert len(list(sharded.glob("manifest.shard-*-of-3.json"))) == 3

    # Worker processes write the same files: forked from a fresh command (the CLI's way),
    # and spawned from this process (which holds a GL context, so it must not fork).
    import subprocess
    import sys

    workers = tmp_path / "workers"
    cmd = [sys.executable, "-m", "xwing", "render", str(workers), "--count", "40", "--seed", "5", "--workers", "2",
           *SMALL]
    subprocess.run(cmd, check=True, capture_output=True)
    assert files(workers) == reference
    spawned = tmp_path / "spawned"
    assert render(spawned, "--workers", "2", count=40) == 0
    assert files(spawned) == reference


def test_resume_refuses_other_options(tmp_path, capsys):
    require_gl()
    out = tmp_path / "ds"
    assert render(out, count=3) == 0
    capsys.readouterr()
    assert render(out, count=3, seed=9) == 2
    err = capsys.readouterr().err
    assert "different config" in err and err.count("\n") == 1


def test_held_out_ship_and_look_and_resuming_a_set_from_before_the_look(tmp_path, capsys):
    import json

    require_gl()
    held, plain = tmp_path / "held", tmp_path / "plain"
    assert render(held, "--held-out-ship", "--look", "held_out", count=3) == 0
    assert render(plain, count=3) == 0
    m = json.loads((held / "manifest.json").read_text())
    assert m["config"]["look"] == "held_out" and m["mesh_source"]["held_out"]
    assert files(held) != files(plain)  # another ship, another paint
    # A set rendered before the look existed resumes: its config had the default look then.
    manifest = json.loads((plain / "manifest.json").read_text())
    del manifest["config"]["look"]
    (plain / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert render(plain, count=3) == 0
    assert render(tmp_path / "bad", "--mesh", str(tmp_path / "x.obj"), "--held-out-ship", count=3) == 2
    assert "--held-out-ship" in capsys.readouterr().err


def test_sequence(tmp_path):
    require_gl()
    import imageio.v2 as iio

    from xwing.io.dataset import SeedDataset
    from xwing.render.sequence import ROLL_SPAN

    n = 60
    out = tmp_path / "seq"
    assert main(["render", str(out), "--sequence", "--frames", str(n), "--seed", "3", *SMALL]) == 0
    ds = SeedDataset(out, load_images=False)
    assert len(ds) == n
    with iio.get_reader(out / "video.mp4") as r:
        assert r.get_meta_data()["fps"] == 30 and sum(1 for _ in r) == n
    # A smooth flight: even steps, no jumps; the turn rate changes gradually (60 frames is a
    # fast flight: the U-turn and the barrel roll turn the ship 20-50 degrees per frame).
    t = np.stack([ds.T_cam_obj(i)[:3, 3] for i in range(n)])
    steps = np.linalg.norm(np.diff(t, axis=0), axis=1)
    assert steps.max() < 3 * np.median(steps) + 1e-3
    R = np.stack([ds.T_cam_obj(i)[:3, :3] for i in range(n)])
    angles = np.degrees(np.arccos(np.clip((np.einsum("nij,nij->n", R[1:], R[:-1]) - 1) / 2, -1, 1)))
    assert angles.max() < 60 and np.abs(np.diff(angles)).max() < 15
    in_roll = (np.arange(1, n) / (n - 1) > ROLL_SPAN[0]) & (np.arange(1, n) / (n - 1) < ROLL_SPAN[1])
    assert angles[in_roll].mean() > 2 * np.median(angles)
    # Part of the flight is partly out of the frame, and the ship comes close and goes far.
    from xwing.geometry.projection import in_image, project_points
    from xwing.model.keypoints import SEED_BOX_CORNERS

    partly = [0 < in_image(project_points(SEED_BOX_CORNERS, ds.T_cam_obj(i), ds.camera.K), 64, 64).sum() < 8
              for i in range(n)]
    assert any(partly)
    assert t[:, 2].min() < 1.0 and t[:, 2].max() > 2.0


@pytest.mark.parametrize("case", ["count0", "mesh", "backgrounds", "unwritable", "shard", "fit"])
def test_bad_input_one_line_errors(tmp_path, capsys, case):
    out = tmp_path / "out"
    if case == "count0":
        rc = render(out, count=0)
        expect = "--count"
    elif case == "mesh":
        bad = tmp_path / "broken.obj"
        bad.write_text("this is not a mesh\n")
        rc = render(out, "--mesh", str(bad))
        expect = "broken.obj"
    elif case == "backgrounds":
        empty = tmp_path / "empty"
        empty.mkdir()
        rc = render(out, "--backgrounds", str(empty))
        expect = "no images"
    elif case == "unwritable":
        blocker = tmp_path / "file.txt"
        blocker.write_text("x")
        rc = render(blocker / "sub")
        expect = "cannot create"
    elif case == "fit":
        rc = render(out, "--fit-seed-box")
        expect = "--mesh"
    else:
        with pytest.raises(SystemExit) as e:
            render(out, "--shard", "3/2")
        assert e.value.code == 2
        return
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("xwing render: error:") and err.count("\n") == 1 and expect in err
    assert not any(out.glob("*.jpg")) if out.exists() else True


def test_user_mesh_and_backgrounds(tmp_path):
    require_gl()
    import cv2

    from xwing.model.keypoints import SEED_BOX_CORNERS, box_corners

    obj = tmp_path / "block.obj"
    v = [(x, y, z) for z in (0, 0.05) for y in (0, 0.3) for x in (0, 0.2)]
    f = [(1, 3, 4, 2), (5, 6, 8, 7), (1, 2, 6, 5), (3, 7, 8, 4), (1, 5, 7, 3), (2, 4, 8, 6)]
    obj.write_text("\n".join([f"v {a} {b} {c}" for a, b, c in v] + [f"f {a} {b} {c} {d}" for a, b, c, d in f]))
    bgs = tmp_path / "bgs"
    bgs.mkdir()
    for k, colour in enumerate([(0, 0, 200), (0, 200, 0)]):  # BGR on disk: red and green
        cv2.imwrite(str(bgs / f"{k}.png"), np.full((40, 50, 3), colour, np.uint8))

    fitted = tmp_path / "fitted"
    assert render(fitted, "--mesh", str(obj), "--fit-seed-box", "--backgrounds", str(bgs), count=4) == 0
    m = json.loads((fitted / "manifest.json").read_text())
    np.testing.assert_allclose(m["keypoints"], SEED_BOX_CORNERS, atol=1e-6)
    img = cv2.imread(str(fitted / "0.jpg"))[..., ::-1]
    corner = img[:4, :4].reshape(-1, 3).mean(axis=0)
    assert corner[0] > 3 * corner[2] or corner[1] > 3 * corner[2]  # the user's red/green, not space-blue

    own = tmp_path / "own"
    assert render(own, "--mesh", str(obj), count=2) == 0
    m = json.loads((own / "manifest.json").read_text())
    np.testing.assert_allclose(m["keypoints"], box_corners([0, 0, 0], [0.2, 0.3, 0.05]), atol=1e-6)


def test_occluders_hide_the_ship():
    from xwing.render.occluders import add_occluders

    rng = np.random.default_rng(0)
    img = np.full((64, 64, 3), 30, np.uint8)
    mask = np.zeros((64, 64), np.float32)
    mask[20:44, 16:48] = 1.0
    out, visible = add_occluders(img, mask, rng, np.array([[16.0, 20.0], [47.0, 43.0]]))
    assert (visible <= mask).all() and visible.sum() < mask.sum()
    assert (out != img).any(axis=-1).sum() > 0
    hidden = (mask - visible) > 0.5
    assert (out[hidden] != 30).any()


def test_bop_layout_beside_the_seed_layout(tmp_path, capsys):
    require_gl()
    from xwing.io import bop
    from xwing.io.dataset import SeedDataset

    out = tmp_path / "ds"
    assert render(out, "--bop", str(out), "--bop-split", "test", count=4) == 0  # BOP beside the seed files
    assert "BOP: 4 images" in capsys.readouterr().out
    scene = out / "test" / "000000"
    ds = SeedDataset(out)  # the seed reader ignores the BOP folders beside it
    assert len(ds) == 4
    gt, cams = bop.load_scene_gt(scene / "scene_gt.json"), bop.load_scene_camera(scene / "scene_camera.json")
    for i in range(4):
        rgb = scene / "rgb" / f"{i:06d}.jpg"
        assert rgb.read_bytes() == (out / f"{i}.jpg").read_bytes()
        np.testing.assert_allclose(bop.T_cam_obj_of_gt(gt[i][0]), ds.T_cam_obj(i), atol=1e-12)
        np.testing.assert_array_equal(cams[i]["cam_K"], ds.camera.K)
    v, f, n = bop.load_ply(out / "models" / "obj_000001.ply")
    info = bop.load_models_info(out / "models" / "models_info.json")[1]
    assert len(f) > 1000 and n is not None and info["size_x"] == pytest.approx(312.0, abs=1e-3)  # mm
    assert json.loads((out / "camera.json").read_text())["width"] == 64
    # shards each hold part of the set: the BOP copy is written by the run after them
    rc = render(tmp_path / "sh", "--shard", "0/2", "--bop", str(tmp_path / "b"), count=4)
    assert rc == 2 and "--bop writes the whole set" in capsys.readouterr().err
    assert render(out, "--bop", str(out), "--bop-split", "../up", count=4) == 2
    assert "split" in capsys.readouterr().err
