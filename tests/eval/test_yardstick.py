"""The keypoint yardstick: crops and their truth agree with the renderer's crop camera, and the
errors mean what the module says (true labelling, roll-free, image pixels)."""

import numpy as np
import pytest

from xwing.eval.yardstick import crop_of, measure, validation_crops
from xwing.geometry.projection import project_points
from xwing.infer.codec import HeatmapCodec
from xwing.infer.detector import Detection
from xwing.model.points import point_set


class _ScriptedDetector:
    """Returns each crop's true points moved by ``offset_px``, in the roll-relabelled order for the
    crops listed in ``relabel``."""

    def __init__(self, truths, offset_px, relabel, pts):
        self.points_3d, self.roll180_perm = pts.points_3d, np.asarray(pts.roll180_perm)
        self.codec, self.input_size = HeatmapCodec(), 128
        self.truths, self.offset, self.relabel, self.calls = truths, offset_px, set(relabel), 0

    def __call__(self, image):
        uv = self.truths[self.calls] + np.array([self.offset, 0.0])
        alt = uv[self.roll180_perm]
        if self.calls in self.relabel:
            uv, alt = alt, uv
        self.calls += 1
        return Detection(uv, np.ones(len(uv)), 1.0, 0.0, alt, np.ones(len(uv)))


@pytest.fixture(scope="module")
def crops():
    return validation_crops(6, 17, 128, {"crop_fill": [0.3, 0.5]})


def test_validation_crops_truth_matches_the_crop_camera(crops):
    pts = point_set("surface16")
    assert len(crops) == 6
    for inp, crop, K_full, T, size in crops:
        c = crop_of(inp, crop, K_full, T, pts.points_3d, size)
        assert c.image.shape == (128, 128, 3)
        # the crop map applied to the full frame's projection = projection with the crop's own camera
        np.testing.assert_allclose(c.uv_gt, project_points(pts.points_3d, T, crop.crop_K(K_full)), atol=1e-6)
        assert 0.3 - 1e-6 <= c.fill <= 0.5 + 1e-6  # the generator's crop_fill is the box's share
        assert c.off_centre <= 0.1 * np.sqrt(2) + 1e-6  # its jitter: 0.1 of the box per axis


def test_errors_true_labelling_rollfree_and_image_pixels(crops):
    pts = point_set("surface16")
    truths = [crop_of(*c[:3], c[3], pts.points_3d, c[4]).uv_gt for c in crops]
    det = _ScriptedDetector(truths, 1.5, relabel=[0, 1], pts=pts)
    r = measure(det, crops)
    assert r["n_crops"] == 6
    assert r["kp_err_crop_px_rollfree"] == pytest.approx(1.5)
    # two crops of six came out relabelled: their points are far off under the true labelling,
    # so the pooled median stays at the offset but the share says so
    assert r["relabelled_share"] == pytest.approx(2 / 6)
    assert r["kp_err_crop_px"] >= 1.5
    zooms = np.array([c[1].scale for c in crops])
    assert r["kp_err_image_px_rollfree"] == pytest.approx(float(np.median(np.repeat(1.5 / zooms, 16))), rel=1e-6)
    assert sum(v["n_crops"] for v in r["by_fill"].values()) == 6


def test_cli_writes_both_sets_in_json_and_markdown(tmp_path):
    import json

    from xwing.cli import main

    assert main(["render", str(tmp_path / "ds"), "--count", "4", "--seed", "3", "--workers", "1"]) == 0
    out = tmp_path / "out"
    assert main(["yardstick", "models/xwing.onnx", str(tmp_path / "ds"), "--out", str(out), "--limit", "4",
                 "--val-size", "3", "--threads", "1"]) == 0
    r = json.loads((out / "yardstick.json").read_text())
    assert r["validation"]["n_crops"] == 3 and r["validation_seed"] == 1_000_003
    assert r["render_options"] == {"crop_fill": [0.12, 0.7]}  # the shipped model's training crops
    assert 0 < r["zoom"]["n_crops"] + r["images_without_zoom"] <= 4
    assert "| validation | all | 3 |" in (out / "yardstick.md").read_text()


def test_cli_bad_render_options_is_one_line_error(tmp_path, capsys):
    from xwing.cli import main

    assert main(["render", str(tmp_path / "ds"), "--count", "1", "--seed", "3", "--workers", "1"]) == 0
    assert main(["yardstick", "models/xwing.onnx", str(tmp_path / "ds"), "--out", str(tmp_path / "o"),
                 "--render-options", "{bad"]) == 2
    assert "--render-options is not valid JSON" in capsys.readouterr().err
