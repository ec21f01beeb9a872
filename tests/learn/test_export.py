"""ONNX export and the ONNX Runtime detector."""

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from xwing.cli.args import load_model  # noqa: E402
from xwing.errors import XwingError  # noqa: E402
from xwing.geometry.camera import seed_camera  # noqa: E402
from xwing.infer.detector import Detection, OnnxDetector, decode_outputs, read_metadata  # noqa: E402
from xwing.learn.checkpoint import save_weights  # noqa: E402
from xwing.learn.config import TrainConfig  # noqa: E402
from xwing.learn.export import export_onnx  # noqa: E402
from xwing.learn.net import build_net  # noqa: E402
from xwing.learn.train import make_parts  # noqa: E402
from xwing.model.points import point_set  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    cfg = TrainConfig(backbone="mobilenetv3_small_050", channels=16, input_size=64, margin=4, points="corners")
    pts, codec, net_cfg = make_parts(cfg)
    torch.manual_seed(0)
    model = build_net(net_cfg).eval()
    with torch.no_grad():  # non-trivial BN statistics, so the check means something
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    save_weights(model, cfg, pts, codec, net_cfg, seed_camera(), d / "weights.pt", images_seen=123)
    meta = export_onnx(d / "weights.pt", d / "m.onnx", verbose=False)
    return d, meta, cfg


def test_export_matches_pytorch_and_carries_metadata(exported):
    d, meta, cfg = exported
    assert meta["max_abs_diff"] < 1e-3
    stored = read_metadata(d / "m.onnx")
    assert stored["input_size"] == 64 and stored["symmetric"] is True
    assert np.allclose(stored["points"]["points_3d"], point_set("corners").points_3d)
    assert stored["codec"]["margin"] == 4 and stored["camera"]["width"] == 256
    assert stored["train"]["images_seen"] == 123
    assert stored["normalisation"]["where"] == "inside the model"


def test_detector_agrees_with_torch_decode_at_several_sizes(exported):
    d, _, cfg = exported
    from xwing.learn.checkpoint import load_checkpoint, model_from_checkpoint

    model, _, pts, codec = model_from_checkpoint(load_checkpoint(d / "weights.pt"))
    det = OnnxDetector(d / "m.onnx")
    assert det.input_size == 64 and det.points_3d.shape == (8, 3)
    assert det.camera.K[0, 0] == pytest.approx(seed_camera().K[0, 0])
    rng = np.random.default_rng(0)
    for size in (64, 96, 128):
        imgs = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
        dets = det.batch(imgs)
        with torch.no_grad():
            h, s = model(torch.from_numpy(imgs).permute(0, 3, 1, 2).float())
        uv, conf, presence, uv_alt, _, flip = decode_outputs(h.numpy(), s.numpy(), codec, pts.points_3d,
                                                             pts.roll180_perm, True)
        for i, one in enumerate(dets):
            assert isinstance(one, Detection)
            assert one.uv.shape == (8, 2) and one.conf.shape == (8,)
            np.testing.assert_allclose(one.uv, uv[i], atol=1e-2)
            np.testing.assert_allclose(one.uv_alt, uv_alt[i], atol=1e-2)
            assert 0 <= one.presence <= 1 and one.presence == pytest.approx(presence[i], abs=1e-3)
    single = det(imgs[0])
    np.testing.assert_allclose(single.uv, dets[0].uv, atol=1e-6)


def test_detector_rejects_bad_files_and_inputs(exported, tmp_path):
    d, _, _ = exported
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx at all")
    with pytest.raises(XwingError, match="junk.onnx"):
        OnnxDetector(junk)
    # a valid ONNX model of something else
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(other))
    with pytest.raises(XwingError, match="not an xwing keypoint model"):
        OnnxDetector(other)
    det = OnnxDetector(d / "m.onnx")
    with pytest.raises(XwingError, match="multiple of 32"):
        det(np.zeros((70, 70, 3), np.uint8))


def test_export_cli_and_corrupt_checkpoint(exported, tmp_path, capsys):
    from xwing.cli import main

    d, _, _ = exported
    assert main(["export", str(d / "weights.pt"), "--out", str(tmp_path / "x.onnx"),
                 "--pt-out", str(tmp_path / "x.pt")]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1])["max_abs_diff"] < 1e-3
    half = torch.load(tmp_path / "x.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in half["model"].values() if v.is_floating_point())
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes((d / "weights.pt").read_bytes()[:1000])
    assert main(["export", str(bad), "--out", str(tmp_path / "y.onnx")]) == 2
    assert "corrupt.pt" in capsys.readouterr().err
    assert not (tmp_path / "y.onnx").exists()


def test_detector_never_imports_torch(exported):
    d, _, _ = exported
    code = ("import sys, numpy as np; from xwing.infer.detector import OnnxDetector; "
            f"det = OnnxDetector({str(d / 'm.onnx')!r}); det(np.zeros((64, 64, 3), np.uint8)); "
            "bad = [m for m in ('torch', 'moderngl', 'timm') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_load_model_accepts_checkpoints(exported):
    d, _, _ = exported
    a = load_model(str(d / "m.onnx"))
    b = load_model(str(d / "weights.pt"))
    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(a(img).uv, b(img).uv, atol=1e-4)
