"""The BOP format: pose results (CSV), a dataset's annotations (JSON), object models (PLY).

BOP (Hodan et al., "BOP: Benchmark for 6D Object Pose Estimation", ECCV 2018) is
defined by bop_toolkit's ``docs/bop_datasets_format.md`` and the BOP challenge's
results format; this module reads and writes what xwing needs of it, as
``load_*`` / ``save_*`` pairs, without bop_toolkit (it is not on the package index).

Conventions (each one is tested in ``tests/io/test_bop.py``):

* **Units.** BOP lengths are millimetres; xwing's model units are read as metres
  (the seed's box is 0.312 x 0.345 x 0.066), so translations, model vertices,
  diameters and box sizes are multiplied by :data:`MM_PER_UNIT` on the way out and
  divided by it on the way in. Rotations are unitless.
* **Camera frame.** BOP's camera is OpenCV's (x right, y down, looking along +z),
  the frame of xwing's ``T_cam_obj``: ``cam_R_m2c = T_cam_obj[:3, :3]``,
  ``cam_t_m2c = 1000 T_cam_obj[:3, 3]``. No axis flip.
* **Pixels.** BOP's ``s [u, v, 1]' = K [R t] [x, y, z, 1]'`` puts pixel centres at
  integer coordinates (OpenCV's convention; BOP's renderings have
  ``cx = (W - 1) / 2`` for a centred principal point), which is xwing's ``K``
  convention too (:mod:`xwing.geometry.camera`): ``cam_K`` is our ``K`` unchanged.
  The seed's pixel-edge convention would need ``cx - 0.5``; nothing here uses it.
* **Matrices** are written row-major: ``R`` as 9 values, ``K`` as 9, a symmetry as 16.

Results CSV (one pose estimate per line; BOP leaves out the images where a method
found no pose, and so do we)::

    scene_id,im_id,obj_id,score,R,t,time
    0,12,1,0.87,r11 r12 r13 r21 r22 r23 r31 r32 r33,t1 t2 t3,0.0123

``score``: the estimate's confidence (range not restricted); ``time``: seconds the
method took for the whole image (-1 if not known), the same on every line of an image.

Dataset (:func:`save_bop_dataset`: a seed-format directory written in BOP's nesting)::

    ROOT/
      camera.json                           # the sensor: fx, fy, cx, cy, width, height, depth_scale
      models/obj_000001.ply                 # the mesh in mm (ASCII PLY with vertex normals)
      models/models_info.json               # diameter, box, the 180-degree roll as a discrete symmetry
      {split}/{scene:06d}/rgb/{im:06d}.jpg  # the seed's N.jpg, im_id = N (same bytes: a hard link or a copy)
      {split}/{scene:06d}/scene_camera.json # cam_K, depth_scale, cam_R_w2c, cam_t_w2c per image
      {split}/{scene:06d}/scene_gt.json     # [{cam_R_m2c, cam_t_m2c, obj_id}] per image

Not written: depth images and masks (a colour renderer makes neither), so neither
``scene_gt_info.json`` (boxes and visible fractions; bop_toolkit's
``calc_gt_info.py`` computes it from the model) nor ``models_eval/``.
``depth_scale`` is 1.0, a placeholder the format requires.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xwing.errors import XwingError
from xwing.geometry.camera import T_CV_GL
from xwing.geometry.pose import make_T
from xwing.io.atomic import AtomicFile, atomic_write_json, atomic_write_text
from xwing.io.calibration import read_json
from xwing.model.keypoints import model_diameter
from xwing.model.symmetry import T_ROLL180

#: BOP millimetres per xwing model unit (model units are read as metres).
MM_PER_UNIT = 1000.0
#: The ship's object id in every BOP file xwing writes.
XWING_OBJ_ID = 1
RESULTS_HEADER = "scene_id,im_id,obj_id,score,R,t,time"
#: The ship's discrete symmetries for BOP: the 180-degree roll (model/symmetry.py), a near symmetry
#: that BOP's symmetry-aware errors (MSSD, MSPD) should forgive as ADI does.
XWING_SYMMETRIES = (T_ROLL180,)


def _num(x: float) -> str:
    """Shortest text that reads back to the same float."""
    return repr(float(x))


# --- results CSV -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BopEstimate:
    """One line of a BOP results CSV.

    Attributes:
        scene_id, im_id, obj_id: the test target.
        score: confidence of the estimate.
        R: (3, 3) rotation, object -> OpenCV camera.
        t_mm: (3,) translation in mm.
        time_s: seconds for the whole image, -1 when not known.
    """

    scene_id: int
    im_id: int
    obj_id: int
    score: float
    R: np.ndarray
    t_mm: np.ndarray
    time_s: float = -1.0

    @classmethod
    def from_T(cls, scene_id: int, im_id: int, T_cam_obj: np.ndarray, score: float, time_s: float = -1.0,
               obj_id: int = XWING_OBJ_ID) -> BopEstimate:
        """From a pose ``T_cam_obj`` (4, 4) in model units (metres); a time that was not
        measured (NaN) is written as BOP's -1."""
        T = np.asarray(T_cam_obj, dtype=np.float64)
        time_s = float(time_s) if np.isfinite(time_s) else -1.0
        return cls(int(scene_id), int(im_id), int(obj_id), float(score), T[:3, :3].copy(),
                   T[:3, 3] * MM_PER_UNIT, time_s)

    @property
    def T_cam_obj(self) -> np.ndarray:
        """(4, 4) the pose in model units (metres)."""
        return make_T(self.R, np.asarray(self.t_mm, dtype=np.float64) / MM_PER_UNIT)


