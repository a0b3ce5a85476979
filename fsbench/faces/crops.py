"""The aligned crops of real faces that a run swaps and scores, and their tensor form.

Every real face is detected and aligned once, both in the method's template (what the method takes) and in the
evaluation template (how real faces are framed for scoring, whatever the method takes). The runner, the metric
bench and the study builder share these crops, so they live here rather than in any one of them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np
import torch
from tqdm import tqdm

from fsbench.faces.errors import FaceError

if TYPE_CHECKING:
    from fsbench.protocols.base import Item

EVAL_TEMPLATE, EVAL_SIZE = "ffhq-256", 256  # how real faces are cropped for scoring, whatever the method takes


def to_tensor(images: Iterable[np.ndarray]) -> torch.Tensor:
    """uint8 H×W×3 RGB images -> float B×3×H×W in [0, 1]."""
    return torch.from_numpy(np.stack(list(images))).permute(0, 3, 1, 2).float().div_(255.0)


def to_uint8(batch: torch.Tensor) -> np.ndarray:
    """float B×3×H×W in [0, 1] -> uint8 B×H×W×3 images."""
    return (batch.detach().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy())


class CropStore:
    """Detects and aligns each real face once, in the method's template and in the evaluation template."""

    def __init__(self, method_template: str, method_size: int) -> None:
        self.method_template, self.method_size = method_template, method_size
        self.crops: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.failures: dict[str, str] = {}

    def prepare(self, items: Iterable[Item], progress: bool) -> None:
        from fsbench.faces import io

        todo = [i for i in items if i.id not in self.crops and i.id not in self.failures]
        stills = [i for i in todo if i.frame is None]
        by_video: dict[str, list[Item]] = {}
        for item in todo:
            if item.frame is not None:
                by_video.setdefault(str(item.file()), []).append(item)
        bar = tqdm(total=len(todo), desc="detect+align", disable=not (progress and todo), unit="face")
        for item in stills:
            try:
                self._add(item, item.load())
            except FaceError as err:
                self.failures[item.id] = f"{type(err).__name__}: {err}"
            bar.update()
        for path, frames in by_video.items():  # one sequential decode per video, not one per frame
            indices = sorted({i.frame for i in frames})
            try:
                images = dict(zip(indices, io.read_frames(path, indices)))
            except FaceError as err:
                images = {}
                for item in frames:
                    self.failures[item.id] = f"{type(err).__name__}: {err}"
            for item in frames:
                if item.frame in images:
                    try:
                        self._add(item, images[item.frame])
                    except FaceError as err:
                        self.failures[item.id] = f"{type(err).__name__}: {err}"
                bar.update()
        bar.close()

    def _add(self, item: Item, image: np.ndarray) -> None:
        from fsbench.faces.align import align_face
        from fsbench.faces.detect import detect_face

        face = detect_face(image, index=item.face_index, source=item.id)
        method_crop, _ = align_face(image, face.landmarks, self.method_template, self.method_size)
        eval_crop, _ = align_face(image, face.landmarks, EVAL_TEMPLATE, EVAL_SIZE)
        self.crops[item.id] = (method_crop, eval_crop)

    def method_crop(self, item: Item) -> np.ndarray:
        return self.crops[item.id][0]

    def eval_crop(self, item: Item) -> np.ndarray:
        return self.crops[item.id][1]
