"""xwing eval: metric definitions, subsets, outputs; the oracle stands in for a network."""

import json
import math

import numpy as np
import pytest

from xwing.cli import main
from xwing.eval.evaluate import evaluate
from xwing.eval.records import make_record
from xwing.eval.summary import METRIC_KEYS, summarize
from xwing.eval.tracking import jitter_deg, lost_rate
from xwing.geometry.camera import model_matrix_from_T_cam_obj, seed_camera
from xwing.geometry.pose import make_T, rotvec_to_R
from xwing.infer.estimator import PipelineConfig, PoseEstimator
from xwing.infer.oracle import OracleDetector
from xwing.io.atomic import json_safe
from xwing.io.dataset import SeedDataset, save_camera_info, write_sample


def make_dataset(root, n=12, size=128, seed=0):
    """n blank images with poses (a third of them truncated by the frame edge)."""
    cam = seed_camera(size, size)
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    image = np.full((size, size, 3), 30, np.uint8)
    for i in range(n):
        z = rng.uniform(1.2, 2.2)
        x = 0.95 * z * (size / 2) / cam.K[0, 0] if i % 3 == 0 else rng.uniform(-0.1, 0.1)  # at the right edge
        T = make_T(rotvec_to_R(rng.normal(size=3)), [x, rng.uniform(-0.1, 0.1), z])
        write_sample(root, i, image, model_matrix_from_T_cam_obj(T, cam.view_matrix))
    save_camera_info(root, cam)
    return cam


def test_perfect_predictions_give_zero_errors_and_rates_of_one(tmp_path):
    make_dataset(tmp_path / "ds")
    ds = SeedDataset(tmp_path / "ds")
    est = PoseEstimator(OracleDetector(input_size=128), ds.camera, PipelineConfig(refine="zoom"))
    m, records = evaluate(est, ds)
    assert m["n_images"] == 12
    assert m["in_image"]["n_images"] + m["truncated"]["n_images"] == 12
    assert m["truncated"]["n_images"] >= 3
    assert 0 < m["truncated_in_view"]["n_images"] <= min(m["truncated"]["n_images"], m["in_view"]["n_images"])
    for sub in (m, m["in_image"], m["truncated"], m["truncated_in_view"]):
        assert set(METRIC_KEYS) <= set(sub)
        assert sub["kp_err_px_median"] < 1e-6 and sub["kp_err_px_mean"] < 1e-6 and sub["kp_nmae"] < 1e-8
        assert sub["rot_err_deg_median"] < 1e-4 and sub["trans_err_rel_median"] < 1e-6
        assert sub["kp_net_err_px_median"] < 1e-6
        for rate in ("success_rate", "pck_1px", "pck_2px", "pck_5px", "add_01d", "adi_01d", "proj_5px"):
            assert sub[rate] == 1.0
        assert sub["flip_rate"] == 0.0 and sub["speed_score_mean"] < 1e-6 and sub["correct_share"] == 1.0
        assert sub["ms_per_image"] > 0
    assert m["refine"] == "zoom"
    assert m["stages"]["first"]["kp_err_px_median"] < 1e-6 and "zoom" in m["stages"]


def test_a_missing_pose_counts_as_infinite_error_and_failure():
    cam = seed_camera()
    T = make_T(np.eye(3), [0, 0, 2.0])
    recs = [make_record(T, T, cam), make_record(None, T, cam)]
    m = summarize(recs, cam)
    assert m["success_rate"] == 0.5 and m["pck_5px"] == 0.5 and m["add_01d"] == 0.5
    assert m["kp_err_px_mean"] == math.inf and m["flip_rate"] == 0.5 and m["speed_score_mean"] == math.inf
    assert m["correct_share"] == 0.5
    assert json_safe(m)["kp_err_px_mean"] is None  # JSON has no inf
    json.dumps(json_safe(m), allow_nan=False)


def test_flip_and_known_errors():
    cam = seed_camera()
    T = make_T(np.eye(3), [0, 0, 2.0])
    roll = make_T(np.diag([-1.0, 1.0, -1.0]), [0, 0, 0])
    m = summarize([make_record(T @ roll, T, cam)], cam)
    assert m["correct_share"] == 0.0
    assert m["flip_rate"] == 1.0 and m["rot_err_deg_median"] == pytest.approx(180.0)
    assert m["add_01d"] == 0.0 and m["adi_01d"] == 1.0  # the roll is (almost) a symmetry: ADI forgives it
    shifted = make_T(np.eye(3), [0.02, 0, 2.0])
    m = summarize([make_record(shifted, T, cam)], cam)
    assert m["correct_share"] == 0.0  # ~8 px of corner error, though the rotation is exact
    assert m["trans_err_rel_median"] == pytest.approx(0.01)
    expected = 0.02 / 2.0 * cam.K[0, 0]  # a lateral shift moves every corner ~ f dx / z
    assert m["kp_err_px_median"] == pytest.approx(expected, rel=0.05)