def bop_results_csv(estimates) -> str:
    """The CSV text of ``estimates`` (:class:`BopEstimate`), header first.

    Raises ValueError for a non-finite value, or an image whose lines disagree on
    ``time`` (BOP requires one time per image).
    """
    lines = [RESULTS_HEADER]
    times: dict[tuple[int, int], float] = {}
    for e in estimates:
        R = np.asarray(e.R, dtype=np.float64).reshape(9)  # row-major, as BOP's docs say
        t = np.asarray(e.t_mm, dtype=np.float64).reshape(3)
        if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t)) and np.isfinite(e.score)
                and np.isfinite(e.time_s)):
            raise ValueError(f"non-finite value in the estimate for scene {e.scene_id} image {e.im_id}")
        key = (int(e.scene_id), int(e.im_id))
        if times.setdefault(key, float(e.time_s)) != float(e.time_s):
            raise ValueError(f"scene {key[0]} image {key[1]}: BOP wants one time per image, got "
                             f"{times[key]} and {e.time_s}")
        lines.append(",".join([str(int(e.scene_id)), str(int(e.im_id)), str(int(e.obj_id)), _num(e.score),
                               " ".join(_num(x) for x in R), " ".join(_num(x) for x in t), _num(e.time_s)]))
    return "\n".join(lines) + "\n"


