"""`xwing track`, `predict` and `demo` end to end on tiny self-made data (oracle detector)."""

import csv
import json

import numpy as np
import pytest

from _flights import synthetic_flight, write_oracle_sequence
from xwing.cli import main
from xwing.eval.summary import METRIC_KEYS
from xwing.geometry.camera import T_cam_obj_from_model_matrix, seed_camera
from xwing.infer.oracle import OracleDetector
from xwing.io.dataset import load_matrix, save_camera_info, write_sample
from xwing.io.images import write_image
from xwing.io.video import gif_delays_ms, open_source

SIZE = 128


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    """A 45-frame flight at 128 x 128 in `xwing render --sequence` layout; frames 20-24 without the ship."""
    root = tmp_path_factory.mktemp("seq")
    cam = seed_camera(SIZE, SIZE)
    poses = synthetic_flight(45, cam, seed=3)
    poses = [None if 20 <= i < 25 else T for i, T in enumerate(poses)]
    write_oracle_sequence(root, poses, cam)
    return root, cam, poses


@pytest.fixture(scope="module")
def tracked(sequence, tmp_path_factory):
    root, cam, poses = sequence
    out = tmp_path_factory.mktemp("track")
    rc = main(["track", str(root), "--model", "oracle:noise=0.5,seed=2", "--out", str(out), "--compare",
               "--quiet", "--seed", "5", "--refine", "none", "--bop-out", str(out / "bop" / "xwing_flight-test.csv")])
    assert rc == 0
    return out


def test_track_writes_every_output(tracked, sequence):
    root, cam, poses = sequence
    for name in ("poses.json", "poses.csv", "overlay.mp4", "pewpew.gif", "pewpew.mp4", "metrics.json",
                 "config.json"):
        assert (tracked / name).stat().st_size > 0, name
    assert not list(tracked.glob(".*"))  # no temporary files left
    import imageio.v3 as iio

    assert sum(1 for _ in iio.imiter(tracked / "overlay.mp4")) == len(poses)
    assert sum(1 for _ in iio.imiter(tracked / "pewpew.mp4")) == len(poses)
    delays = gif_delays_ms(tracked / "pewpew.gif")
    assert len(delays) == len(poses) and delays[:6] == [30, 30, 40, 30, 30, 40]


def test_poses_json_round_trips_into_the_seed_matrix_convention(tracked, sequence):
    root, cam, poses = sequence
    doc = json.loads((tracked / "poses.json").read_text())
    assert doc["camera"]["width"] == SIZE and len(doc["frames"]) == len(poses)
    for f, T_gt in zip(doc["frames"], poses):
        assert f["status"] in ("tracked", "detected", "lost")
        if T_gt is None:
            assert f["status"] == "lost" and f["T_cam_obj"] is None and f["model_matrix"] is None
            continue
        assert f["status"] != "lost"
        T = np.asarray(f["T_cam_obj"])
        M = np.asarray(f["model_matrix"])
        # the seed's N_mat.json convention: the same pose through the seed's view matrix
        assert np.allclose(T_cam_obj_from_model_matrix(M, cam.view_matrix), T, atol=1e-9)
        M_gt = load_matrix(root / f"{f['index']}_mat.json")
        assert np.abs(M[:3, 3] - M_gt[:3, 3]).max() < 0.05  # a good estimate of the truth
        assert len(f["keypoints"]) == 8 and all(len(k) == 3 for k in f["keypoints"])
    rows = list(csv.DictReader((tracked / "poses.csv").open()))
    assert len(rows) == len(poses)
    for row, f in zip(rows, doc["frames"]):
        assert row["status"] == f["status"]
        if f["T_cam_obj"] is not None:
            assert float(row["T23"]) == pytest.approx(f["T_cam_obj"][2][3])
            assert float(row["M03"]) == pytest.approx(f["model_matrix"][0][3])
            assert float(row["kp7_conf"]) == pytest.approx(f["keypoints"][7][2])
        else:
            assert row["T00"] == "" and row["kp0_u"] == ""


