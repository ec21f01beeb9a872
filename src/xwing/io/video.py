"""Frames in, videos out: the I/O of ``xwing track`` (OpenCV, imageio; no torch, no GL).

Sources (:func:`open_source`), each yielding RGB uint8 frames (H, W, 3):

* a video file (MP4/AVI/MOV/MKV/GIF/...), decoded by OpenCV's FFmpeg backend;
* a directory of images (``.jpg``/``.jpeg``/``.png``/``.bmp``), in natural order
  (``2.jpg`` before ``10.jpg``);
* a sequence directory (``xwing render --sequence``): its ``video.mp4`` is read,
  and its ``N_mat.json`` + ``camera_info.json`` are the truth of frame N; a
  seed-format directory (``N.jpg`` + ``N_mat.json``) gives truth the same way;
* a camera index (``0``, ``1``, ...) where OpenCV can open one.

Decoding runs in a reader thread a few frames ahead (OpenCV releases the GIL), so
it overlaps with inference.

Damaged input goes on where it can, said in one line (:func:`xwing.errors.warn`):
an image of a directory that is cut short or corrupt is yielded as ``None`` (an
unreadable frame; ``strict=True`` makes it an error); a video that ends before the
frame count in its header, or whose decoder fails mid-stream, ends there and the
frames read so far are used. Grey, RGBA and 16-bit images become RGB uint8
(:mod:`xwing.io.images`).

Writers: :class:`Mp4Writer` (H.264 at 30 fps through imageio-ffmpeg, streamed:
memory does not grow with the video's length) and :class:`GifWriter` (delays 30,
30, 40 ms: 33.3 ms per frame, the seed's timing, in the GIF's 10 ms units; a GIF
is written at once on close, so it holds at most ``max_frames`` frames, kept as
palette images). Both write to a temporary file renamed on :meth:`close`, so no
half-written file is ever left; :meth:`abort` removes it.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xwing.errors import DamagedFileError, XwingError, warn
from xwing.geometry.camera import Camera, T_cam_obj_from_model_matrix
from xwing.io.atomic import AtomicFile
from xwing.io.calibration import load_camera_info
from xwing.io.dataset import load_matrix
from xwing.io.images import read_image, read_image_or_warn, to_rgb8

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_NAME = "video.mp4"
GIF_DELAYS_MS = (30, 30, 40)
MP4_FPS = 30


def _natural_key(path: Path):
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path.name)]


@dataclass
class FrameSource:
    """Where frames come from.

    Attributes:
        spec: what the user gave.
        kind: "video", "images", "sequence" or "camera".
        width, height: frame size.
        fps: frames per second (30 when unknown).
        n_frames: frame count, or None when unknown (cameras, some streams).
        camera: the camera stored with the frames (sequence/seed directories), else None.
        truth: frame index -> ``T_cam_obj`` (4, 4) where known.
    """

    spec: str
    kind: str
    width: int
    height: int
    fps: float
    n_frames: int | None
    camera: Camera | None = None
    truth: dict[int, np.ndarray] = field(default_factory=dict)
    _open: object = None  # () -> iterator of RGB frames

    def frames(self, prefetch: int = 8) -> Iterator[tuple[int, float, np.ndarray | None]]:
        """Yield ``(index, time_s, rgb)``, ``rgb`` None for an unreadable frame; decoding runs
        ``prefetch`` frames ahead in a thread."""
        it = self._open()
        if prefetch <= 0:
            for i, frame in enumerate(it):
                yield i, i / self.fps, frame
            return
        q: queue.Queue = queue.Queue(maxsize=prefetch)
        done = object()
        stop = threading.Event()

        def reader():
            try:
                for frame in it:
                    while not stop.is_set():
                        try:
                            q.put(frame, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        break
            except BaseException as e:  # handed to the consumer, which raises it
                q.put(e)
            finally:
                q.put(done)

        thread = threading.Thread(target=reader, daemon=True, name="xwing-reader")
        thread.start()
        i = 0
        try:
            while True:
                item = q.get()
                if item is done:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield i, i / self.fps, item
                i += 1
        finally:
            stop.set()
            while thread.is_alive():  # drain so the reader can leave put()
                try:
                    q.get(timeout=0.05)
                except queue.Empty:
                    pass


def _cv2_frames(cap, path, expected: int | None = None) -> Iterator[np.ndarray]:
    """Frames of an open ``cv2.VideoCapture`` as RGB; ``expected``: the header's frame count,
    to tell a video cut short from one that ended."""
    import cv2

    n = 0
    try:
        while True:
            try:
                ok, bgr = cap.read()
            except cv2.error as e:
                warn(f"the video's decoder failed after {n} frames ({str(e).strip().splitlines()[-1]}); "
                     f"the {n} frames before are used", path, once=f"broken:{path}")
                break
            if not ok:
                break
            n += 1
            yield to_rgb8(bgr, path)
        if expected and n < expected:
            warn(f"the video ends after {n} of the {expected} frames its header gives (cut short or damaged); "
                 f"the {n} frames read are used", path, once=f"short:{path}")
    finally:
        cap.release()


def _open_video(path: Path, spec: str, kind: str = "video") -> FrameSource:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        if _mp4_without_index(path):
            raise DamagedFileError("this MP4 has no index (moov box): cut short while it was being written", path)
        raise XwingError("cannot open this video (unreadable or not a video)", path)
    ok, first = cap.read()
    cap.release()
    if not ok or first is None:
        raise XwingError("the video has no frames", path)
    probe = cv2.VideoCapture(str(path))
    fps = probe.get(cv2.CAP_PROP_FPS)
    count = int(probe.get(cv2.CAP_PROP_FRAME_COUNT))
    probe.release()
    fps = fps if fps and np.isfinite(fps) and 1 <= fps <= 1000 else 30.0
    h, w = first.shape[:2]
    count = count if count > 0 else None
    return FrameSource(spec, kind, w, h, float(fps), count,
                       _open=lambda: _cv2_frames(cv2.VideoCapture(str(path)), path, count))


def _mp4_without_index(path: Path) -> bool:
    """An MP4/MOV (``ftyp`` box first) in which no ``moov`` box follows: its writer stopped early."""
    import mmap

    with open(path, "rb") as f:
        if f.read(12)[4:8] != b"ftyp":
            return False
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return m.find(b"moov") < 0


def _image_frames(files: list[Path], width: int, height: int, strict: bool) -> Iterator[np.ndarray | None]:
    for f in files:
        img = read_image_or_warn(f, strict)
        if img is None:
            yield None
            continue
        if img.shape[:2] != (height, width):
            raise XwingError(f"image is {img.shape[1]} x {img.shape[0]}, the first image is {width} x {height}", f)
        yield img


def _read_truth(root: Path, camera: Camera | None) -> dict[int, np.ndarray]:
    if camera is None:
        return {}
    truth = {}
    for p in root.glob("*_mat.json"):
        m = re.match(r"^(\d+)_mat\.json$", p.name)
        if m:
            truth[int(m.group(1))] = T_cam_obj_from_model_matrix(load_matrix(p), camera.view_matrix)
    return truth


def open_source(spec: str | Path, strict: bool = False) -> FrameSource:
    """Open a video file, an image/sequence directory or a camera index; see the module doc.

    ``strict``: a damaged image in a directory raises instead of giving an unreadable frame.
    """
    spec = str(spec)
    path = Path(spec)
    if not path.exists() and re.fullmatch(r"\d+", spec):
        return _open_camera(int(spec))
    if not path.exists():
        raise XwingError("input not found (want a video file, an image directory or a camera index)", path)
    if path.is_file():
        return _open_video(path, spec)
    info = path / "camera_info.json"
    if (path / VIDEO_NAME).is_file():
        src = _open_video(path / VIDEO_NAME, spec, "sequence")
        if info.is_file():
            src.camera = load_camera_info(info, src.width, src.height)
            src.truth = _read_truth(path, src.camera)
        return src
    files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                   key=_natural_key)
    if not files:
        raise XwingError(f"no images ({', '.join(IMAGE_SUFFIXES)}) and no {VIDEO_NAME} in this directory", path)

    h, w = _frame_size(files, strict)
    src = FrameSource(spec, "images", w, h, 30.0, len(files), _open=lambda: _image_frames(files, w, h, strict))
    if info.is_file():
        # A seed-format directory: frame i is file N.jpg, whose truth is N_mat.json.
        src.camera = load_camera_info(info, w, h)
        by_file = _read_truth(path, src.camera)
        for i, f in enumerate(files):
            if f.stem.isdigit() and int(f.stem) in by_file:
                src.truth[i] = by_file[int(f.stem)]
        src.kind = "sequence" if src.truth else "images"
    return src


def _frame_size(files: list[Path], strict: bool) -> tuple[int, int]:
    """(height, width) of the first readable image: a damaged first image is one unreadable frame."""
    for f in files:
        try:
            return read_image(f).shape[:2]
        except DamagedFileError:
            if strict:
                raise
    raise DamagedFileError("no image in this directory can be read", files[0].parent)


def _open_camera(index: int) -> FrameSource:
    import cv2

    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        raise XwingError(f"OpenCV cannot open camera {index}")
    ok, first = cap.read()
    if not ok:
        cap.release()
        raise XwingError(f"camera {index} gives no frames")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    h, w = first.shape[:2]

    def frames():
        yield to_rgb8(first, f"camera {index}")
        yield from _cv2_frames(cap, f"camera {index}")

    return FrameSource(str(index), "camera", w, h, float(fps), None, _open=frames)


# --- writers ----------------------------------------------------------------------------------


class Mp4Writer:
    """H.264 MP4 at ``fps`` (default 30) via imageio-ffmpeg; odd sizes are padded to even."""

    def __init__(self, path: str | Path, fps: float = MP4_FPS, quality: int = 7):
        self.path = Path(path)
        self.fps, self.quality = fps, quality
        self._file: AtomicFile | None = None
        self._gen = None
        self.count = 0

    def write(self, frame_rgb: np.ndarray) -> None:
        h, w = frame_rgb.shape[:2]
        if self._gen is None:
            import imageio_ffmpeg

            self._file = AtomicFile(self.path)
            self._size = (w + w % 2, h + h % 2)
            self._gen = imageio_ffmpeg.write_frames(str(self._file.tmp), self._size, fps=self.fps, codec="libx264",
                                                    pix_fmt_in="rgb24", pix_fmt_out="yuv420p", quality=self.quality,
                                                    macro_block_size=1, ffmpeg_log_level="error",
                                                    output_params=["-f", "mp4"])
            self._gen.send(None)
        if (w + w % 2, h + h % 2) != self._size:
            raise ValueError(f"frame {w} x {h} does not match the video's {self._size}")
        if w % 2 or h % 2:
            frame_rgb = np.pad(frame_rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        self._gen.send(np.ascontiguousarray(frame_rgb, dtype=np.uint8))
        self.count += 1

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None
            self._file.commit()

    def abort(self) -> None:
        if self._gen is not None:
            try:
                self._gen.close()
            except Exception:
                pass
            self._gen = None
            self._file.discard()


class GifWriter:
    """Animated GIF, looping, delays cycling through :data:`GIF_DELAYS_MS`.

    A GIF is encoded at once on :meth:`close`, so frames wait in memory: as palette
    images (one byte a pixel, the conversion Pillow's GIF encoder makes anyway), at
    most ``max_side`` on their longer side, and only the first ``max_frames`` (None:
    all); :attr:`dropped` counts the frames left out.
    """

    def __init__(self, path: str | Path, max_side: int = 512, max_frames: int | None = None):
        self.path = Path(path)
        self.max_side = max_side
        self.max_frames = max_frames
        self.frames: list = []
        self.dropped = 0

    def write(self, frame_rgb: np.ndarray) -> bool:
        """Add a frame; False when it was left out (``max_frames`` reached)."""
        from PIL import Image

        if self.max_frames is not None and len(self.frames) >= self.max_frames:
            self.dropped += 1
            return False
        h, w = frame_rgb.shape[:2]
        s = self.max_side / max(h, w)
        if s < 1:
            import cv2

            frame_rgb = cv2.resize(frame_rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        self.frames.append(Image.fromarray(np.ascontiguousarray(frame_rgb, dtype=np.uint8)).convert(
            "P", palette=Image.Palette.ADAPTIVE))
        return True

    def close(self) -> None:
        if not self.frames:
            return
        f = AtomicFile(self.path)
        try:
            images = self.frames
            delays = [GIF_DELAYS_MS[i % len(GIF_DELAYS_MS)] for i in range(len(images))]
            # optimize=False and disposal=1 keep every frame (no merging of equal frames).
            images[0].save(f.tmp, format="GIF", save_all=True, append_images=images[1:], duration=delays,
                           loop=0, optimize=False, disposal=1)
            f.commit()
        except BaseException:
            f.discard()
            raise
        self.frames = []

    def abort(self) -> None:
        self.frames = []


def gif_delays_ms(path: str | Path) -> list[int]:
    """The per-frame delays (ms) stored in a GIF."""
    from PIL import Image

    out = []
    with Image.open(path) as im:
        for k in range(getattr(im, "n_frames", 1)):
            im.seek(k)
            out.append(int(im.info.get("duration", 0)))
    return out
