import json
import shutil

import numpy as np
import pytest

from xwing.errors import XwingError
from xwing.geometry.camera import Camera, model_matrix_from_T_cam_obj, seed_camera
from xwing.geometry.pose import make_T, random_rotation
from xwing.geometry.projection import project_points
from xwing.io.dataset import SeedDataset, sample_complete, save_camera_info, write_sample
from xwing.model.keypoints import SEED_BOX_CORNERS


def make_dataset(root, rng, n=5, camera: Camera | None = None):
    cam = camera or seed_camera()
    root.mkdir(parents=True, exist_ok=True)
    save_camera_info(root, cam)
    poses = []
    for i in range(n):
        T = make_T(random_rotation(rng), [rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2), rng.uniform(0.8, 2)])
        img = rng.integers(0, 255, (cam.height, cam.width, 3), dtype=np.uint8)
        write_sample(root, i, img, model_matrix_from_T_cam_obj(T, cam.view_matrix))
        poses.append(T)
    return cam, poses


def test_write_read_round_trip(tmp_path, rng):
    cam, poses = make_dataset(tmp_path / "ds", rng)
    (tmp_path / "ds" / "manifest.json").write_text("{}")  # extra files are ignored
    ds = SeedDataset(tmp_path / "ds")
    assert len(ds) == 5 and ds.camera.width == 256
    np.testing.assert_allclose(ds.camera.K, cam.K, atol=1e-6)
    for i, s in enumerate(ds):
        np.testing.assert_allclose(s.T_cam_obj, poses[i], atol=1e-12)
        np.testing.assert_allclose(s.keypoints, project_points(SEED_BOX_CORNERS, poses[i], cam.K), atol=1e-6)
        assert s.image.shape == (256, 256, 3) and s.in_image.shape == (8,)
        assert sample_complete(tmp_path / "ds", i)
    # seed layout, exactly: row-major 4x4 JSON lists
    M = json.loads((tmp_path / "ds" / "0_mat.json").read_text())
    assert len(M) == 4 and all(len(r) == 4 for r in M)
    assert set(json.loads((tmp_path / "ds" / "camera_info.json").read_text())) == {
        "camera_world_matrix", "model_view_matrix", "projection_matrix"}


def test_reads_the_seed_reference(seed_reference):
    ds = SeedDataset(seed_reference)
    assert len(ds) == 2
    s0 = ds[0]
    assert s0.in_image.all()
    assert 89.8 < s0.keypoints[:4, 0].min() < 89.9  # the z = -0.032 face
    # samples ordered numerically, not as strings
    assert ds.indices == [0, 1]


def test_numeric_order(tmp_path, rng):
    make_dataset(tmp_path / "ds", rng, n=12)
    assert SeedDataset(tmp_path / "ds").indices == list(range(12))


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("corrupt,msg", [
    (lambda d: (d / "1_mat.json").unlink(), "1_mat.json: file not found"),
    (lambda d: (d / "1_mat.json").write_text("[[1, 0], [0, 1]]"), "expected a 4x4 matrix"),
    (lambda d: (d / "1_mat.json").write_text("[[1,0,0,0],[0,1,0,0],[0,0,1,NaN],[0,0,0,1]]"), "non-finite"),
    (lambda d: (d / "1_mat.json").write_text("[[2,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]"), "not a rigid"),
    (lambda d: (d / "1_mat.json").write_text("{oops"), "not valid JSON"),
    (lambda d: (d / "1.jpg").write_bytes(b"not a jpeg"), "1.jpg: unreadable image"),
])
def test_bad_samples(tmp_path, seed_reference, corrupt, msg):
    d = _copy(seed_reference, tmp_path / "ds")
    corrupt(d)
    with pytest.raises(XwingError, match=msg) as e:
        ds = SeedDataset(d)
        [ds[i] for i in range(len(ds))]
    assert "\n" not in str(e.value)


def test_bad_directories(tmp_path, seed_reference):
    with pytest.raises(XwingError, match="not found"):
        SeedDataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(XwingError, match="no images"):
        SeedDataset(tmp_path / "empty")
    d = _copy(seed_reference, tmp_path / "ds")
    (d / "camera_info.json").unlink()
    with pytest.raises(XwingError, match="missing camera_info.json"):
        SeedDataset(d)


def test_atomic_write_leaves_no_temp_files(tmp_path, rng):
    import os
    import stat

    make_dataset(tmp_path / "ds", rng, n=2)
    assert not [p for p in (tmp_path / "ds").iterdir() if p.name.startswith(".")]
    mode = stat.S_IMODE(os.stat(tmp_path / "ds" / "0_mat.json").st_mode)
    assert mode & 0o044 == 0o044 & ~_umask_now()  # readable by others, like any file


def _umask_now() -> int:
    import os

    m = os.umask(0)
    os.umask(m)
    return m
