import json

import numpy as np
import pytest

from xwing.errors import XwingError
from xwing.geometry.camera import (
    T_CV_GL,
    Camera,
    K_from_gl_projection,
    T_cam_obj_from_model_matrix,
    cv_to_gl_pose,
    gl_projection_from_K,
    gl_to_cv_pose,
    model_matrix_from_T_cam_obj,
    seed_camera,
)
from xwing.geometry.pose import make_T, random_rotation
from xwing.geometry.projection import project_points, project_points_seed
from xwing.io.calibration import load_camera, load_camera_info
from xwing.model.keypoints import SEED_BOX_CORNERS


def test_seed_intrinsics(seed_reference):
    cam = load_camera_info(seed_reference / "camera_info.json")
    assert cam.width == cam.height == 256
    np.testing.assert_allclose(cam.K, [[248.889, 0, 127.5], [0, 248.889, 127.5], [0, 0, 1]], atol=1e-3)
    assert cam.near == pytest.approx(0.1, rel=1e-5) and cam.far == pytest.approx(100.0, rel=1e-5)
    np.testing.assert_allclose(cam.K, seed_camera().K, atol=1e-9)


def test_projection_matches_seed_figures_minus_half_pixel(seed_reference):
    cam = load_camera_info(seed_reference / "camera_info.json")
    M = np.array(json.loads((seed_reference / "0_mat.json").read_text()))
    uv = project_points(SEED_BOX_CORNERS, T_cam_obj_from_model_matrix(M, cam.view_matrix), cam.K)
    low = SEED_BOX_CORNERS[:, 2] < 0
    # docs/seed-facts.md: u 90.4..165.6, v 88.7..171.9 at z = -0.032 in the seed's edge convention
    assert uv[low, 0].min() == pytest.approx(89.88, abs=0.01)
    assert uv[low, 0].max() == pytest.approx(165.12, abs=0.01)
    assert uv[low, 1].min() == pytest.approx(88.19, abs=0.01)
    assert uv[low, 1].max() == pytest.approx(171.39, abs=0.01)
    info = json.loads((seed_reference / "camera_info.json").read_text())
    for name in ("0_mat.json", "1_mat.json"):
        M = np.array(json.loads((seed_reference / name).read_text()))
        seed_uv = project_points_seed(SEED_BOX_CORNERS, M, np.array(info["model_view_matrix"]),
                                      np.array(info["projection_matrix"]), 256, 256)
        ours = project_points(SEED_BOX_CORNERS, T_cam_obj_from_model_matrix(M, cam.view_matrix), cam.K)
        np.testing.assert_allclose(ours, seed_uv - 0.5, atol=1e-6)


def test_gl_cv_round_trips(rng):
    for _ in range(20):
        T = make_T(random_rotation(rng), rng.normal(size=3))
        np.testing.assert_allclose(cv_to_gl_pose(gl_to_cv_pose(T)), T, atol=1e-12)
        np.testing.assert_allclose(model_matrix_from_T_cam_obj(T_cam_obj_from_model_matrix(T)), T, atol=1e-12)
    # identity model at the seed camera: ship 1 unit in front of the OpenCV camera
    T = T_cam_obj_from_model_matrix(np.eye(4))
    np.testing.assert_allclose(T[:3, 3], [0, 0, 1])
    np.testing.assert_allclose(T_CV_GL @ T_CV_GL, np.eye(4))


def test_K_projection_round_trip(rng):
    for w, h in ((256, 256), (640, 480), (1920, 1080)):
        K = np.array([[rng.uniform(200, 900), rng.uniform(-1, 1), rng.uniform(0.3, 0.7) * w],
                      [0, rng.uniform(200, 900), rng.uniform(0.3, 0.7) * h], [0, 0, 1]])
        P = gl_projection_from_K(K, w, h, 0.05, 50.0)
        np.testing.assert_allclose(K_from_gl_projection(P, w, h), K, atol=1e-9)
        # and the GL pipeline lands points where K says
        T = make_T(random_rotation(rng), [0.05, -0.02, 1.3])
        M = model_matrix_from_T_cam_obj(T, np.eye(4))
        seed_uv = project_points_seed(SEED_BOX_CORNERS, M, np.eye(4), P, w, h)
        np.testing.assert_allclose(project_points(SEED_BOX_CORNERS, T, K), seed_uv - 0.5, atol=1e-7)


def test_camera_info_round_trip(tmp_path):
    cam = seed_camera()
    (tmp_path / "camera_info.json").write_text(json.dumps(cam.to_camera_info()))
    back = load_camera_info(tmp_path / "camera_info.json")
    np.testing.assert_allclose(back.K, cam.K, atol=1e-9)
    np.testing.assert_allclose(back.view_matrix, cam.view_matrix)
    assert back.near == pytest.approx(cam.near) and back.far == pytest.approx(cam.far)


