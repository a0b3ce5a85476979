"""The public types a method plugin may use, and nothing else of fsbench.

A method sees aligned crops, never raw frames: fsbench detects the face, aligns it with the template and size
the method's card declares, calls :meth:`Method.swap`, and pastes the result back.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from fsbench.faces.templates import TEMPLATES, face_mask

__all__ = ["Method", "MethodCard", "TEMPLATES", "face_mask"]


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
