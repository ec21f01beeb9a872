"""The inference commands on the shipped ONNX model with torch and moderngl made unimportable.

`xwing predict` and `xwing track` (and so `make demo`) must run on the light install:
numpy, OpenCV, onnxruntime, imageio. A meta-path hook refuses torch, torchvision, timm and
moderngl and records every attempt, so even a guarded ``try: import torch`` is caught.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _flights import synthetic_flight, write_oracle_sequence
from xwing.geometry.camera import seed_camera
from xwing.io.images import write_image

MODEL = Path(__file__).resolve().parents[2] / "models" / "xwing.onnx"

BLOCKER = """
import sys
BLOCKED = ("torch", "torchvision", "timm", "moderngl")
tried = []
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            tried.append(name)
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, Refuse())
from xwing.cli import main
rc = main(sys.argv[1:])
loaded = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
assert not tried and not loaded, (tried, loaded)
sys.exit(rc)
"""


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER, *argv], capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not MODEL.is_file(), reason="the shipped model is not in this checkout")
def test_predict_and_track_on_onnx_without_torch_or_moderngl(tmp_path):
    cam = seed_camera(128, 128)
    poses = synthetic_flight(8, cam, seed=5, exit_frame=False)
    write_oracle_sequence(tmp_path / "seq", poses, cam)
    write_image(tmp_path / "shot.png", np.full((128, 128, 3), 30, np.uint8))

    r = _run("predict", str(tmp_path / "shot.png"), "--model", str(MODEL), "--out", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "p" / "predictions.json").is_file()

    r = _run("track", str(tmp_path / "seq"), "--model", str(MODEL), "--out", str(tmp_path / "t"), "--quiet",
             "--max-frames", "6")
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("poses.json", "metrics.json", "overlay.mp4", "pewpew.gif"):
        assert (tmp_path / "t" / name).stat().st_size > 0, name