def test_resize_maps_pixel_centres():
    cam = seed_camera()
    big = cam.resized(512, 512)
    T = make_T(np.eye(3), [0.03, 0.01, 1.0])
    uv, uv2 = project_points(SEED_BOX_CORNERS, T, cam.K), project_points(SEED_BOX_CORNERS, T, big.K)
    np.testing.assert_allclose(uv2, (uv + 0.5) * 2 - 0.5, atol=1e-9)
    wide = cam.for_frame_size(640, 360)
    assert wide.hfov_deg == pytest.approx(cam.hfov_deg)
    np.testing.assert_allclose(wide.K[:2, 2], [319.5, 179.5])


OPENCV_YAML = """%YAML:1.0
---
image_width: 640
image_height: 480
camera_matrix: !!opencv-matrix
   rows: 3
   cols: 3
   dt: d
   data: [ 500., 0., 320., 0., 510., 240., 0., 0., 1. ]
distortion_coefficients: !!opencv-matrix
   rows: 1
   cols: 5
   dt: d
   data: [ -0.2, 0.05, 0.001, -0.002, 0. ]
"""

ROS_YAML = """image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.2, 0.05, 0.001, -0.002, 0.0]
"""


@pytest.mark.parametrize("name,text", [
    ("cv.yaml", OPENCV_YAML),
    ("ros.yaml", ROS_YAML),
    ("cam.json", json.dumps({"K": [[500, 0, 320], [0, 510, 240], [0, 0, 1]], "dist": [-0.2, 0.05, 0.001, -0.002, 0],
                             "width": 640, "height": 480})),
])
def test_calibration_formats(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    cam = load_camera(tmp_path / name)
    np.testing.assert_allclose(cam.K, [[500, 0, 320], [0, 510, 240], [0, 0, 1]])
    np.testing.assert_allclose(cam.dist, [-0.2, 0.05, 0.001, -0.002, 0])
    assert (cam.width, cam.height) == (640, 480)


def test_opencv_xml(tmp_path):
    import cv2

    path = str(tmp_path / "cam.xml")
    fs = cv2.FileStorage(path, cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 800)
    fs.write("image_height", 600)
    fs.write("camera_matrix", np.array([[700, 0, 400], [0, 700, 300], [0, 0, 1]], dtype=np.float64))
    fs.write("distortion_coefficients", np.zeros((1, 5)))
    fs.release()
    cam = load_camera(path)
    assert cam.K[0, 0] == 700 and cam.width == 800 and not cam.has_distortion


def test_distortion_round_trip(rng):
    cam = Camera(np.array([[500, 0, 320], [0, 510, 240], [0, 0, 1.0]]), 640, 480, [-0.2, 0.05, 0.001, -0.002, 0])
    uv = rng.uniform([20, 20], [620, 460], size=(50, 2))
    np.testing.assert_allclose(cam.undistort_points(cam.distort_points(uv)), uv, atol=1e-6)
    T = make_T(np.eye(3), [0.1, 0.05, 1.0])
    distorted = project_points(SEED_BOX_CORNERS, T, cam.K, cam.dist)
    np.testing.assert_allclose(cam.undistort_points(distorted), project_points(SEED_BOX_CORNERS, T, cam.K),
                               atol=1e-6)


@pytest.mark.parametrize("content,msg", [
    ("{}", "missing 'model_view_matrix'"),
    ('{"model_view_matrix": [[1,0,0,0]], "projection_matrix": [[1]]}', "must be 4x4"),
    ("not json", "not valid JSON"),
])
def test_bad_camera_info(tmp_path, content, msg):
    (tmp_path / "camera_info.json").write_text(content)
    with pytest.raises(XwingError, match=msg) as e:
        load_camera_info(tmp_path / "camera_info.json")
    assert "camera_info.json" in str(e.value) and "\n" not in str(e.value)


def test_bad_calibration_files(tmp_path):
    with pytest.raises(XwingError, match="not found"):
        load_camera(tmp_path / "missing.yaml")
    (tmp_path / "x.yaml").write_text("foo: [1, 2\n")
    with pytest.raises(XwingError, match="x.yaml"):
        load_camera(tmp_path / "x.yaml")
    (tmp_path / "k.json").write_text(json.dumps({"K": [[1, 0], [0, 1]], "width": 2, "height": 2}))
    with pytest.raises(XwingError, match="3x3"):
        load_camera(tmp_path / "k.json")
    (tmp_path / "ok.json").write_text(json.dumps({"K": np.eye(3).tolist(), "width": 640, "height": 480}))
    with pytest.raises(XwingError, match="640 x 480"):
        load_camera(tmp_path / "ok.json", 320, 240)