def test_metrics_have_eval_keys_jitter_lost_rate_fps_and_the_baseline(tracked):
    m = json.loads((tracked / "metrics.json").read_text())
    assert set(METRIC_KEYS) <= set(m)
    assert {"jitter_deg", "lost_rate", "fps_end_to_end", "in_image", "truncated", "per_frame_baseline"} <= set(m)
    assert m["n_frames"] == 45 and m["fps_end_to_end"] > 0
    assert m["status_counts"]["lost"] == 5
    assert m["lost_rate"] == 0.0  # lost only where the ship was not there (no truth: not counted)
    assert m["n_images"] == 40  # metrics over frames with truth
    assert m["jitter_deg"] < m["per_frame_baseline"]["jitter_deg"]
    assert 0 < m["kp_net_err_px_median"] < 2.0
    assert m["roll_flip_rate"] == 0.0 and m["roll_decision"] == "whole track"
    stages = m["stage_ms"]
    assert set(stages) == {"read", "network", "pnp", "align", "side", "filter", "other"}
    assert stages["network"] > 0 and stages["pnp"] > 0 and stages["align"] == 0.0  # --refine none
    assert sum(stages.values()) - stages["read"] <= m["ms_per_frame"] * 1.05


def test_track_bop_out_holds_the_poses_of_the_frames_with_one(tracked, sequence):
    from xwing.io.bop import load_bop_results

    root, cam, poses = sequence
    frames = json.loads((tracked / "poses.json").read_text())["frames"]
    metrics = json.loads((tracked / "metrics.json").read_text())
    ests = load_bop_results(tracked / "bop" / "xwing_flight-test.csv")
    posed = [f for f in frames if f["T_cam_obj"] is not None]
    assert [e.im_id for e in ests] == [f["index"] for f in posed] and len(ests) < len(frames)  # lost: left out
    for e, f in zip(ests, posed):
        np.testing.assert_allclose(e.T_cam_obj, f["T_cam_obj"], atol=1e-12)  # mm and back
        assert e.scene_id == 0 and e.obj_id == 1 and 0 <= e.score <= 1
    assert len({e.time_s for e in ests}) == 1  # the run's mean time per frame
    assert ests[0].time_s == pytest.approx(1.0 / metrics["fps_end_to_end"], rel=1e-9)


def test_per_frame_mode(sequence, tmp_path):
    root, _, _ = sequence
    out = tmp_path / "pf"
    assert main(["track", str(root), "--model", "oracle", "--out", str(out), "--per-frame", "--no-video",
                 "--quiet", "--max-frames", "10", "--refine", "none"]) == 0
    doc = json.loads((out / "poses.json").read_text())
    assert [f["status"] for f in doc["frames"]] == ["detected"] * 10
    assert not (out / "overlay.mp4").exists()


def test_seed_format_image_directory_of_odd_size_is_a_sequence_with_truth(tmp_path):
    cam = seed_camera(131, 97)  # odd sizes: H.264 needs even ones, the writer pads
    from xwing.geometry.camera import model_matrix_from_T_cam_obj

    (tmp_path / "ds").mkdir()
    for i, T in enumerate(synthetic_flight(6, cam, seed=1)):
        write_sample(tmp_path / "ds", i, np.zeros((97, 131, 3), np.uint8),
                     model_matrix_from_T_cam_obj(T, cam.view_matrix))
    save_camera_info(tmp_path / "ds", cam)
    src = open_source(tmp_path / "ds")
    assert src.kind == "sequence" and len(src.truth) == 6 and src.n_frames == 6
    assert main(["track", str(tmp_path / "ds"), "--model", "oracle", "--out", str(tmp_path / "o"), "--quiet",
                 "--refine", "none"]) == 0
    import imageio.v3 as iio

    frames = list(iio.imiter(tmp_path / "o" / "overlay.mp4"))
    assert len(frames) == 6 and frames[0].shape == (98, 132, 3)


