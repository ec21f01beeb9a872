"""Image files in and out: RGB ``uint8`` (H, W, 3) inside xwing, whatever the file holds.

Reading (:func:`read_image`) checks that the file is whole before decoding it,
because decoders are lenient: OpenCV decodes a JPEG cut short into an image
whose lower part is grey, and says so only on stderr. A JPEG must end with its
end-of-image marker, a PNG with its ``IEND`` chunk and every PNG chunk's CRC must
match; a file that fails raises :class:`~xwing.errors.DamagedFileError`, which
readers of many images turn into a warning (the image counted as unreadable).

Conversions, each said once per process (:func:`~xwing.errors.warn`): grey ->
RGB (the grey value in all three channels), RGBA -> RGB (alpha dropped: the
renderer's images and a camera's frames carry none), 16-bit -> 8 bits
(``round(v / 257)``, which maps 0 -> 0 and 65535 -> 255 exactly).

Writes are atomic (temporary file + rename); OpenCV's BGR stays at the file boundary.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from xwing.errors import DamagedFileError, XwingError, warn
from xwing.io.atomic import atomic_write_bytes

_JPEG_SOI, _JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_whole(data: bytes, path: str | Path) -> None:
    """Raise :class:`DamagedFileError` where a JPEG or PNG file is cut short or its PNG chunks
    are corrupt; other formats (BMP, ...) are left to the decoder."""
    if data.startswith(_JPEG_SOI):
        # Some writers pad after the marker (zeros, newlines); nothing else may follow it.
        if not data.rstrip(b"\x00\r\n ").endswith(_JPEG_EOI):
            raise DamagedFileError("JPEG is cut short (no end-of-image marker)", path)
    elif data.startswith(_PNG_SIGNATURE):
        pos = len(_PNG_SIGNATURE)
        while True:
            if pos + 8 > len(data):
                raise DamagedFileError("PNG is cut short (no IEND chunk)", path)
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            end = pos + 12 + length
            if end > len(data):
                raise DamagedFileError(f"PNG is cut short (inside its {kind.decode('latin-1')} chunk)", path)
            crc = struct.unpack(">I", data[end - 4:end])[0]
            if zlib.crc32(data[pos + 4:end - 4]) != crc:
                raise DamagedFileError(f"PNG is corrupt (CRC mismatch in its {kind.decode('latin-1')} chunk)", path)
            if kind == b"IEND":
                return
            pos = end


def to_rgb8(img: np.ndarray, path: str | Path, bgr: bool = True) -> np.ndarray:
    """A decoded image (H, W), (H, W, 3) or (H, W, 4), uint8 or uint16 -> RGB uint8 (H, W, 3).

    ``bgr``: the channels are OpenCV's order (B, G, R[, A]). Conversions are said once.
    """
    import cv2

    if img.dtype == np.uint16:
        warn("16-bit images are scaled to 8 bits", path, once="16-bit")
        img = np.round(img / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise XwingError(f"unsupported pixel type {img.dtype} (want 8- or 16-bit)", path)
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        warn("grey images are converted to RGB", path, once="grey")
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2RGB)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise XwingError(f"unsupported image layout {img.shape} (want grey, RGB or RGBA)", path)
    if img.shape[2] == 4:
        warn("RGBA images are converted to RGB (alpha dropped)", path, once="rgba")
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if bgr else np.ascontiguousarray(img)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file -> RGB uint8 (H, W, 3); see the module doc.

    Raises:
        XwingError: the file is missing.
        DamagedFileError: the file is cut short, corrupt or cannot be decoded.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise XwingError("file not found", path)
    data = path.read_bytes()
    check_whole(data, path)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DamagedFileError("unreadable image (corrupt or not an image)", path)
    return to_rgb8(img, path)


def read_image_or_warn(path: str | Path, strict: bool = False) -> np.ndarray | None:
    """:func:`read_image` for readers of many images: a damaged file is a warning naming it
    (once) and None, the image counted as unreadable; ``strict``: raised instead."""
    try:
        return read_image(path)
    except DamagedFileError as e:
        if strict:
            raise
        warn(f"{e}; counted as unreadable", once=f"damaged:{path}")
        return None


def encode_jpeg(image_rgb: np.ndarray, quality: int = 95) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def write_image(path: str | Path, image_rgb: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an RGB image atomically; the format follows the suffix (.jpg or .png)."""
    import cv2

    path = Path(path)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        data = encode_jpeg(image_rgb, jpeg_quality)
    else:
        ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise XwingError("cannot encode image with this suffix", path)
        data = buf.tobytes()
    atomic_write_bytes(path, data)
