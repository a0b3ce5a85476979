"""Images and video frames as RGB ``uint8`` arrays (H×W×3), with a typed error for every input that cannot be used.

Images are decoded with Pillow: it reads the size from the header (so oversized files are refused before any
pixel is decoded), raises on truncated data instead of returning a half-grey picture, and applies EXIF
orientation. Videos are decoded with OpenCV's FFmpeg backend, strictly sequentially: seeking with
``CAP_PROP_POS_FRAMES`` silently lands on the wrong frame for some codecs (measured on the embedded HEVC .mov:
frame 56 returned frame 60), and container frame counts can be wrong (no_face.mp4 claims 98 frames, 95 decode).
"""
from __future__ import annotations

import os
import threading
import warnings
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fsbench.faces.errors import ImageReadError, VideoReadError

# FFmpeg's own log (e.g. "moov atom not found" on a truncated file) would precede the one-line error that names the
# file; it is read at the first capture, so a value the user sets stays theirs. -8 is AV_LOG_QUIET.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

MAX_PIXELS = 80_000_000  # larger images are refused before decoding (an 80 MP RGB image is 240 MB decoded)
MIN_SIDE = 16  # no face detector or swapper can use a smaller picture
BACKGROUND = (128, 128, 128)  # mid grey: transparent pixels are composited on it, neither black nor white

PathArg = str | PathLike


def _check_file(path: Path, error: type[ImageReadError] | type[VideoReadError]) -> None:
    if not path.exists():
        raise error(path, "file does not exist")
    if not path.is_file():
        raise error(path, "not a regular file")
    if path.stat().st_size == 0:
        raise error(path, "file is empty (0 bytes)")


def _check_size(path: Path, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageReadError(path, f"image is {width}x{height} px ({width * height / 1e6:.1f} MP), "
                                   f"over the {MAX_PIXELS / 1e6:g} MP limit")
    if min(width, height) < MIN_SIDE:
        raise ImageReadError(path, f"image is {width}x{height} px; both sides must be at least {MIN_SIDE} px")


def _to_rgb8(path: Path, im: Image.Image) -> np.ndarray:
    """Pillow image of any mode → RGB uint8. 16-bit grey is scaled by 255/65535 (Pillow itself keeps the high
    byte of 16-bit RGB/RGBA); alpha, including palette transparency, is composited on ``BACKGROUND``."""
    if im.mode.startswith("I;16"):
        grey = np.round(np.asarray(im, dtype=np.float32) * (255.0 / 65535.0)).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode in ("I", "F"):
        raise ImageReadError(path, f"32-bit {'integer' if im.mode == 'I' else 'float'} pixels have no defined "
                                   f"8-bit scaling; convert the file to 8 or 16 bits per channel")
    if im.has_transparency_data:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:] / 255.0
        out = rgba[..., :3] * alpha + np.float32(BACKGROUND) * (1.0 - alpha)
        return np.round(out).astype(np.uint8)
    return np.array(im.convert("RGB"))


def read_image(path: PathArg) -> np.ndarray:
    """Read a JPEG, PNG or WebP file (other still formats Pillow decodes work too) as RGB uint8 H×W×3.

    EXIF orientation is applied; grey becomes three equal channels; transparency is composited on mid grey
    (``BACKGROUND``); 16-bit data is scaled to 8 bits. Raises ``ImageReadError`` naming the file and the reason
    for a missing, empty, corrupt, truncated or non-image file, and for images over ``MAX_PIXELS`` (checked from
    the header, before decoding) or with a side under ``MIN_SIDE``.
    """
    path = Path(path)
    _check_file(path, ImageReadError)
    try:
        with warnings.catch_warnings():
            # Pillow warns above ~89 MP and refuses above ~179 MP; our own, lower limit applies first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image in a format Pillow recognises (JPEG, PNG, WebP, ...)") from None
    except Image.DecompressionBombError as e:
        raise ImageReadError(path, f"image is over the {MAX_PIXELS / 1e6:g} MP limit ({e})") from None
    except OSError as e:  # a recognised format with a damaged header, or no permission to read
        raise ImageReadError(path, f"corrupt image header or unreadable file ({e})") from None
    with im:
        _check_size(path, *im.size)
        try:
            im.load()
            im = ImageOps.exif_transpose(im)
        except Exception as e:  # Pillow raises many types on malformed data (OSError, SyntaxError, struct.error...)
            raise ImageReadError(path, f"corrupt or truncated image data ({type(e).__name__}: {e})") from None
        return _to_rgb8(path, im)


