"""BOP files: hand-written samples in the format's documented form parse to their values;
round trips; our output read by a parser written from the documentation alone; conventions
(mm, row-major, K with pixel centres at integers); a seed dataset written in BOP's layout."""

import json

import numpy as np
import pytest

from xwing.errors import XwingError
from xwing.geometry.camera import model_matrix_from_T_cam_obj, seed_camera
from xwing.geometry.pose import make_T, random_rotation, rotvec_to_R
from xwing.geometry.projection import project_points
from xwing.io import bop
from xwing.io.dataset import SeedDataset, save_camera_info, write_sample
from xwing.model.keypoints import SEED_BOX, SEED_BOX_CORNERS, model_diameter
from xwing.model.mesh import xwing_mesh
from xwing.model.symmetry import T_ROLL180

# --- samples written by hand, as bop_toolkit's docs show the formats ------------------------------

# The results format of the BOP challenge (docs/bop_challenge_2019.md): one estimate per line;
# values from the documentation's example estimates of an image (scene 1, image 0, object 25).
RESULTS_CSV = """scene_id,im_id,obj_id,score,R,t,time
1,0,25,2.591,0.164305 -0.116608 -0.979493 -0.881643 0.427981 -0.198842 0.442391 0.896233 -0.0324873,-45.7994 75.008 801.078,1.6553
1,0,25,3.495,-0.321302 0.937843 -0.131205 -0.926472 -0.282636 0.248529 0.195999 0.201411 0.959697,-77.2591 -23.8807 770.016,1.6553
3,17,2,0.5,1 0 0 0 1 0 0 0 1,0 0 1000,-1
"""  # noqa: E501 (the lines as the format has them)

# docs/bop_datasets_format.md: per image id (a string key) cam_K row-wise, depth_scale, and
# optionally cam_R_w2c / cam_t_w2c (mm); the intrinsics are LINEMOD's.
SCENE_CAMERA_JSON = """{
  "0": {"cam_K": [572.4114, 0.0, 325.2611, 0.0, 573.57043, 242.04899, 0.0, 0.0, 1.0], "depth_scale": 1.0},
  "5": {"cam_K": [572.4114, 0.0, 325.2611, 0.0, 573.57043, 242.04899, 0.0, 0.0, 1.0], "depth_scale": 0.1,
        "cam_R_w2c": [1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0], "cam_t_w2c": [0.0, 0.0, 1000.0]}
}"""

# docs/bop_datasets_format.md: per image id a list of {cam_R_m2c row-wise, cam_t_m2c in mm, obj_id}.
SCENE_GT_JSON = """{
  "0": [{"cam_R_m2c": [0.164305, -0.116608, -0.979493, -0.881643, 0.427981, -0.198842, 0.442391, 0.896233,
                       -0.0324873], "cam_t_m2c": [-45.7994, 75.008, 801.078], "obj_id": 1}],
  "12": [{"cam_R_m2c": [1, 0, 0, 0, 1, 0, 0, 0, 1], "cam_t_m2c": [10.0, -20.0, 1500.0], "obj_id": 1},
         {"cam_R_m2c": [1, 0, 0, 0, 1, 0, 0, 0, 1], "cam_t_m2c": [0.0, 0.0, 900.0], "obj_id": 4}]
}"""

# models_info.json: diameter and box in mm; a discrete symmetry as a 4x4 row-major matrix
# (here a half turn about z, translation in mm).
MODELS_INFO_JSON = """{
  "1": {"diameter": 102.099, "min_x": -37.9343, "min_y": -38.7996, "min_z": -45.8845,
        "size_x": 75.8686, "size_y": 77.5992, "size_z": 91.769},
  "2": {"diameter": 247.506, "min_x": -107.835, "min_y": -60.9279, "min_z": -109.705,
        "size_x": 215.671, "size_y": 121.857, "size_z": 219.41,
        "symmetries_discrete": [[-1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1, 2.5, 0, 0, 0, 1]]}
}"""

