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
from fsbench.progress import bar as progress_bar

if TYPE_CHECKING:
    from fsbench.protocols.base import Item

EVAL_TEMPLATE, EVAL_SIZE = "ffhq-256", 256  # how real faces are cropped for scoring, whatever the method takes


def to_tensor(images: Iterable[np.ndarray]) -> torch.Tensor:
    """uint8 H×W×3 RGB images -> float B×3×H×W in [0, 1]."""
    return torch.from_numpy(np.stack(list(images))).permute(0, 3, 1, 2).float().div_(255.0)


def to_uint8(batch: torch.Tensor) -> np.ndarray:
    """float B×3×H×W in [0, 1] -> contiguous uint8 B×H×W×3 images (values outside [0, 1] are clipped)."""
    x = batch.detach().to("cpu", torch.float32).mul(255)  # one new tensor, then rounded and clipped in place
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


class CropStore:
    """Detects and aligns each real face once, in the method's template and in the evaluation template."""

    def __init__(self, method_template: str, method_size: int) -> None:
        self.method_template, self.method_size = method_template, method_size
        self.crops: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.failures: dict[str, str] = {}

    def prepare(self, items: Iterable[Item], progress: bool) -> None:
        from fsbench.faces import io

        todo = [i for i in items if i.id not in self.crops and i.id not in self.failures]
        by_video: dict[str, list[Item]] = {}
        for item in todo:
            if item.frame is not None:
                by_video.setdefault(str(item.file()), []).append(item)
        bar = progress_bar("detect+align", total=len(todo), disable=not (progress and todo), unit="face")
        self.add([(i, None) for i in todo if i.frame is None], bar)  # each still decoded by the thread that crops it
        for path, frames in by_video.items():  # one sequential decode per video, not one per frame
            indices = sorted({i.frame for i in frames})
            try:
                images = dict(zip(indices, io.read_frames(path, indices)))
            except FaceError as err:
                images = {}
                for item in frames:
                    self.failures[item.id] = f"{type(err).__name__}: {err}"
            self.add([(i, images[i.frame]) for i in frames if i.frame in images], bar)
            bar.update(sum(i.frame not in images for i in frames))
        bar.close()

    def add(self, jobs: list[tuple[Item, np.ndarray | None]], bar: tqdm | None = None) -> None:
        """Detects and aligns each item's face (in its given image, or the item's own file where ``None``) on the
        per-face worker threads (fsbench.workers); a face that cannot be had is recorded in ``failures``."""
        from fsbench.workers import map_faces

        for (item, _), outcome in zip(jobs, map_faces(self._crop, jobs)):
            if isinstance(outcome, str):
                self.failures[item.id] = outcome
            else:
                self.crops[item.id] = outcome
            if bar is not None:
                bar.update()

    def _crop(self, job: tuple[Item, np.ndarray | None]) -> tuple[np.ndarray, np.ndarray] | str:
        """(method crop, evaluation crop) of the job's face, or why there is none."""
        from fsbench.faces.align import align_face
        from fsbench.faces.detect import detect_face

        item, image = job
        try:
            image = item.load() if image is None else image
            face = detect_face(image, index=item.face_index, source=item.id)
        except FaceError as err:
            return f"{type(err).__name__}: {err}"
        eval_crop, _ = align_face(image, face.landmarks, EVAL_TEMPLATE, EVAL_SIZE)
        if (self.method_template, self.method_size) == (EVAL_TEMPLATE, EVAL_SIZE):
            return eval_crop, eval_crop
        method_crop, _ = align_face(image, face.landmarks, self.method_template, self.method_size)
        return method_crop, eval_crop

    def method_crop(self, item: Item) -> np.ndarray:
        return self.crops[item.id][0]

    def eval_crop(self, item: Item) -> np.ndarray:
        return self.crops[item.id][1]