def test_bad_inputs_give_one_line_errors(tmp_path, capsys, sequence):
    def err(argv, text):
        assert main(argv) == 2
        msg = capsys.readouterr().err
        assert text in msg and msg.count("\n") == 1, msg

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    err(["track", str(empty), "--model", "oracle", "--out", str(tmp_path / "o")], "empty.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    err(["track", str(junk), "--model", "oracle", "--out", str(tmp_path / "o")], "junk.mp4")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("hi")
    err(["track", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")], "no images")
    err(["track", str(tmp_path / "missing_dir"), "--out", str(tmp_path / "o")], "input not found")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        write_image(frames / f"{i}.png", np.zeros((SIZE, SIZE, 3), np.uint8))
    err(["track", str(frames), "--model", "oracle", "--out", str(tmp_path / "o")], "needs truth")
    cam_file = tmp_path / "cam.json"
    cam_file.write_text(json.dumps({"K": [[100, 0, 63.5], [0, 100, 63.5], [0, 0, 1]], "width": 640, "height": 480}))
    root, _, _ = sequence
    err(["track", str(root), "--model", "oracle", "--camera", str(cam_file), "--out", str(tmp_path / "o")],
        "640 x 480")
    err(["track", str(root), "--model", str(tmp_path / "no_model.onnx"), "--out", str(tmp_path / "o")],
        "model file not found")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_video_file_input_and_camera_fallback(sequence, tmp_path):
    root, cam, poses = sequence
    src = open_source(root / "video.mp4")
    assert src.kind == "video" and (src.width, src.height) == (SIZE, SIZE) and not src.truth
    frames = [f for _, _, f in src.frames()]
    assert len(frames) == len(poses) and frames[0].dtype == np.uint8 and frames[0].shape == (SIZE, SIZE, 3)
    from xwing.eval.tracking import resolve_camera

    camera, how = resolve_camera(None, src, OracleDetector())
    assert "FOV" in how and np.isclose(camera.hfov_deg, seed_camera().hfov_deg)


class _FixedTruth:
    """A detector (not the oracle class) that knows one image's truth: predict's path as a network sees it."""

    def __init__(self, T, cam):
        self.o = OracleDetector(input_size=128)
        self.o.set_truth(T, cam)
        self.points_3d, self.input_size, self.camera = self.o.points_3d, 128, cam

    def set_crop(self, crop):
        self.o.set_crop(crop)

    def __call__(self, image):
        return self.o(image)


def test_predict_writes_overlay_and_pose(tmp_path, monkeypatch, capsys):
    cam = seed_camera(SIZE, SIZE)
    T = synthetic_flight(1, cam, seed=4, exit_frame=False)[0]
    img = tmp_path / "shot.png"
    write_image(img, np.full((SIZE, SIZE, 3), 40, np.uint8))
    import xwing.cli.predict

    monkeypatch.setattr(xwing.cli.predict, "load_model",
                        lambda model, providers=None, threads=None: _FixedTruth(T, cam))
    assert main(["predict", str(img), "--out", str(tmp_path / "p")]) == 0
    doc = json.loads((tmp_path / "p" / "predictions.json").read_text())
    rec = doc["images"][0]
    assert rec["ok"] and np.allclose(rec["T_cam_obj"], T, atol=1e-6)
    assert np.allclose(T_cam_obj_from_model_matrix(np.asarray(rec["model_matrix"])), T, atol=1e-6)
    assert (tmp_path / "p" / "shot.png").stat().st_size > 0
    assert "pose found" in capsys.readouterr().out


def test_predict_bop_out_takes_ids_from_the_file_names(tmp_path, monkeypatch, capsys):
    from xwing.io.bop import load_bop_results

    cam = seed_camera(SIZE, SIZE)
    T = synthetic_flight(1, cam, seed=4, exit_frame=False)[0]
    seed_img, bop_img = tmp_path / "3.png", tmp_path / "test" / "000002" / "rgb" / "000011.png"
    bop_img.parent.mkdir(parents=True)
    for p in (seed_img, bop_img):
        write_image(p, np.full((SIZE, SIZE, 3), 40, np.uint8))
    import xwing.cli.predict

    monkeypatch.setattr(xwing.cli.predict, "load_model",
                        lambda model, providers=None, threads=None: _FixedTruth(T, cam))
    csv_path = tmp_path / "r.csv"
    assert main(["predict", str(seed_img), str(bop_img), "--out", str(tmp_path / "p"), "--bop-out",
                 str(csv_path)]) == 0
    ests = load_bop_results(csv_path)
    assert [(e.scene_id, e.im_id) for e in ests] == [(0, 3), (2, 11)]
    for e in ests:
        np.testing.assert_allclose(e.T_cam_obj, T, atol=1e-6)
        np.testing.assert_allclose(e.t_mm, T[:3, 3] * 1000.0, atol=1e-3)
        assert e.time_s > 0 and e.score > 0
    capsys.readouterr()
    write_image(tmp_path / "shot.png", np.full((SIZE, SIZE, 3), 40, np.uint8))
    assert main(["predict", str(tmp_path / "shot.png"), "--out", str(tmp_path / "q"), "--bop-out",
                 str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "shot.png" in err and "image id" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "q" / "predictions.json").exists()


def test_predict_and_demo_without_a_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "no bundled model yet" in out and "no demo clip yet" in out
    write_image(tmp_path / "a.png", np.zeros((64, 64, 3), np.uint8))
    assert main(["predict", "a.png"]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_track_a_rendered_sequence(tmp_path):
    """A real `xwing render --sequence` clip (skipped where the renderer cannot run)."""
    pytest.importorskip("moderngl")
    rc = main(["render", str(tmp_path / "seq"), "--sequence", "--frames", "40", "--size", "128", "--seed", "3",
               "--no-progress"])
    if rc != 0:
        pytest.skip("the renderer is not available here")
    out = tmp_path / "t"
    assert main(["track", str(tmp_path / "seq"), "--model", "oracle:noise=0.5", "--out", str(out), "--quiet",
                 "--no-video", "--refine", "none"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_images"] == 40 and m["status_counts"]["tracked"] >= 35 and m["lost_rate"] == 0.0
    assert m["rot_err_deg_median"] < 3.0


def test_inference_never_imports_torch_or_moderngl(sequence, tmp_path):
    import subprocess
    import sys

    from xwing.geometry.camera import model_matrix_from_T_cam_obj

    root, cam, poses = sequence
    (tmp_path / "ds").mkdir()
    for i in range(3):
        write_sample(tmp_path / "ds", i, np.zeros((SIZE, SIZE, 3), np.uint8),
                     model_matrix_from_T_cam_obj(poses[i], cam.view_matrix))
    save_camera_info(tmp_path / "ds", cam)
    code = (
        "import sys\n"
        "from xwing.cli import main\n"
        f"assert main(['track', {str(root)!r}, '--model', 'oracle', '--out', {str(tmp_path / 't')!r}, '--quiet',"
        " '--max-frames', '10', '--refine', 'none']) == 0\n"
        f"assert main(['eval', 'oracle', {str(tmp_path / 'ds')!r}, '--out', {str(tmp_path / 'e')!r}]) == 0\n"
        "bad = [m for m in ('torch', 'moderngl') if m in sys.modules]\n"
        "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_run_tracking_api_for_benchmarks(sequence):
    from xwing.eval.tracking import run_tracking

    root, _, poses = sequence
    results, m = run_tracking(root, "oracle:noise=0.5", max_frames=20)
    assert len(results) == 20 and m["n_frames"] == 20 and m["fps_end_to_end"] > 0
    assert {"jitter_deg", "lost_rate", "rot_err_deg_median"} <= set(m)
    _, m_pf = run_tracking(root, "oracle:noise=0.5", per_frame=True, max_frames=20)
    assert m_pf["status_counts"]["detected"] == 20 and m_pf["per_frame"]