# An ASCII PLY as the PLY format defines it: vertices with normals and colour, a triangle and a quad.
PLY_TEXT = """ply
format ascii 1.0
comment a unit square and a triangle above it, in mm
element vertex 5
property float x
property float y
property float z
property float nx
property float ny
property float nz
property uchar red
property uchar green
property uchar blue
element face 2
property list uchar int vertex_indices
end_header
0 0 0 0 0 1 255 0 0
10 0 0 0 0 1 0 255 0
10 10 0 0 0 1 0 0 255
0 10 0 0 0 1 255 255 255
5 5 8 0 0 1 0 0 0
4 0 1 2 3
3 0 1 4
"""


def test_the_documented_results_sample_parses_to_its_values(tmp_path):
    p = tmp_path / "method_lmo-test.csv"
    p.write_text(RESULTS_CSV)
    est = bop.load_bop_results(p)
    assert len(est) == 3
    e = est[0]
    assert (e.scene_id, e.im_id, e.obj_id, e.score, e.time_s) == (1, 0, 25, 2.591, 1.6553)
    # row-major: r13 is the third value, r21 the fourth
    assert e.R[0, 2] == -0.979493 and e.R[1, 0] == -0.881643 and e.R[2, 2] == -0.0324873
    np.testing.assert_array_equal(e.t_mm, [-45.7994, 75.008, 801.078])
    np.testing.assert_allclose(e.T_cam_obj[:3, 3], [-0.0457994, 0.075008, 0.801078], rtol=1e-15)  # mm -> m
    assert est[1].score == 3.495 and est[1].R[0, 1] == 0.937843
    assert est[2].time_s == -1 and est[2].obj_id == 2 and est[2].T_cam_obj[2, 3] == 1.0
    # bop_toolkit reads a file without the header too
    q = tmp_path / "no_header.csv"
    q.write_text("".join(RESULTS_CSV.splitlines(keepends=True)[1:]))
    assert [x.score for x in bop.load_bop_results(q)] == [2.591, 3.495, 0.5]


def test_the_documented_dataset_samples_parse_to_their_values(tmp_path):
    (tmp_path / "scene_camera.json").write_text(SCENE_CAMERA_JSON)
    cams = bop.load_scene_camera(tmp_path / "scene_camera.json")
    assert sorted(cams) == [0, 5]
    K = cams[0]["cam_K"]
    assert (K[0, 0], K[0, 2], K[1, 1], K[1, 2], K[2, 2]) == (572.4114, 325.2611, 573.57043, 242.04899, 1.0)
    assert "cam_R_w2c" not in cams[0] and cams[5]["depth_scale"] == 0.1
    np.testing.assert_array_equal(cams[5]["cam_R_w2c"], np.diag([1.0, -1.0, -1.0]))
    np.testing.assert_array_equal(cams[5]["cam_t_w2c"], [0, 0, 1000.0])

    (tmp_path / "scene_gt.json").write_text(SCENE_GT_JSON)
    gt = bop.load_scene_gt(tmp_path / "scene_gt.json")
    assert sorted(gt) == [0, 12] and [g["obj_id"] for g in gt[12]] == [1, 4]
    assert gt[0][0]["cam_R_m2c"][1, 0] == -0.881643
    np.testing.assert_array_equal(gt[12][0]["cam_t_m2c"], [10.0, -20.0, 1500.0])
    np.testing.assert_allclose(bop.T_cam_obj_of_gt(gt[12][0]), make_T(np.eye(3), [0.01, -0.02, 1.5]), rtol=1e-15)

    (tmp_path / "models_info.json").write_text(MODELS_INFO_JSON)
    info = bop.load_models_info(tmp_path / "models_info.json")
    assert info[1]["diameter"] == 102.099 and info[1]["min_y"] == -38.7996 and info[1]["size_z"] == 91.769
    assert "symmetries_discrete" not in info[1]
    (S,) = info[2]["symmetries_discrete"]
    np.testing.assert_array_equal(S[:3, :3], np.diag([-1.0, -1.0, 1.0]))
    assert S[2, 3] == 2.5 and S[3, 3] == 1.0  # row-major: the fourth column holds t