def test_jitter_and_lost_rate_definitions():
    cam = seed_camera()
    gt = [make_T(rotvec_to_R([0, 0, 0.01 * i]), [0, 0, 2.0]) for i in range(10)]
    offset = make_T(rotvec_to_R([0.1, 0, 0]), [0, 0, 0])
    assert jitter_deg([T @ offset for T in gt], gt) == pytest.approx(0.0, abs=1e-6)  # constant error: no jitter
    wobble = [make_T(rotvec_to_R([0.01 * (-1) ** i, 0, 0]), [0, 0, 0]) @ T for i, T in enumerate(gt)]
    assert jitter_deg(wobble, gt) == pytest.approx(np.degrees(0.02), rel=1e-3)
    assert math.isnan(jitter_deg([None] * 10, gt))
    far_out = make_T(np.eye(3), [5.0, 0, 2.0])
    statuses = ["tracked", "lost", "lost", "tracked"]
    assert lost_rate(statuses, [gt[0], gt[1], far_out, None], cam) == pytest.approx(0.5)


def test_eval_cli_writes_metrics_report_and_plots(tmp_path, capsys):
    make_dataset(tmp_path / "ds", n=6)
    out = tmp_path / "ev"
    rc = main(["eval", "oracle:noise=0.5,seed=1", str(tmp_path / "ds"), "--out", str(out), "--refine", "zoom"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(METRIC_KEYS) <= set(m) and set(METRIC_KEYS) <= set(m["in_image"]) and m["refine"] == "zoom"
    assert m["star_field"]["n_images"] + m["cluttered"]["n_images"] == 6  # every image lands in one of the two
    assert m["in_view"]["n_images"] == 6 and "in_view" in (out / "report.md").read_text()
    assert {"small_ships", "star_field", "cluttered"} <= set(m["stages"]["zoom"])
    assert 0 < m["kp_err_px_median"] < 2.0
    report = (out / "report.md").read_text()
    assert "| kp_err_px_median |" in report and "Per stage" in report
    assert (out / "plots.png").stat().st_size > 1000
    assert "rotation error median" in capsys.readouterr().out


def test_eval_cli_errors(tmp_path, capsys):
    make_dataset(tmp_path / "ds", n=2)
    assert main(["eval", str(tmp_path / "none.onnx"), str(tmp_path / "ds"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["eval", "oracle", str(tmp_path / "nodata"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    bad_mesh = tmp_path / "ship.obj"
    bad_mesh.write_text("v 0 0 0\n")  # no faces
    assert main(["eval", "oracle", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "--mesh", str(bad_mesh)]) == 2
    err = capsys.readouterr().err.strip()
    assert "ship.obj" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_stage_stats_keep_the_earlier_pose_where_a_stage_was_skipped():
    from xwing.eval.summary import stage_stats

    cam = seed_camera()
    T = make_T(np.eye(3), [0, 0, 2.0])
    a, b = make_record(T, T, cam), make_record(T, T, cam)
    a.stages = {"first": np.full(8, 2.0), "locate": np.full(8, 0.4)}
    b.stages = {"first": np.full(8, 0.8)}  # small frame: no locate pass
    a.stage_ms = {"first": 1.0, "locate": 2.0}
    b.stage_ms = {"first": 3.0}
    s = stage_stats([a, b])
    assert list(s) == ["first", "locate"]
    assert s["first"]["below_1px"] == 0.5 and s["first"]["ms_per_image"] == 2.0
    assert s["locate"]["below_1px"] == 1.0 and s["locate"]["below_05px"] == 0.5 and s["locate"]["n_run"] == 1


def test_background_clutter_tells_a_flat_star_field_from_a_busy_background():
    from xwing.eval.records import ImageRecord
    from xwing.eval.summary import CLUTTER_THRESHOLD, background_clutter, background_subsets

    cam = seed_camera()
    T = make_T(rotvec_to_R(np.array([0.4, -0.3, 0.2])), np.array([0.0, 0.0, 1.2]))
    rng = np.random.default_rng(5)
    flat = np.full((cam.height, cam.width, 3), 8, np.uint8)
    flat[rng.integers(0, cam.height, 40), rng.integers(0, cam.width, 40)] = 255  # a few stars
    import cv2

    busy = cv2.GaussianBlur(rng.integers(0, 255, (cam.height, cam.width, 3)).astype(np.uint8), (0, 0), 1.5)
    c_flat, c_busy = background_clutter(flat, T, cam), background_clutter(busy, T, cam)
    assert c_flat < CLUTTER_THRESHOLD <= c_busy
    T_away = make_T(np.eye(3), np.array([5.0, 0.0, 1.0]))  # ship out of view: not measured
    assert math.isnan(background_clutter(flat, T_away, cam))
    recs = [ImageRecord(T, T, np.zeros((8, 2)), np.zeros((8, 2)), True, clutter=c) for c in (c_flat, c_busy, math.nan)]
    split = background_subsets(recs)
    assert [r.clutter for r in split["star_field"]] == [c_flat]
    assert [r.clutter for r in split["cluttered"]] == [c_busy]


def test_seed_nmae_by_hand_leaves_images_without_a_pose_out():
    from xwing.eval.records import ImageRecord

    cam = seed_camera(256, 128)
    T = make_T(np.eye(3), [0, 0, 2.0])
    gt = np.random.default_rng(3).uniform(0, 100, (3, 8, 2))
    a = gt[0].copy()
    a[:4, 0] += [1.0, 2.0, 3.0, 4.0]  # sum |dx| = 10 px / 256
    b = gt[1].copy()
    b[:, 1] -= 0.5  # sum |dy| = 8 * 0.5 px / 128
    recs = [ImageRecord(T, T, gt[0], a, True), ImageRecord(T, T, gt[1], b, True),
            ImageRecord(T, None, gt[2], np.full((8, 2), np.nan), True)]
    m = summarize(recs, cam)
    # (10 / 256 + 4 / 128) / (2 images x 8 corners x 2 coordinates) = 0.0703125 / 32
    assert m["kp_nmae"] == pytest.approx(0.002197265625, rel=1e-12)
    assert m["success_rate"] == pytest.approx(2 / 3)
    assert m["kp_err_px_mean"] == math.inf  # the pixel figures still count the failure
    assert math.isnan(summarize([recs[2]], cam)["kp_nmae"])  # no pose anywhere: nothing to average


def test_eval_bop_out_read_back_gives_the_errors_of_metrics_json(tmp_path, capsys):
    """The BOP CSV of `xwing eval --bop-out`, read back and scored against the BOP copy of the
    dataset's truth (scene_gt.json, cam_K), gives metrics.json's figures."""
    from xwing.geometry.metrics import keypoint_nmae, rotation_error_deg
    from xwing.geometry.projection import project_points
    from xwing.io import bop
    from xwing.model.keypoints import SEED_BOX_CORNERS
    from xwing.model.mesh import xwing_mesh

    cam = make_dataset(tmp_path / "ds", n=8)
    away = make_T(np.eye(3), [5.0, 0.0, 2.0])  # wholly out of view: no pose, so no line in the CSV
    write_sample(tmp_path / "ds", 8, np.full((128, 128, 3), 30, np.uint8), model_matrix_from_T_cam_obj(away))
    out, csv_path = tmp_path / "ev", tmp_path / "bop" / "xwing_synth-test.csv"
    assert main(["eval", "oracle:noise=1.5,outliers=0.2,seed=3", str(tmp_path / "ds"), "--out", str(out),
                 "--refine", "none", "--bop-out", str(csv_path)]) == 0
    assert f"wrote {csv_path}" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    ests = bop.load_bop_results(csv_path)
    assert m["n_images"] == 9 and len(ests) == round(m["success_rate"] * 9) and 0 < len(ests) < 9
    assert 8 not in {e.im_id for e in ests}
    ds = SeedDataset(tmp_path / "ds", load_images=False)
    assert {e.im_id for e in ests} <= set(ds.indices) and all(e.scene_id == 0 and e.obj_id == 1 for e in ests)
    assert all(0 < e.time_s < 10 and 0 <= e.score <= 1 for e in ests)

    bop.save_bop_dataset(tmp_path / "ds", tmp_path / "bop", xwing_mesh(), split="test")
    scene = tmp_path / "bop" / "test" / "000000"
    gt, cams = bop.load_scene_gt(scene / "scene_gt.json"), bop.load_scene_camera(scene / "scene_camera.json")
    by_im = {e.im_id: e for e in ests}
    rot, kp, est_uv, gt_uv = [], [], [], []
    for im_id in ds.indices:
        T_gt, K = bop.T_cam_obj_of_gt(gt[im_id][0]), cams[im_id]["cam_K"]
        uv_gt = project_points(SEED_BOX_CORNERS, T_gt, K)
        if im_id not in by_im:  # no pose: an infinite error, as metrics.json counts it
            rot.append(math.inf), kp.extend([math.inf] * 8)
            continue
        T_est = by_im[im_id].T_cam_obj
        uv_est = project_points(SEED_BOX_CORNERS, T_est, K)
        rot.append(rotation_error_deg(T_est[:3, :3], T_gt[:3, :3]))
        kp.extend(np.linalg.norm(uv_est - uv_gt, axis=1))
        est_uv.append(uv_est), gt_uv.append(uv_gt)
    assert np.median(rot) == pytest.approx(m["rot_err_deg_median"], rel=1e-9)
    assert np.median(kp) == pytest.approx(m["kp_err_px_median"], rel=1e-9)
    nmae = keypoint_nmae(np.stack(est_uv), np.stack(gt_uv), cam.width, cam.height)
    assert m["kp_nmae"] > 0 and nmae == pytest.approx(m["kp_nmae"], rel=1e-9)


def test_eval_bop_out_that_is_a_directory_fails_before_the_work(tmp_path, capsys):
    make_dataset(tmp_path / "ds", n=2)
    (tmp_path / "r").mkdir()
    assert main(["eval", "oracle", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "--bop-out",
                 str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a directory" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "metrics.json").exists()