def prepare_results_path(path: str | Path) -> Path:
    """Create the parent directory of a results file now (a command checks its outputs
    before the long work); one-line :class:`XwingError` where it cannot."""
    path = Path(path)
    if path.is_dir():
        raise XwingError("is a directory; --bop-out wants a file name (e.g. results.csv)", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise XwingError(f"cannot create the directory for it ({e.strerror})", path) from None
    if not os.access(path.parent, os.W_OK):
        raise XwingError("its directory is not writable", path)
    return path


def save_bop_results(path: str | Path, estimates) -> int:
    """Write a BOP results CSV (atomic); returns the number of estimates written."""
    estimates = list(estimates)
    atomic_write_text(prepare_results_path(path), bop_results_csv(estimates))
    return len(estimates)


def load_bop_results(path: str | Path) -> list[BopEstimate]:
    """Read a BOP results CSV -> one :class:`BopEstimate` per line (header optional, as in
    bop_toolkit; blank lines skipped). Bad lines raise :class:`XwingError` naming the file
    and the line."""
    path = Path(path)
    if not path.is_file():
        raise XwingError("file not found", path)
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise XwingError("not a text file", path) from None
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or (n == 1 and line.strip().replace(" ", "") == RESULTS_HEADER):
            continue
        elems = line.split(",")
        if len(elems) != 7:
            raise XwingError(f"line {n}: expected 7 comma-separated fields ({RESULTS_HEADER}), got {len(elems)}",
                             path)
        try:
            R = np.array([float(x) for x in elems[4].split()])
            t = np.array([float(x) for x in elems[5].split()])
            est = BopEstimate(int(elems[0]), int(elems[1]), int(elems[2]), float(elems[3]), R.reshape(3, 3),
                              t.reshape(3), float(elems[6]))
        except ValueError:
            raise XwingError(f"line {n}: expected integer ids, a score, 9 values of R, 3 of t and a time", path
                             ) from None
        out.append(est)
    return out


# --- scene_gt.json, scene_camera.json, camera.json ----------------------------------------------------


def _matrix(value, shape: tuple[int, ...], what: str, path: Path) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
        return a.reshape(shape)
    except (TypeError, ValueError):
        raise XwingError(f"{what}: expected {int(np.prod(shape))} numbers", path) from None


def _image_keys(doc, path: Path) -> dict:
    if not isinstance(doc, dict):
        raise XwingError("expected an object keyed by image id", path)
    try:
        return {int(k): v for k, v in doc.items()}
    except ValueError:
        raise XwingError("image ids (the keys) must be integers", path) from None


def load_scene_gt(path: str | Path) -> dict[int, list[dict]]:
    """``scene_gt.json`` -> {im_id: [{"obj_id": int, "cam_R_m2c": (3, 3), "cam_t_m2c": (3,) mm}, ...]}."""
    path = Path(path)
    out = {}
    for im_id, gts in sorted(_image_keys(read_json(path), path).items()):
        if not isinstance(gts, list):
            raise XwingError(f"image {im_id}: expected a list of annotations", path)
        out[im_id] = []
        for gt in gts:
            try:
                obj_id = int(gt["obj_id"])
                R, t = gt["cam_R_m2c"], gt["cam_t_m2c"]
            except (KeyError, TypeError, ValueError):
                raise XwingError(f"image {im_id}: an annotation needs obj_id, cam_R_m2c and cam_t_m2c", path
                                 ) from None
            out[im_id].append({"obj_id": obj_id, "cam_R_m2c": _matrix(R, (3, 3), f"image {im_id} cam_R_m2c", path),
                               "cam_t_m2c": _matrix(t, (3,), f"image {im_id} cam_t_m2c", path)})
    return out


def save_scene_gt(path: str | Path, scene_gt: dict[int, list[dict]]) -> None:
    """Write ``scene_gt.json`` (the form :func:`load_scene_gt` returns; atomic)."""
    doc = {str(int(im_id)): [{"cam_R_m2c": [float(x) for x in np.ravel(gt["cam_R_m2c"])],
                              "cam_t_m2c": [float(x) for x in np.ravel(gt["cam_t_m2c"])],
                              "obj_id": int(gt["obj_id"])} for gt in gts]
           for im_id, gts in sorted(scene_gt.items())}
    atomic_write_json(path, doc)


def gt_entry(T_cam_obj: np.ndarray, obj_id: int = XWING_OBJ_ID) -> dict:
    """One ``scene_gt`` annotation of a pose ``T_cam_obj`` (4, 4) in model units."""
    T = np.asarray(T_cam_obj, dtype=np.float64)
    return {"obj_id": int(obj_id), "cam_R_m2c": T[:3, :3].copy(), "cam_t_m2c": T[:3, 3] * MM_PER_UNIT}


def T_cam_obj_of_gt(gt: dict) -> np.ndarray:
    """(4, 4) the pose of a ``scene_gt`` annotation, in model units (metres)."""
    return make_T(gt["cam_R_m2c"], np.asarray(gt["cam_t_m2c"], dtype=np.float64) / MM_PER_UNIT)


def load_scene_camera(path: str | Path) -> dict[int, dict]:
    """``scene_camera.json`` -> {im_id: {"cam_K": (3, 3), "depth_scale": float, and where
    present "cam_R_w2c": (3, 3), "cam_t_w2c": (3,) mm}}."""
    path = Path(path)
    out = {}
    for im_id, c in sorted(_image_keys(read_json(path), path).items()):
        if not isinstance(c, dict) or "cam_K" not in c:
            raise XwingError(f"image {im_id}: needs cam_K", path)
        entry = {"cam_K": _matrix(c["cam_K"], (3, 3), f"image {im_id} cam_K", path),
                 "depth_scale": float(c.get("depth_scale", 1.0))}
        if "cam_R_w2c" in c and "cam_t_w2c" in c:
            entry["cam_R_w2c"] = _matrix(c["cam_R_w2c"], (3, 3), f"image {im_id} cam_R_w2c", path)
            entry["cam_t_w2c"] = _matrix(c["cam_t_w2c"], (3,), f"image {im_id} cam_t_w2c", path)
        out[im_id] = entry
    return out


def save_scene_camera(path: str | Path, scene_camera: dict[int, dict]) -> None:
    """Write ``scene_camera.json`` (the form :func:`load_scene_camera` returns; atomic)."""
    doc = {}
    for im_id, c in sorted(scene_camera.items()):
        entry = {"cam_K": [float(x) for x in np.ravel(c["cam_K"])], "depth_scale": float(c.get("depth_scale", 1.0))}
        if "cam_R_w2c" in c:
            entry["cam_R_w2c"] = [float(x) for x in np.ravel(c["cam_R_w2c"])]
            entry["cam_t_w2c"] = [float(x) for x in np.ravel(c["cam_t_w2c"])]
        doc[str(int(im_id))] = entry
    atomic_write_json(path, doc)


def camera_entry(camera) -> dict:
    """One ``scene_camera`` entry of a :class:`~xwing.geometry.camera.Camera`: its ``K`` as is
    (pixel centres at integers, as BOP's), and the seed's world -> OpenCV camera as
    ``cam_R_w2c`` / ``cam_t_w2c`` (mm). A camera with lens distortion raises: BOP has none."""
    if camera.has_distortion:
        raise XwingError("the camera has lens distortion, which BOP's cam_K cannot carry")
    T_cam_world = T_CV_GL @ camera.view_matrix  # (4, 4) world -> OpenCV camera
    return {"cam_K": camera.K.copy(), "depth_scale": 1.0, "cam_R_w2c": T_cam_world[:3, :3].copy(),
            "cam_t_w2c": T_cam_world[:3, 3] * MM_PER_UNIT}


def camera_json(camera) -> dict:
    """The dataset root's ``camera.json`` (the sensor, for simulation in BOP's words)."""
    K = camera.K
    return {"cx": float(K[0, 2]), "cy": float(K[1, 2]), "depth_scale": 1.0, "fx": float(K[0, 0]),
            "fy": float(K[1, 1]), "height": int(camera.height), "width": int(camera.width)}


# --- models_info.json and PLY ------------------------------------------------------------------------


def model_info(vertices: np.ndarray, symmetries=XWING_SYMMETRIES) -> dict:
    """One ``models_info.json`` entry of model vertices (V, 3) in model units: ``diameter``
    (largest distance between two vertices), the box (``min_*``, ``size_*``) and
    ``symmetries_discrete`` (each (4, 4) model -> model, row-major, translation in mm), all in mm."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3) * MM_PER_UNIT
    lo, hi = v.min(axis=0), v.max(axis=0)
    info = {"diameter": model_diameter(v)}
    for k, axis in enumerate("xyz"):
        info[f"min_{axis}"] = float(lo[k])
    for k, axis in enumerate("xyz"):
        info[f"size_{axis}"] = float(hi[k] - lo[k])
    syms = []
    for S in symmetries:
        S = np.asarray(S, dtype=np.float64).copy()
        S[:3, 3] *= MM_PER_UNIT
        syms.append([float(x) for x in S.reshape(16)])
    if syms:
        info["symmetries_discrete"] = syms
    return info


def save_models_info(path: str | Path, models_info: dict[int, dict]) -> None:
    """Write ``models_info.json`` ({obj_id: entry}, entries as :func:`model_info` makes; atomic)."""
    doc = {}
    for obj_id, info in sorted(models_info.items()):
        entry = {k: float(v) for k, v in info.items() if k != "symmetries_discrete"}
        if "symmetries_discrete" in info:
            entry["symmetries_discrete"] = [[float(x) for x in np.ravel(S)] for S in info["symmetries_discrete"]]
        doc[str(int(obj_id))] = entry
    atomic_write_json(path, doc)


def load_models_info(path: str | Path) -> dict[int, dict]:
    """``models_info.json`` -> {obj_id: {"diameter", "min_x", ..., "size_z" (mm), and where
    present "symmetries_discrete": [(4, 4), ...] (translation in mm)}}."""
    path = Path(path)
    out = {}
    for obj_id, info in sorted(_image_keys(read_json(path), path).items()):
        if not isinstance(info, dict) or "diameter" not in info:
            raise XwingError(f"object {obj_id}: needs a diameter", path)
        entry = {}
        for k, v in info.items():
            if k == "symmetries_discrete":
                entry[k] = [_matrix(S, (4, 4), f"object {obj_id} symmetries_discrete", path) for S in v]
            elif k == "symmetries_continuous":
                entry[k] = v  # axis + offset dicts, kept as read
            else:
                try:
                    entry[k] = float(v)
                except (TypeError, ValueError):
                    raise XwingError(f"object {obj_id}: {k} must be a number", path) from None
        out[obj_id] = entry
    return out


def save_ply(path: str | Path, vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray | None = None) -> None:
    """Write an ASCII PLY (atomic): vertices (V, 3) [with normals (V, 3)] and triangles (F, 3)
    as given (BOP wants mm: scale before calling)."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    head = ["ply", "format ascii 1.0", "comment written by xwing", f"element vertex {len(v)}",
            "property float x", "property float y", "property float z"]
    cols = v
    if normals is not None:
        n = np.asarray(normals, dtype=np.float64).reshape(-1, 3)
        if len(n) != len(v):
            raise ValueError(f"{len(n)} normals for {len(v)} vertices")
        head += ["property float nx", "property float ny", "property float nz"]
        cols = np.concatenate([v, n], axis=1)  # (V, 6)
    head += [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]
    body = "\n".join(" ".join(f"{x:.9g}" for x in row) for row in cols)
    tris = "\n".join(f"3 {a} {b} {c}" for a, b, c in f)
    atomic_write_text(path, "\n".join(head) + "\n" + body + ("\n" if len(v) else "") + tris + ("\n" if len(f) else ""))