def test_the_hand_written_ply_parses_and_a_quad_becomes_two_triangles(tmp_path):
    p = tmp_path / "obj_000007.ply"
    p.write_text(PLY_TEXT)
    v, f, n = bop.load_ply(p)
    np.testing.assert_array_equal(v[2], [10, 10, 0])
    np.testing.assert_array_equal(v[4], [5, 5, 8])
    np.testing.assert_array_equal(n, np.tile([0, 0, 1.0], (5, 1)))
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [0, 1, 4]])


def documented_parse(text: str) -> list[dict]:
    """A reader written from the documentation alone (not ours): comma-separated, 7 fields,
    R and t separated by white space."""
    lines = text.splitlines()
    assert lines[0] == "scene_id,im_id,obj_id,score,R,t,time"
    out = []
    for line in lines[1:]:
        f = line.split(",")
        assert len(f) == 7
        out.append({"scene_id": int(f[0]), "im_id": int(f[1]), "obj_id": int(f[2]), "score": float(f[3]),
                    "R": np.array(f[4].split(" "), float).reshape(3, 3), "t": np.array(f[5].split(" "), float),
                    "time": float(f[6])})
    return out


def test_results_round_trip_in_mm_and_row_major(tmp_path, rng):
    Ts = [make_T(random_rotation(rng), rng.uniform(-0.3, 0.3, 3) + [0, 0, 1.5]) for _ in range(5)]
    ests = [bop.BopEstimate.from_T(0, 10 + k, T, score=0.1 * k, time_s=0.002 * (k + 1)) for k, T in enumerate(Ts)]
    p = tmp_path / "sub" / "r.csv"  # the directory is made
    assert bop.save_bop_results(p, ests) == 5
    text = p.read_text()
    rows = documented_parse(text)
    for T, e, row in zip(Ts, ests, rows):
        np.testing.assert_array_equal(row["R"], T[:3, :3])  # row i of R is written i-th
        np.testing.assert_allclose(row["t"], T[:3, 3] * 1000.0, rtol=1e-15)
        assert (row["scene_id"], row["im_id"], row["obj_id"], row["time"]) == (0, e.im_id, 1, e.time_s)
    back = bop.load_bop_results(p)
    for T, b in zip(Ts, back):
        np.testing.assert_allclose(b.T_cam_obj, T, atol=1e-15)
    assert [b.score for b in back] == [e.score for e in ests]
    assert not list(tmp_path.glob("sub/.*.tmp"))  # atomic: no temporary left


def test_results_errors(tmp_path):
    T = make_T(np.eye(3), [0, 0, 1.0])
    with pytest.raises(ValueError, match="one time per image"):
        bop.bop_results_csv([bop.BopEstimate.from_T(0, 1, T, 1.0, 0.1), bop.BopEstimate.from_T(0, 1, T, 1.0, 0.2)])
    with pytest.raises(ValueError, match="non-finite"):
        bop.bop_results_csv([bop.BopEstimate.from_T(0, 1, T * np.nan, 1.0)])
    assert bop.BopEstimate.from_T(0, 1, T, 1.0, float("nan")).time_s == -1.0  # not measured: BOP's -1
    bad = tmp_path / "bad.csv"
    bad.write_text("scene_id,im_id,obj_id,score,R,t,time\n0,1,1,0.5,1 0 0 0 1 0 0 0,0 0 1,-1\n")
    with pytest.raises(XwingError, match=r"bad\.csv: line 2: expected integer ids"):
        bop.load_bop_results(bad)
    bad.write_text("0,1,1,0.5\n")
    with pytest.raises(XwingError, match="line 1: expected 7 comma-separated fields"):
        bop.load_bop_results(bad)
    with pytest.raises(XwingError, match="not found"):
        bop.load_bop_results(tmp_path / "none.csv")
    (tmp_path / "d").mkdir()
    with pytest.raises(XwingError, match="is a directory"):
        bop.save_bop_results(tmp_path / "d", [])


