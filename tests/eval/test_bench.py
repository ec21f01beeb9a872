"""``xwing bench``: parts, bench.json keys, partial reruns, bad input. Tiny and fast; no timing asserts."""

import json

import numpy as np
import pytest

from _gl import require_gl
from xwing.cli import main
from xwing.eval.bench.config import ALIGN_STARTS_PX
from xwing.eval.summary import METRIC_KEYS
from xwing.geometry.camera import seed_camera
from xwing.geometry.perturb import perturb_to_error
from xwing.geometry.pose import make_T, random_rotation
from xwing.geometry.projection import project_points
from xwing.infer.latency import spread
from xwing.model.keypoints import SEED_BOX_CORNERS


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """A tiny exported keypoint model (random weights): stands in for both recipes."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from xwing.learn.checkpoint import save_weights
    from xwing.learn.config import TrainConfig
    from xwing.learn.export import export_onnx
    from xwing.learn.net import build_net
    from xwing.learn.train import make_parts

    d = tmp_path_factory.mktemp("bench_model")
    cfg = TrainConfig(backbone="mobilenetv3_small_050", channels=16, input_size=64, margin=4)
    pts, codec, net_cfg = make_parts(cfg)
    torch.manual_seed(0)
    save_weights(build_net(net_cfg).eval(), cfg, pts, codec, net_cfg, seed_camera(), d / "w.pt", images_seen=32)
    export_onnx(d / "w.pt", d / "tiny.onnx", check=False, verbose=False)
    return d / "tiny.onnx"


def bench(out, *args):
    return main(["bench", "--out", str(out), "--quiet", *args])


def test_perturbation_has_the_asked_corner_error(rng):
    cam = seed_camera()
    for _ in range(5):
        T = make_T(random_rotation(rng), [rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), rng.uniform(0.8, 2.5)])
        uv = project_points(SEED_BOX_CORNERS, T, cam.K)
        for target in ALIGN_STARTS_PX:
            T0, e = perturb_to_error(T, cam.K, SEED_BOX_CORNERS, target, rng)
            got = np.linalg.norm(project_points(SEED_BOX_CORNERS, T0, cam.K) - uv, axis=1).mean()
            assert got == pytest.approx(target, rel=1e-4) and e == pytest.approx(got)


def test_spread_of_known_values():
    s = spread([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (s["median"], s["min"], s["max"], s["n"]) == (3.0, 1.0, 5.0, 5)
    assert s["p25"] == 2.0 and s["p75"] == 4.0
    assert spread([])["median"] is None


def test_model_and_track_parts_write_every_key(tiny_onnx, tmp_path):
    pytest.importorskip("moderngl")
    require_gl()  # the flight is rendered
    out = tmp_path / "b"
    assert bench(out, "--only", "model", "--only", "track", "--model", str(tiny_onnx), "--seed-ckpt", str(tiny_onnx),
                 "--repeats", "2", "--warmup", "0", "--flight-frames", "8", "--track-repeats", "1",
                 "--track-threads", "1", "--track-modes", "cost") == 0
    doc = json.loads((out / "bench.json").read_text())
    for name in ("ours", "seed"):
        for k in ("ms_batch1", "fps_batch16", "fps_end_to_end", *METRIC_KEYS):
            assert k in doc[name], (name, k)
        assert doc[name]["ms_batch1"] > 0 and doc[name]["fps_batch16"] > 0 and doc[name]["fps_end_to_end"] > 0
        assert doc[name]["rot_err_deg_median"] is None  # accuracy not run
    assert doc["speedup_track"] == pytest.approx(doc["ours"]["fps_end_to_end"] / doc["seed"]["fps_end_to_end"])
    assert "rot_err_ratio" in doc and doc["rot_err_ratio"] is None
    assert doc["machine"]["cpu_model"] and min(doc["machine"]["ort_threads_tried"]) >= 1
    assert doc["track"]["seed"]["cost"]["per_frame"] is True and doc["track"]["ours"]["cost"]["per_frame"] is False
    assert doc["track"]["refine"] == {"ours": "full", "seed": "none"}  # ours in xwing track's default mode
    assert doc["track"]["ours"]["cost"]["by_threads"]["1"]["refine"] == "full"
    assert doc["track"]["ours"]["cost"]["by_threads"]["1"]["stage_ms"]["align"] > 0
    assert "`--refine full`" in (out / "bench.md").read_text()
    assert doc["track"]["n_frames"] == 8 and doc["track"]["ours"]["cost"]["status_counts"]["lost"] < 8
    assert set(doc["model"]["ours"]["by_size"]) >= {"64", "256"}
    by_threads = doc["model"]["seed"]["by_threads"]
    assert set(by_threads) == {"1", "0"}  # the default --threads 1,0; the faster is the headline
    assert doc["seed"]["ms_batch1"] == min(v["ms_batch1"] for v in by_threads.values())
    assert doc["seed"]["fps_batch16"] == max(v["fps_batch16"] for v in by_threads.values())
    md = (out / "bench.md").read_text()
    assert "| end-to-end tracking fps (flight) |" in md and "What limits the speed figures" in md
    assert (out / "bench.png").is_file()


def test_align_part_and_partial_rerun_keeps_earlier_parts(tiny_onnx, tmp_path):
    pytest.importorskip("moderngl")
    require_gl()
    out = tmp_path / "b"
    assert bench(out, "--only", "model", "--model", str(tiny_onnx), "--seed-ckpt", str(tiny_onnx),
                 "--repeats", "1", "--warmup", "0") == 0
    ms = json.loads((out / "bench.json").read_text())["ours"]["ms_batch1"]
    assert bench(out, "--only", "align", "--align-samples", "2") == 0
    doc = json.loads((out / "bench.json").read_text())
    assert doc["ours"]["ms_batch1"] == ms and doc["parts_run"] == ["align"]
    al = doc["align"]
    assert al["n_samples"] == 2 and set(al["by_start"]) == {"1", "2", "3", "6", "12", "2 short", "2 tracking"}
    # the short schedule starts from exactly the full schedule's 2 px starts
    assert al["by_start"]["2 short"]["start_err_px_mean"] == al["by_start"]["2"]["start_err_px_mean"]
    for start, v in al["by_start"].items():
        assert v["start_err_px_mean"] == pytest.approx(float(start.split()[0]), rel=1e-3)
        assert {"raster", "unmix", "jacobian", "solve", "total"} <= set(v["stage_ms_median"])
        for k in ("below_05px", "below_1px", "ok_rate", "accepted_above_1px"):
            assert 0.0 <= v[k] <= 1.0
        assert v["final_err_px_median"] >= 0 and v["ms"]["n"] == 2
    assert set(doc["part_runs"]) == {"model", "align"}
    assert doc["part_runs"]["align"]["command"] == f"xwing bench --out {out} --only align --align-samples 2"
    md = (out / "bench.md").read_text()
    assert "Alignment convergence basin" in md and "Network latency" in md and "ms per stage" in md


def test_accuracy_part_evaluates_both_recipes(tiny_onnx, tmp_path):
    from _synthetic import write_box_dataset

    data = tmp_path / "test"
    data.mkdir()
    write_box_dataset(data, 3, size=128, seed=1)
    out = tmp_path / "b"
    assert bench(out, "--only", "accuracy", "--model", "none", "--ours-ckpt", str(tiny_onnx),
                 "--seed-ckpt", str(tiny_onnx), "--testset", str(data), "--threads", "1") == 0
    doc = json.loads((out / "bench.json").read_text())
    for name in ("ours", "seed"):
        acc = doc["accuracy"][name]
        assert acc["n_images"] == 3 and acc["in_image"]["n_images"] + acc["truncated"]["n_images"] == 3
        assert doc[name]["n_images"] == 3 and "in_image" in doc[name]
        assert doc[name]["kp_nmae"] == acc["kp_nmae"]  # the seed's yardstick for both recipes
    assert "seed's NMAE of the 8 corners" in (out / "bench.md").read_text()
    assert doc["accuracy"]["refine_seed"] == "none"
    assert doc["accuracy"]["training"]["ours"]["images_seen"] == 32


def test_accuracy_without_checkpoints_is_skipped_with_a_note(tmp_path):
    out = tmp_path / "b"
    assert bench(out, "--only", "accuracy", "--model", "none") == 0
    doc = json.loads((out / "bench.json").read_text())
    assert "no checkpoints" in doc["accuracy"]["note"] and doc["ours"]["rot_err_deg_median"] is None
    assert any("no checkpoints" in n for n in doc["notes"])


@pytest.mark.parametrize("args, words", [
    (["--only", "accuracy", "--ours-ckpt", "missing.pt"], "not found"),
    (["--only", "align", "--track-threads", "a,b"], "--track-threads"),
    (["--only", "align", "--align-samples", "0"], "--align-samples"),
    (["--only", "track", "--model", "none", "--flight", "."], "not a flight"),
])
def test_bad_input_gives_one_line(tmp_path, capsys, args, words):
    assert bench(tmp_path / "b", *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_output_path_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert bench(f, "--only", "align") == 2
    assert "not a directory" in capsys.readouterr().err
