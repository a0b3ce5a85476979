"""Typed errors of the face pipeline. The runner records them per item instead of stopping the run.

Each error keeps its constructor arguments in ``args`` (so it pickles across ranks) and builds its message in
``__str__``, which always names the file or frame and what is wrong with it.
"""
from __future__ import annotations

from os import PathLike

from fsbench.errors import FsbenchError


class FaceError(FsbenchError):
    """Base class: an input item the face pipeline cannot use."""


class ImageReadError(FaceError):
    """An image file that cannot be read: missing, empty, corrupt, truncated, not an image, too large or small."""

    def __init__(self, path: str | PathLike, reason: str) -> None:
        super().__init__(str(path), reason)
        self.path, self.reason = str(path), reason

    def __str__(self) -> str:
        return f"cannot read image {self.path}: {self.reason}"


class VideoReadError(FaceError):
    """A video file that cannot be opened or decoded, or a frame it does not have."""

    def __init__(self, path: str | PathLike, reason: str) -> None:
        super().__init__(str(path), reason)
        self.path, self.reason = str(path), reason

    def __str__(self) -> str:
        return f"cannot read video {self.path}: {self.reason}"


class NoFaceError(FaceError):
    """No face scored above the detector threshold. ``source`` names the image or frame (e.g. ``video.mp4#120``)."""

    def __init__(self, source: str, min_score: float | None = None) -> None:
        super().__init__(source, min_score)
        self.source, self.min_score = source, min_score

    def __str__(self) -> str:
        where = self.source or "the image"
        threshold = "" if self.min_score is None else f" with score >= {self.min_score:g}"
        return f"no face detected{threshold} in {where}"


class FaceIndexError(FaceError, IndexError):
    """A face index beyond the number of faces found (faces are ranked by box area, largest first)."""

    def __init__(self, source: str, index: int, found: int) -> None:
        super().__init__(source, index, found)
        self.source, self.index, self.found = source, index, found

    def __str__(self) -> str:
        return (f"face index {self.index} requested in {self.source or 'the image'}, "
                f"but only {self.found} face(s) were detected")