def load_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read an ASCII PLY -> vertices (V, 3), triangles (F, 3) int, normals (V, 3) or None.

    Vertex properties other than x, y, z, nx, ny, nz (colours, texture
    coordinates) are skipped; polygons with more than 3 corners are fanned into
    triangles. Binary PLY raises :class:`XwingError` (xwing writes ASCII; trimesh
    reads both).
    """
    path = Path(path)
    if not path.is_file():
        raise XwingError("file not found", path)
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise XwingError("not an ASCII PLY (binary PLY is read with trimesh, not here)", path) from None
    if not lines or lines[0].strip() != "ply":
        raise XwingError("not a PLY file", path)
    elements: list[tuple[str, int, list[str]]] = []
    end = None
    for i, line in enumerate(lines[1:], start=1):
        w = line.split()
        if not w or w[0] in ("comment", "obj_info"):
            continue
        if w[0] == "format" and (len(w) < 2 or w[1] != "ascii"):
            raise XwingError(f"only ASCII PLY is read here, this one is {w[1] if len(w) > 1 else '?'}", path)
        if w[0] == "element":
            elements.append((w[1], int(w[2]), []))
        elif w[0] == "property" and elements:
            elements[-1][2].append(w[-1])
        elif w[0] == "end_header":
            end = i + 1
            break
    if end is None:
        raise XwingError("PLY header has no end_header", path)
    verts, faces, normals = np.zeros((0, 3)), np.zeros((0, 3), np.int64), None
    row = end
    try:
        for name, count, props in elements:
            block = [lines[row + k].split() for k in range(count)]
            row += count
            if name == "vertex":
                a = np.array(block, dtype=np.float64).reshape(count, len(props))  # (V, properties)
                verts = a[:, [props.index(c) for c in ("x", "y", "z")]]
                if all(c in props for c in ("nx", "ny", "nz")):
                    normals = a[:, [props.index(c) for c in ("nx", "ny", "nz")]]
            elif name == "face":
                tris = []
                for b in block:
                    idx = [int(x) for x in b[1:1 + int(b[0])]]
                    tris += [(idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1)]
                faces = np.array(tris, dtype=np.int64).reshape(-1, 3)
    except (IndexError, ValueError):
        raise XwingError("PLY body does not match its header", path) from None
    if len(faces) and (faces.min() < 0 or faces.max() >= len(verts)):
        raise XwingError("PLY faces index missing vertices", path)
    return verts, faces, normals


# --- a seed dataset as a BOP dataset ---------------------------------------------------------------


def check_split(split: str) -> str:
    """A BOP split folder name (``train``, ``test``, ``train_pbr``, ...) or :class:`XwingError`."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", split or ""):
        raise XwingError(f"a BOP split name is letters, digits and '_' (train, val, test, train_pbr), got {split!r}")
    return split


