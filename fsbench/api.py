"""The plugin contract: the types a method subclasses and declares (:class:`Method`, :class:`MethodCard`) and what a
method needs to swap (alignment templates, weights files, identity encoders, inference precision and speed-ups).

A method sees aligned crops, never raw frames: fsbench detects the face, aligns it with the template and size
the method's card declares, calls :meth:`Method.swap`, and pastes the result back. A method's training code builds
on the training toolkit, :mod:`fsbench.train`, which is not part of this contract.
"""
from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from fsbench.errors import FsbenchError, UsageError
from fsbench.faces.align import realign
from fsbench.faces.templates import TEMPLATES, face_mask
from fsbench.nets.fold import fold_batchnorm
from fsbench.nets.mobilefacenet import load_mobilefacenet
from fsbench.nets.onnx_graph import OnnxGraph, open_graph
from fsbench.nets.prepack import prepack_convolutions
from fsbench.timing import interleaved_ms, matmul_gflops
from fsbench.weights import (exported_metadata, load_weights, prefixed, read_weights, recorded_architecture,
                             recorded_config, training_recognisers)

__all__ = ["FsbenchError", "Method", "MethodCard", "OnnxGraph", "TEMPLATES", "UsageError", "asset_path",
           "asset_sha256", "exported_metadata", "face_mask", "fold_batchnorm", "identity_encoder",
           "inference_dtype", "interleaved_ms", "landmarks68", "load_asset", "load_mobilefacenet",
           "load_weights", "matmul_gflops", "native_bf16_cpu", "open_graph", "prefixed",
           "prepack_convolutions", "read_weights", "realign", "recorded_architecture", "recorded_config",
           "require_assets", "training_recognisers"]


