"""`fsbench swap`: one face swapped into a photo, or into every frame of a video.

The pipeline is the benchmark's: detect (``fsbench.faces.detect``), align with the template and size the method's
card declares, call the method, paste the swapped crop back into the full frame through the template's soft mask.
The source identity is computed once (``Method.embed_identity``) and reused for every frame; a source face smaller
than the method's input is swapped with a warning that its identity will be weak. Video is decoded and written
with OpenCV, under a temporary name renamed when every frame is written; audio is not kept. A frame in which the
chosen face is not found is written unchanged; a video in which it is never found is an error.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from fsbench.errors import UsageError
from fsbench import registry
from fsbench.api import Method
from fsbench.faces import io
from fsbench.faces.align import align_face
from fsbench.faces.detect import detect_face
from fsbench.faces.errors import FaceIndexError, NoFaceError
from fsbench.faces.paste import paste_back
from fsbench.faces.crops import to_tensor, to_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}  # output container -> the FourCC written into it
VIDEO_INPUTS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")  # a target with one of these is read as video
DEFAULT_FPS = 25.0  # when the target's container does not state its frame rate


@dataclass
class SwapReport:
    out: Path
    video: bool
    frames: int  # frames written (1 for an image)
    unchanged: int  # frames written unchanged because the chosen face was not found in them


class FaceSwapper:
    """A method with one source identity, applied to whole frames."""

    def __init__(self, method: Method, source: np.ndarray, source_name: str) -> None:
        card = method.card
        self.method, self.template, self.size = method, card.template, card.input_size
        face = detect_face(source, 0, source=source_name)  # the source's largest face
        crop, matrix = align_face(source, face.landmarks, self.template, self.size)
        self.source_upscale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # crop px per source px
        with torch.no_grad():
            self.identity: Any = method.embed_identity(to_tensor([crop]).to(method.device))

    def __call__(self, frame: np.ndarray, face_index: int = 0, name: str = "") -> np.ndarray:
        """``frame`` with its ``face_index``-th largest face swapped; raises NoFaceError / FaceIndexError."""
        face = detect_face(frame, face_index, source=name)
        crop, matrix = align_face(frame, face.landmarks, self.template, self.size)
        with torch.no_grad():
            swapped = self.method.swap_embedded(self.identity, to_tensor([crop]).to(self.method.device))
        return paste_back(frame, to_uint8(swapped)[0], matrix, self.template)


def source_face_note(source: str, method: str, size: int, upscale: float) -> str:
    """Why a source face smaller than the method's input gives a weak identity: the crop is upscaled from it."""
    return (f"the source face in {source} is smaller than the {size} px crop {method} takes (it covers "
            f"{size / upscale:.0f} px, upscaled ×{upscale:.1f}), so the swap's identity will be weak; a photo with "
            f"a larger face gives a stronger one")


def _check_out(out: Path, target: Path) -> None:
    suffix = out.suffix.lower()
    video_target = target.suffix.lower() in VIDEO_INPUTS
    if suffix not in IMAGE_SUFFIXES and suffix not in VIDEO_CODECS:
        raise UsageError(f"{out}: unsupported output suffix '{out.suffix}' (images: {' '.join(IMAGE_SUFFIXES)}; "
                         f"videos: {' '.join(VIDEO_CODECS)})")
    if video_target != (suffix in VIDEO_CODECS):
        kind, wanted = ("a video", VIDEO_CODECS) if video_target else ("an image", IMAGE_SUFFIXES)
        raise UsageError(f"{out}: the target {target} is {kind}; write it to one of {' '.join(wanted)}")
    folder = out.parent
    if not folder.is_dir():
        raise UsageError(f"{out}: the output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{out}: the output folder {folder} is not writable")
    if out.is_dir():
        raise UsageError(f"{out}: is a folder, expected a file name")