def scene_dir(root: str | Path, split: str, scene_id: int) -> Path:
    """``root/{split}/{scene_id:06d}``: BOP's nesting of one scene."""
    return Path(root) / split / f"{int(scene_id):06d}"


def model_path(root: str | Path, obj_id: int = XWING_OBJ_ID) -> Path:
    return Path(root) / "models" / f"obj_{int(obj_id):06d}.ply"


def _link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` holds ``src``'s bytes, atomically: a hard link where the file system allows
    (a 100,000-image set costs no second copy), else a copy."""
    if dst.exists() and os.path.samefile(src, dst):
        return
    f = AtomicFile(dst)
    try:
        f.tmp.unlink()  # the name only: the link takes its place
        os.link(src, f.tmp)
        os.replace(f.tmp, dst)  # no chmod: the link shares the seed image's inode and mode
    except OSError:
        f.discard()
        with AtomicFile(dst) as g:
            g.tmp.write_bytes(src.read_bytes())


def save_bop_dataset(seed_dir: str | Path, root: str | Path, mesh, split: str = "train", scene_id: int = 0,
                     obj_id: int = XWING_OBJ_ID) -> dict:
    """Write the seed-format dataset ``seed_dir`` as a BOP dataset under ``root`` (layout in
    the module doc): image ``N.jpg`` becomes ``im_id`` N of scene ``scene_id``; ``mesh``
    (:class:`~xwing.model.mesh.Mesh`, model units) becomes ``models/obj_000001.ply`` in mm.
    Rerunning rewrites the annotations and relinks the images. Returns a summary
    (paths, number of images)."""
    from xwing.io.dataset import SeedDataset

    check_split(split)
    ds = SeedDataset(seed_dir, load_images=False)
    entry = camera_entry(ds.camera)
    root = Path(root)
    scene = scene_dir(root, split, scene_id)
    try:
        (scene / "rgb").mkdir(parents=True, exist_ok=True)
        (root / "models").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise XwingError(f"cannot create the BOP directory ({e.strerror})", root) from None
    scene_gt, scene_camera = {}, {}
    for i in range(len(ds)):
        im_id = ds.indices[i]
        src = ds.image_path(i)
        _link_or_copy(src, scene / "rgb" / f"{im_id:06d}{src.suffix.lower()}")
        scene_gt[im_id] = [gt_entry(ds.T_cam_obj(i), obj_id)]
        scene_camera[im_id] = entry
    save_scene_camera(scene / "scene_camera.json", scene_camera)
    save_scene_gt(scene / "scene_gt.json", scene_gt)
    save_ply(model_path(root, obj_id), np.asarray(mesh.vertices, np.float64) * MM_PER_UNIT, mesh.faces,
             mesh.normals)
    save_models_info(root / "models" / "models_info.json", {obj_id: model_info(mesh.vertices)})
    atomic_write_json(root / "camera.json", camera_json(ds.camera))
    return {"root": str(root), "scene": str(scene), "images": len(ds), "split": split, "scene_id": int(scene_id)}


# --- ids of images and frames ----------------------------------------------------------------------

_DIGITS = re.compile(r"^\d+$")


def image_ids(paths) -> list[tuple[int, int]]:
    """(scene_id, im_id) of image files: BOP's ``.../{scene:06d}/rgb/{im:06d}.jpg`` (or
    ``gray/``), else a seed image ``N.jpg`` as image N of scene 0. A name that carries no
    id, or two images with the same ids, raise :class:`XwingError` naming the file."""
    out, seen = [], {}
    for p in paths:
        p = Path(p)
        if not _DIGITS.match(p.stem):
            raise XwingError("a BOP result needs images named N.jpg (seed) or SCENE/rgb/IM.jpg (BOP); "
                             "this name carries no image id", p)
        scene = (int(p.parent.parent.name) if p.parent.name in ("rgb", "gray") and _DIGITS.match(p.parent.parent.name)
                 else 0)
        key = (scene, int(p.stem))
        if key in seen:
            raise XwingError(f"same scene and image id ({key[0]}, {key[1]}) as {seen[key]}", p)
        seen[key] = p
        out.append(key)
    return out


def frame_estimates(results, time_s: float, scene_id: int = 0, obj_id: int = XWING_OBJ_ID) -> list[BopEstimate]:
    """BOP estimates of tracked frames (:class:`~xwing.track.tracker.FrameResult`): im_id = the
    frame index, score = the measurement's quality (0 for a coasted "predicted" frame),
    ``time_s`` for every frame (the tracker times the run, not each frame); lost frames
    are left out."""
    return [BopEstimate.from_T(scene_id, r.index, r.T_cam_obj, r.quality, time_s, obj_id)
            for r in results if r.T_cam_obj is not None]