_log_lock = threading.Lock()
_quiet = {"depth": 0, "level": 0}


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV's warnings off while a video is opened (its "[ WARN:0@...] can't be used to capture" line on a file
    it cannot open would precede our error); nested and threaded uses restore the level once, at the end."""
    with _log_lock:
        if _quiet["depth"] == 0:
            _quiet["level"] = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        _quiet["depth"] += 1
    try:
        yield
    finally:
        with _log_lock:
            _quiet["depth"] -= 1
            if _quiet["depth"] == 0:
                cv2.utils.logging.setLogLevel(_quiet["level"])


def _open_video(path: Path) -> cv2.VideoCapture:
    _check_file(path, VideoReadError)
    with _quiet_opencv():
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise VideoReadError(path, "OpenCV's FFmpeg backend cannot open it (not a video, or an unsupported "
                                   "or damaged container)")
    return cap


def _no_frame_error(path: Path, cap: cv2.VideoCapture) -> VideoReadError:
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace").strip("\0 ")
    return VideoReadError(path, f"the container opens but no frame could be decoded (codec '{fourcc or '?'}'); "
                                f"the file is damaged or this OpenCV build ({cv2.__version__}) has no decoder for it")


def video_frame_count(path: PathArg) -> int:
    """Number of frames the decoder actually delivers, counted by grabbing every frame.

    Container metadata (``CAP_PROP_FRAME_COUNT``) is not trusted: it can be wrong, and frame indices must mean
    the same frames on every machine. Costs one decode pass (about 1–3 ms per 540p frame on one core).
    """
    path = Path(path)
    cap = _open_video(path)
    try:
        n = 0
        while cap.grab():
            n += 1
        if n == 0:
            raise _no_frame_error(path, cap)
        return n
    finally:
        cap.release()


def video_meta(path: PathArg) -> tuple[float, int]:
    """The container's frame rate and claimed frame count (an estimate: see ``video_frame_count``); 0 when the
    container does not say. Raises ``VideoReadError`` if the file cannot be opened."""
    path = Path(path)
    cap = _open_video(path)
    try:
        return float(cap.get(cv2.CAP_PROP_FPS) or 0.0), max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    finally:
        cap.release()


def iter_frames(path: PathArg, limit: int | None = None) -> Iterator[np.ndarray]:
    """Every frame (or the first ``limit``) as RGB uint8, decoded sequentially, one at a time.

    Raises ``VideoReadError`` if the file cannot be opened or not one frame decodes.
    """
    path = Path(path)
    cap = _open_video(path)
    try:
        n = 0
        while (limit is None or n < limit) and cap.grab():
            ok, bgr = cap.retrieve()
            if not ok:
                raise VideoReadError(path, f"frame {n} was grabbed but could not be decoded")
            n += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if n == 0:
            raise _no_frame_error(path, cap)
    finally:
        cap.release()


def read_frames(path: PathArg, indices: Sequence[int]) -> list[np.ndarray]:
    """The frames at ``indices`` (0-based, in decode order) as RGB uint8 arrays, in the order asked.

    Decodes sequentially up to the largest index (never seeks; see the module docstring). A repeated index
    returns the same array object twice. Raises ``VideoReadError`` if the file cannot be decoded or is shorter
    than an index asked for.
    """
    if any(i < 0 for i in indices):
        raise ValueError(f"frame indices must be >= 0, got {min(indices)}")
    if not indices:
        return []
    path = Path(path)
    wanted, last = set(indices), max(indices)
    frames: dict[int, np.ndarray] = {}
    cap = _open_video(path)
    try:
        n = 0
        while n <= last and cap.grab():
            if n in wanted:
                ok, bgr = cap.retrieve()
                if not ok:
                    raise VideoReadError(path, f"frame {n} was grabbed but could not be decoded")
                frames[n] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            n += 1
        if n == 0:
            raise _no_frame_error(path, cap)
    finally:
        cap.release()
    if last >= n:
        raise VideoReadError(path, f"frame {last} requested but only {n} frames could be decoded")
    return [frames[i] for i in indices]


def evenly_spaced(n_frames: int, k: int) -> list[int]:
    """``k`` frame indices spread evenly over ``n_frames``: the centre of each of ``k`` equal segments.

    Index i (0-based) is ``floor((2i + 1) · n_frames / (2k))``, in exact integer arithmetic; e.g. n=300, k=10
    gives 15, 45, …, 285. The first and last frames (fades, encoder start-up) are avoided and the choice is
    symmetric. If ``k >= n_frames`` every frame is returned (fewer than ``k``).
    """
    if n_frames < 1 or k < 1:
        raise ValueError(f"need n_frames >= 1 and k >= 1, got n_frames={n_frames}, k={k}")
    k = min(k, n_frames)
    return [(2 * i + 1) * n_frames // (2 * k) for i in range(k)]