@dataclass(frozen=True)
class MethodCard:
    """What a method declares about itself; recorded in every result."""

    name: str
    version: str
    input_size: int  # side of the square aligned crop the method takes
    template: str  # alignment template name, a key of TEMPLATES
    value_range: tuple[float, float] = (0.0, 1.0)
    checkpoint: str | None = None  # file name of the weights, next to the method's code
    checkpoint_sha256: str | None = None
    parameters: int = 0
    licence: str = ""
    paper: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise ValueError(f"method card '{self.name}': unknown template '{self.template}' "
                             f"(known: {', '.join(TEMPLATES)})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Method(ABC):
    """A face-swapping method. Tensors are float ``B×3×H×W`` in [0, 1], RGB, aligned with the card's template."""

    card: MethodCard

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    @abstractmethod
    def swap(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Put the identity of ``source`` onto ``target``; returns a tensor shaped like ``target``."""

    def embed_identity(self, source: torch.Tensor) -> Any:
        """Identity precompute: computed once per source. The default passes the crop through."""
        return source

    def swap_embedded(self, identity: Any, target: torch.Tensor) -> torch.Tensor:
        """Swap with a precomputed identity; speed is measured on this call (the precompute excluded)."""
        return self.swap(identity, target)

    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks the method runs at swap time (for parameter counts, FLOPs and weight size)."""
        return {}

    @classmethod
    def untrained(cls, config: str, device: str | torch.device = "cpu") -> Method:
        """The method's network in a named (or JSON-file) training configuration with random weights, for
        ``fsbench bench --config`` (speed, size, FLOPs of a configuration no checkpoint exists for). Never for
        protocol runs: its swaps are noise. Methods without training configurations keep this default."""
        raise UsageError(f"method '{cls.card.name}' has no training configurations to bench")

    @classmethod
    def train(cls, config: str, out: Path, device: str = "cpu", *, init_from: Path | None = None,
              time_limit_s: float | None = None, overrides: Mapping[str, Any] | None = None) -> Path:
        """Train the method with its named (or JSON-file) configuration, ``overrides`` applied (dotted keys for
        nested fields), into the run folder ``out``; resumes from ``out``, and a fresh run starts from the exported
        weights ``init_from`` where given (with fresh optimisers). ``time_limit_s`` ends the call with a checkpoint.

        Returns the path of the exported weights. Methods without training code keep this default.
        """
        raise UsageError(f"method '{cls.card.name}' has no training code")

    @classmethod
    def bundle(cls, config: str, out: Path, *, overrides: Mapping[str, Any] | None = None,
               quality: int | None = None) -> Path:
        """Write the training bundle of a configuration, ``overrides`` applied, to the folder ``out`` and return it:
        what :meth:`train` needs on a machine with no network (:mod:`fsbench.train.bundle`; ``quality``: lossy crops).
        Methods without one keep this default."""
        raise UsageError(f"method '{cls.card.name}' has no training bundle")

    @classmethod
    def card_for(cls, weights: Path) -> MethodCard:
        """The card of this method loaded from the weights file ``weights``: what the file itself records (its
        configuration, input size, training recognisers). :func:`fsbench.registry.create_method` then names the
        file and its sha256 on it. Methods whose files record nothing keep this default, the class's card."""
        return cls.card

    def export_onnx(self, path: Path) -> Path:
        """Write the swap network to ``path`` as ONNX (``fsbench export``) and return the path. Methods without a
        deployable graph keep this default."""
        raise UsageError(f"method '{self.card.name}' cannot be exported to ONNX")


def native_bf16_cpu(device: torch.device) -> bool:
    """Whether ``device`` is a CPU whose oneDNN has native bf16 kernels (on other CPUs bf16 is emulated, many times
    slower than fp32); inference's and training's ``auto`` precision both ask this."""
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def inference_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype a method's fast path runs in: ``fp32``, ``bf16``, or ``auto`` (bf16 where oneDNN has native bf16
    kernels on this CPU, else fp32; CUDA runs fp32)."""
    if precision == "auto":
        return torch.bfloat16 if native_bf16_cpu(device) else torch.float32
    if precision not in ("fp32", "bf16"):
        raise UsageError(f"precision must be auto, fp32 or bf16, got '{precision}'")
    return torch.bfloat16 if precision == "bf16" else torch.float32


# The lowest score of dlib's HOG frontal-face detector at which landmarks68 accepts a crop. Real faces aligned to
# ffhq-256 scored 0.59 to 2.7 (10 stills and 41 video frames of the embedded media; a low-resolution cameraman
# -0.06); noise, a flat grey crop, a landscape drawing and a photo of an Iron Man mask gave no detection at all
# at -1.5, and a skull mask -0.99. YuNet has already called the crop a face, so this only rejects crops where dlib
# cannot place its landmarks, not the faces its default threshold (0) is unsure of.
_MIN_HOG_SCORE = -0.5


@functools.cache
def _hog_detector() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


def landmarks68(crop: np.ndarray, template: str) -> np.ndarray:
    """The 68 iBUG 300-W landmarks (68×2 float32, pixel x, y) of the face in an aligned crop.

    ``crop`` is a square RGB uint8 ``H×W×3`` crop aligned with ``template`` (any size). Since alignment puts the
    face's five points on the template's, the face box is derived from the template's five points scaled to the
    crop: the square :func:`fsbench.faces.landmarks.dlib_box` builds from five points (centred midway between the
    eye and mouth midpoints, side 2.31 × their distance, the box dlib's HOG detector gives and its shape
    predictor was trained on). dlib's 68-point predictor (asset ``dlib-68``) runs from that box.

    The predictor returns 68 points for any pixels, face or not, so the crop is first checked with dlib's HOG
    face detector: ``ValueError`` if it finds no face scoring at least ``_MIN_HOG_SCORE`` whose centre lies
    within a quarter of the box side of the template box's centre.
    """
    from fsbench.faces.detect import Face
    from fsbench.faces.landmarks import dlib_box, landmarks68 as landmarks68_at

    if template not in TEMPLATES:
        raise ValueError(f"unknown template '{template}' (known: {', '.join(TEMPLATES)})")
    if not (isinstance(crop, np.ndarray) and crop.dtype == np.uint8 and crop.ndim == 3 and crop.shape[2] == 3
            and crop.shape[0] == crop.shape[1]):
        raise ValueError("landmarks68 expects a square RGB uint8 crop H×W×3, got "
                         f"{type(crop).__name__} {getattr(crop, 'dtype', '')} {getattr(crop, 'shape', '')}")
    points = TEMPLATES[template].points_at(crop.shape[0])
    corner = points.min(0)
    face = Face(box=np.concatenate([corner, points.max(0) - corner]).astype(np.float32), score=1.0,
                landmarks=points)
    box = dlib_box(face)
    crop = np.ascontiguousarray(crop)
    upsample = 1 if box.width() < 100 else 0  # the HOG window is 80 px: small faces need one upsampling
    rects, _, _ = _hog_detector().run(crop, upsample, _MIN_HOG_SCORE)  # only detections scoring >= the threshold
    centre = box.center()
    if not any(np.hypot(r.center().x - centre.x, r.center().y - centre.y) <= box.width() / 4 for r in rects):
        raise ValueError(f"no face for 68 landmarks in the {crop.shape[0]}px {template} crop: dlib's face detector "
                         f"finds none scoring >= {_MIN_HOG_SCORE} near the template's face box")
    return landmarks68_at(crop, face)


def asset_path(name: str) -> Path:
    """The local file of a pinned asset (embedded ones are fetched and checked by sha256 on first use)."""
    from fsbench import assets

    return assets.path(name)


def require_assets(names: list[str], who: str) -> dict[str, Path]:
    """The local files of the reference assets ``names`` (files you supply); one error naming every missing file
    and the ``fsbench assets add`` command for each."""
    from fsbench import assets

    return assets.require(names, who)


def load_asset(name: str, **options: Any) -> Any:
    """A reference asset (a file you supply) loaded by its own strict loader, ``options`` passed to the loader:
    a parsed ONNX swap graph, or an insightface recogniser's onnxruntime session with its input size and
    normalisation (``cuda=True`` puts it on the GPU). A wrong or missing file is one error naming it and the
    command that fixes it."""
    from fsbench import assets

    return assets.load(name, **options)


def asset_sha256(name: str) -> str:
    """The sha256 of an asset's file: pinned for embedded files, recorded by ``fsbench assets add`` for yours."""
    from fsbench import assets

    return assets.sha256(name)


def identity_encoder(name: str = "sface", device: str | torch.device = "cpu") -> Any:
    """A frozen, differentiable identity network: ``.embed(crops in [0, 1], template)`` returns L2-normalised
    embeddings with gradients to ``crops``. ``sface`` and ``facenet`` are embedded; ``arcface-ir-se50`` and
    ``cosface-sphere20`` need the user's file (fsbench assets add)."""
    from fsbench import registry  # the metric backends are registered there, loaded on first use

    return registry.metrics.get(name)(device=device)