def test_json_files_round_trip_and_bad_input_names_the_file(tmp_path, rng):
    T = make_T(random_rotation(rng), [0.1, -0.05, 1.7])
    gt = {3: [bop.gt_entry(T)], 0: [bop.gt_entry(np.eye(4) @ T, obj_id=2)]}
    bop.save_scene_gt(tmp_path / "scene_gt.json", gt)
    back = bop.load_scene_gt(tmp_path / "scene_gt.json")
    assert list(json.loads((tmp_path / "scene_gt.json").read_text())) == ["0", "3"]  # string keys, sorted
    np.testing.assert_allclose(bop.T_cam_obj_of_gt(back[3][0]), T, atol=1e-15)
    assert back[0][0]["obj_id"] == 2

    cam = seed_camera(320, 240)
    bop.save_scene_camera(tmp_path / "scene_camera.json", {7: bop.camera_entry(cam)})
    c = bop.load_scene_camera(tmp_path / "scene_camera.json")[7]
    np.testing.assert_array_equal(c["cam_K"], cam.K)
    # the seed's camera sits at world (0, 0, 1) looking down: world -> OpenCV camera is diag(1, -1, -1), t 1000 mm
    np.testing.assert_array_equal(c["cam_R_w2c"], np.diag([1.0, -1.0, -1.0]))
    np.testing.assert_allclose(c["cam_t_w2c"], [0, 0, 1000.0])

    info = {1: bop.model_info(SEED_BOX_CORNERS)}
    bop.save_models_info(tmp_path / "models_info.json", info)
    back_info = bop.load_models_info(tmp_path / "models_info.json")[1]
    assert back_info["diameter"] == pytest.approx(model_diameter(SEED_BOX_CORNERS) * 1000)
    np.testing.assert_array_equal(back_info["symmetries_discrete"][0], T_ROLL180)

    for name, text in (("scene_gt.json", '{"0": [{"obj_id": 1}]}'), ("scene_camera.json", '{"x": {"cam_K": []}}'),
                       ("models_info.json", '{"1": {"diameter": "big"}}'), ("scene_gt.json", "[1, 2")):
        (tmp_path / "bad").mkdir(exist_ok=True)
        p = tmp_path / "bad" / name
        p.write_text(text)
        loader = {"scene_gt.json": bop.load_scene_gt, "scene_camera.json": bop.load_scene_camera,
                  "models_info.json": bop.load_models_info}[name]
        with pytest.raises(XwingError, match=name.replace(".", r"\.")) as e:
            loader(p)
        assert len(str(e.value).splitlines()) == 1


def test_cam_K_is_our_K_pixel_centres_at_integers(rng):
    """BOP: s [u, v, 1]' = K [R t] [x, y, z, 1]' in mm, pixel centres at integers. Our K uses that
    convention already, so cam_K is K unchanged and the BOP projection in mm is ours in metres."""
    cam = seed_camera(256, 256)
    K = bop.camera_entry(cam)["cam_K"]
    assert K[0, 2] == K[1, 2] == 127.5  # (W - 1) / 2: the centre of a 256-pixel image with centres at integers
    T = make_T(random_rotation(rng), [0.05, 0.02, 1.4])
    g = bop.gt_entry(T)
    X_mm = SEED_BOX_CORNERS * 1000.0
    p = (K @ (g["cam_R_m2c"] @ X_mm.T + g["cam_t_m2c"][:, None])).T  # (8, 3) s [u, v, 1]
    np.testing.assert_allclose(p[:, :2] / p[:, 2:], project_points(SEED_BOX_CORNERS, T, cam.K), atol=1e-9)
    assert bop.camera_json(cam) == {"cx": 127.5, "cy": 127.5, "depth_scale": 1.0, "fx": K[0, 0], "fy": K[1, 1],
                                    "height": 256, "width": 256}
    distorted = cam.__class__(cam.K, 256, 256, dist=[0.1, 0, 0, 0])
    with pytest.raises(XwingError, match="distortion"):
        bop.camera_entry(distorted)