def swap_file(method: str, source: str | Path, target: str | Path, out: str | Path, face: int = 0,
              device: str = "cpu", weights: Path | None = None, limit_frames: int | None = None,
              progress: bool = True) -> SwapReport:
    """Swap the largest face of the image ``source`` into the ``face``-th largest face of ``target`` (an image,
    or a video when its suffix is one of ``VIDEO_INPUTS``) and write ``out``, with the method's shipped weights
    or the ``weights`` file given.

    Bad input raises before the method is loaded: ``FaceError`` subclasses for unreadable files and a source
    without a face, ``registry.UnknownNameError`` for an unknown method, ``ValueError`` for the rest; every
    message names the file and the problem. For an image target, a missing face is an error; for a video, the
    frames without it are written unchanged and counted in the report.
    """
    source, target, out = Path(source), Path(target), Path(out)
    if face < 0:
        raise UsageError(f"--face must be >= 0 (0 is the largest face), got {face}")
    if limit_frames is not None and limit_frames < 1:
        raise UsageError(f"--limit-frames must be >= 1, got {limit_frames}")
    _check_out(out, target)
    registry.methods.get(method)  # an unknown name fails before any file is read
    source_image = io.read_image(source)
    video = out.suffix.lower() in VIDEO_CODECS
    fps, claimed = io.video_meta(target) if video else (0.0, 0)
    target_image = None if video else io.read_image(target)
    swapper = FaceSwapper(registry.create_method(method, device, weights), source_image, str(source))
    if swapper.source_upscale > 1:
        print(f"warning: {source_face_note(str(source), method, swapper.size, swapper.source_upscale)}",
              file=sys.stderr)
    if target_image is not None:
        result = swapper(target_image, face, str(target))
        try:
            Image.fromarray(result).save(out, **({"quality": 95} if out.suffix.lower() in (".jpg", ".jpeg") else {}))
        except (OSError, ValueError) as err:
            raise UsageError(f"{out}: cannot write the image ({err})") from None
        return SwapReport(out, False, 1, 0)
    return _swap_video(swapper, target, out, face, fps or DEFAULT_FPS, claimed, limit_frames, progress)


def _swap_video(swapper: FaceSwapper, target: Path, out: Path, face: int, fps: float, claimed: int,
                limit_frames: int | None, progress: bool) -> SwapReport:
    """Every frame swapped into a temporary file beside ``out``, renamed to ``out`` when all are written: an
    interrupted or failed swap leaves ``out`` as it was and no partial file. A video in which the chosen face is
    never found is an error, not a copy of the target."""
    partial = out.with_name(f".{out.stem}.partial{out.suffix}")
    try:
        frames, unchanged, most = _write_frames(swapper, target, partial, face, fps, claimed, limit_frames, progress)
        if frames and unchanged == frames:
            raise UsageError(f"{target}: face #{face} was not found in any of its {frames} frames (at most {most} "
                             f"face(s) in a frame{'; --face 0 is the largest' if face else ''}); nothing written")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return SwapReport(out, True, frames, unchanged)


def _write_frames(swapper: FaceSwapper, target: Path, partial: Path, face: int, fps: float, claimed: int,
                  limit_frames: int | None, progress: bool) -> tuple[int, int, int]:
    """Frames written to ``partial``, frames written unchanged (face not found), the most faces found in a frame."""
    total = min(claimed, limit_frames) if claimed and limit_frames else (claimed or limit_frames or None)
    writer: cv2.VideoWriter | None = None
    frames = unchanged = most = 0
    try:
        for frame in tqdm(io.iter_frames(target, limit_frames), total=total, desc=f"swap {target.name}",
                          unit="frame", disable=not progress):
            if writer is None:
                h, w = frame.shape[:2]
                fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[partial.suffix.lower()])
                writer = cv2.VideoWriter(str(partial), fourcc, fps, (w, h))
                if not writer.isOpened():
                    raise UsageError(f"{partial.parent}: OpenCV cannot write a {partial.suffix} video of {w}x{h} px "
                                     f"there")
            try:
                frame = swapper(frame, face, f"{target}#{frames}")
                most = max(most, face + 1)
            except NoFaceError:
                unchanged += 1
            except FaceIndexError as err:
                unchanged += 1
                most = max(most, err.found)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            frames += 1
    finally:
        if writer is not None:
            writer.release()
    return frames, unchanged, most
