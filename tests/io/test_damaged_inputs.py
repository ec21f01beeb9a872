"""Damaged and unusual inputs: named in one line, converted, or counted as unreadable; never a traceback."""

import json

import cv2
import numpy as np
import pytest

import xwing.errors
from _flights import synthetic_flight, write_oracle_sequence
from _synthetic import write_box_dataset
from xwing.cli import main
from xwing.errors import DamagedFileError, XwingError
from xwing.geometry.camera import seed_camera
from xwing.io.calibration import load_camera
from xwing.io.images import check_whole, read_image, write_image
from xwing.io.video import GifWriter, Mp4Writer, gif_delays_ms, open_source


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Warnings said once per process: each test starts with none said."""
    monkeypatch.setattr(xwing.errors, "_said", set())


def _image(rng, h=24, w=32):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _cut(path, keep: float = 0.6):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# --- image files ---------------------------------------------------------------------------


def test_whole_images_pass_and_round_trip(tmp_path, rng):
    img = _image(rng)
    write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(tmp_path / "a.png"), img)
    write_image(tmp_path / "a.jpg", img)
    data = (tmp_path / "a.jpg").read_bytes()
    check_whole(data + b"\x00\x00\n", "padded.jpg")  # padding after the end marker is tolerated
    assert read_image(tmp_path / "a.jpg").shape == img.shape


@pytest.mark.parametrize("suffix, msg", [(".jpg", "JPEG is cut short"), (".png", "PNG is cut short")])
def test_cut_images_are_damaged_and_named(tmp_path, rng, suffix, msg):
    path = tmp_path / f"cut{suffix}"
    write_image(path, _image(rng, 64, 64))
    _cut(path)
    with pytest.raises(DamagedFileError, match=msg) as e:
        read_image(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_png_with_a_flipped_byte_fails_its_crc(tmp_path, rng):
    path = tmp_path / "bad.png"
    write_image(path, _image(rng))
    data = bytearray(path.read_bytes())
    data[60] ^= 0xFF  # inside the IDAT chunk
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedFileError, match="CRC mismatch"):
        read_image(path)


def test_not_an_image_is_damaged(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"this is not a JPEG at all")
    with pytest.raises(DamagedFileError, match="unreadable image"):
        read_image(path)


def test_grey_rgba_and_16_bit_become_rgb8_said_once(tmp_path, rng, capsys):
    grey = rng.integers(0, 256, (8, 10), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    cv2.imwrite(str(tmp_path / "g2.png"), grey)
    rgba = rng.integers(0, 256, (8, 10, 4), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), rgba)  # OpenCV writes BGRA
    deep = np.array([[0, 257 * 100, 65535]], dtype=np.uint16).repeat(3, 0)
    cv2.imwrite(str(tmp_path / "d.png"), deep)

    g = read_image(tmp_path / "g.png")
    read_image(tmp_path / "g2.png")
    assert g.shape == (8, 10, 3) and g.dtype == np.uint8
    assert all(np.array_equal(g[..., c], grey) for c in range(3))
    a = read_image(tmp_path / "a.png")
    assert np.array_equal(a, rgba[..., 2::-1])  # BGRA on disk -> RGB, alpha dropped
    d = read_image(tmp_path / "d.png")
    assert d.dtype == np.uint8 and d[0, :, 0].tolist() == [0, 100, 255]
    err = capsys.readouterr().err.splitlines()
    assert sum("grey images are converted" in line for line in err) == 1  # two grey files, said once
    assert sum("RGBA" in line for line in err) == 1 and sum("16-bit" in line for line in err) == 1


# --- datasets and image directories ---------------------------------------------------------


def test_eval_counts_a_cut_image_as_unreadable_and_strict_refuses_it(tmp_path, capsys):
    data = tmp_path / "ds"
    data.mkdir()
    write_box_dataset(data, 4, size=96, seed=1)
    _cut(data / "2.jpg")
    out = tmp_path / "eval"
    assert main(["eval", "oracle:noise=0.3", str(data), "--out", str(out), "--refine", "none"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_unreadable"] == 1 and m["unreadable_files"] == [str(data / "2.jpg")]
    assert m["n_images"] == 3
    err = capsys.readouterr().err
    assert f"{data / '2.jpg'}: JPEG is cut short" in err and "counted as unreadable" in err

    assert main(["eval", "oracle:noise=0.3", str(data), "--out", str(out), "--refine", "none", "--strict"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "xwing" in line]  # not the progress bar
    assert len(err) == 1 and "2.jpg: JPEG is cut short" in err[0]


def test_track_an_image_directory_with_a_cut_frame(tmp_path, capsys):
    cam = seed_camera(96, 96)
    poses = synthetic_flight(12, cam, seed=4)
    seq = tmp_path / "seq"
    write_oracle_sequence(seq, poses, cam)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, (_, _, f) in enumerate(open_source(seq).frames()):
        write_image(frames / f"{i}.png", f)
    (seq / "video.mp4").unlink()
    for p in seq.iterdir():  # a seed-format directory with truth: PNG frames + N_mat.json
        (frames / p.name).write_bytes(p.read_bytes())
    _cut(frames / "5.png")
    out = tmp_path / "out"
    assert main(["track", str(frames), "--model", "oracle:noise=0.3", "--out", str(out), "--quiet",
                 "--refine", "none"]) == 0
    doc = json.loads((out / "poses.json").read_text())
    assert len(doc["frames"]) == 12 and doc["frames"][5]["status"] == "lost"
    assert all(f["status"] != "lost" for k, f in enumerate(doc["frames"]) if k != 5)
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_unreadable"] == 1
    import imageio.v3 as iio

    assert sum(1 for _ in iio.imiter(out / "overlay.mp4")) == 12  # the frame keeps its place
    captured = capsys.readouterr()
    assert "5.png: PNG is cut short" in captured.err
    assert main(["track", str(frames), "--model", "oracle:noise=0.3", "--out", str(tmp_path / "o2"), "--quiet",
                 "--refine", "none", "--strict"]) == 2
    assert not (tmp_path / "o2" / "poses.json").exists()


# --- videos ------------------------------------------------------------------------------


def _avi(path, n, size=48):
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (size, size))
    for i in range(n):
        vw.write(np.full((size, size, 3), 5 * i, np.uint8))
    vw.release()


def test_a_video_cut_short_gives_its_frames_and_one_warning(tmp_path, capsys):
    path = tmp_path / "cut.avi"
    _avi(path, 40)
    _cut(path, 0.5)
    src = open_source(path)
    n = sum(1 for _ in src.frames())
    n2 = sum(1 for _ in src.frames())  # the drawing pass reads it again: no second warning
    assert 0 < n == n2 < 40
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"ends after {n} of the 40 frames" in err[0] and str(path) in err[0]


def test_a_whole_video_says_nothing(tmp_path, capsys):
    path = tmp_path / "whole.mp4"
    w = Mp4Writer(path)
    for i in range(20):
        w.write(np.full((32, 32, 3), 10 * i, np.uint8))
    w.close()
    assert sum(1 for _ in open_source(path).frames()) == 20
    assert capsys.readouterr().err == ""


def test_track_a_cut_video_writes_valid_outputs(tmp_path, capsys):
    path = tmp_path / "cut.avi"
    _avi(path, 40)
    _cut(path, 0.5)
    out = tmp_path / "out"
    assert main(["track", str(path), "--out", str(out), "--quiet", "--refine", "none"]) == 0
    n = json.loads((out / "metrics.json").read_text())["n_frames"]
    assert 0 < n < 40
    import imageio.v3 as iio

    assert sum(1 for _ in iio.imiter(out / "overlay.mp4")) == n
    assert "ends after" in capsys.readouterr().err


def test_an_mp4_without_its_index_is_named(tmp_path, capsys):
    path = tmp_path / "cut.mp4"
    w = Mp4Writer(path)
    for i in range(30):
        w.write(np.full((32, 32, 3), 5 * i, np.uint8))
    w.close()
    _cut(path, 0.5)
    with pytest.raises(DamagedFileError, match="no index"):
        open_source(path)
    assert main(["track", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0]


# --- camera files ------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["K", "dist"])
def test_nan_or_inf_in_a_camera_file_is_named(tmp_path, field):
    cam = seed_camera(64, 64).to_dict()
    cam["dist"] = [0.0, 0.0, 0.0, 0.0]
    if field == "K":
        cam["K"][0][0] = float("nan")
    else:
        cam["dist"][1] = float("inf")
    path = tmp_path / "cam.json"
    path.write_text(json.dumps(cam))  # Python writes NaN / Infinity tokens, which JSON readers accept
    with pytest.raises(XwingError) as e:
        load_camera(path)
    assert str(e.value).startswith(f"{path}: ") and "finite" in str(e.value)


def test_nan_in_a_ros_yaml_camera_is_named(tmp_path):
    path = tmp_path / "cam.yaml"
    path.write_text("image_width: 64\nimage_height: 64\ncamera_matrix:\n  rows: 3\n  cols: 3\n"
                    "  data: [.nan, 0, 32, 0, 50, 32, 0, 0, 1]\n")
    with pytest.raises(XwingError, match="finite") as e:
        load_camera(path)
    assert str(path) in str(e.value)


# --- the GIF ------------------------------------------------------------------------------


def test_gif_holds_only_its_first_frames(tmp_path):
    gif = GifWriter(tmp_path / "p.gif", max_frames=7)
    kept = [gif.write(np.full((40, 60, 3), 9 * i, np.uint8)) for i in range(20)]
    gif.close()
    assert kept == [True] * 7 + [False] * 13 and gif.dropped == 13
    assert gif_delays_ms(tmp_path / "p.gif") == [30, 30, 40, 30, 30, 40, 30]