def test_ply_round_trip_in_mm(tmp_path):
    mesh = xwing_mesh()
    p = tmp_path / "obj_000001.ply"
    bop.save_ply(p, mesh.vertices * 1000.0, mesh.faces, mesh.normals)
    v, f, n = bop.load_ply(p)
    np.testing.assert_allclose(v, mesh.vertices.astype(np.float64) * 1000.0, rtol=1e-6)
    np.testing.assert_array_equal(f, mesh.faces)
    np.testing.assert_allclose(n, mesh.normals, atol=1e-7)
    np.testing.assert_allclose(v.min(axis=0), SEED_BOX[0] * 1000.0, atol=1e-3)  # the box in mm
    trimesh = pytest.importorskip("trimesh")  # another reader agrees
    tm = trimesh.load(str(p), process=False)
    np.testing.assert_allclose(tm.vertices, v, rtol=1e-6)
    np.testing.assert_array_equal(tm.faces, f)
    (tmp_path / "bin.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 0\nend_header\n")
    with pytest.raises(XwingError, match="only ASCII PLY"):
        bop.load_ply(tmp_path / "bin.ply")


def test_image_ids_from_seed_and_bop_names(tmp_path):
    assert bop.image_ids(["d/12.jpg", "x/test/000003/rgb/000045.png", "0.jpg"]) == [(0, 12), (3, 45), (0, 0)]
    with pytest.raises(XwingError, match="a.jpg: a BOP result needs images named N.jpg"):
        bop.image_ids(["a.jpg"])
    with pytest.raises(XwingError, match="same scene and image id"):
        bop.image_ids(["a/5.jpg", "b/5.jpg"])


def test_a_seed_dataset_written_in_bops_layout(tmp_path, rng):
    cam = seed_camera(64, 48)
    seed = tmp_path / "seed"
    seed.mkdir()
    Ts = {}
    for n in (0, 1, 7):  # ids need not be contiguous
        T = make_T(rotvec_to_R(rng.normal(size=3)), [rng.uniform(-0.1, 0.1), 0.0, rng.uniform(1.2, 2.0)])
        write_sample(seed, n, rng.integers(0, 255, (48, 64, 3)).astype(np.uint8),
                     model_matrix_from_T_cam_obj(T, cam.view_matrix))
        Ts[n] = T
    save_camera_info(seed, cam)
    root = tmp_path / "bop"
    mesh = xwing_mesh()
    s = bop.save_bop_dataset(seed, root, mesh, split="test", scene_id=0)
    assert s["images"] == 3
    scene = root / "test" / "000000"
    assert sorted(p.name for p in (scene / "rgb").iterdir()) == ["000000.jpg", "000001.jpg", "000007.jpg"]
    assert (scene / "rgb" / "000007.jpg").read_bytes() == (seed / "7.jpg").read_bytes()
    truth = SeedDataset(seed, load_images=False)
    gt, cams = bop.load_scene_gt(scene / "scene_gt.json"), bop.load_scene_camera(scene / "scene_camera.json")
    assert sorted(gt) == sorted(cams) == [0, 1, 7]
    for i, n in enumerate(truth.indices):
        (g,) = gt[n]
        assert g["obj_id"] == 1
        np.testing.assert_allclose(bop.T_cam_obj_of_gt(g), truth.T_cam_obj(i), atol=1e-12)
        np.testing.assert_allclose(g["cam_t_m2c"], Ts[n][:3, 3] * 1000.0, rtol=1e-12)
        np.testing.assert_array_equal(cams[n]["cam_K"], cam.K)
    info = bop.load_models_info(root / "models" / "models_info.json")[1]
    v, f, _ = bop.load_ply(root / "models" / "obj_000001.ply")
    assert info["diameter"] == pytest.approx(model_diameter(mesh.vertices) * 1000.0, rel=1e-6)
    np.testing.assert_allclose([info["min_x"], info["min_y"], info["min_z"]], SEED_BOX[0] * 1000.0, atol=1e-3)
    np.testing.assert_allclose([info["size_x"], info["size_y"], info["size_z"]], np.ptp(SEED_BOX, axis=0) * 1000.0,
                               atol=1e-3)
    np.testing.assert_array_equal(info["symmetries_discrete"][0], T_ROLL180)
    np.testing.assert_allclose(v.max(axis=0), SEED_BOX[1] * 1000.0, atol=1e-3)
    assert json.loads((root / "camera.json").read_text())["width"] == 64
    # a rerun rewrites the annotations and keeps the images
    assert bop.save_bop_dataset(seed, root, mesh, split="test")["images"] == 3
    with pytest.raises(XwingError, match="split"):
        bop.save_bop_dataset(seed, root, mesh, split="../x")
