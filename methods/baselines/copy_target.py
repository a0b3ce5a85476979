"""copy-target: returns the target unchanged — the floor for identity, the ceiling for attributes."""
from __future__ import annotations

import torch

from fsbench.api import Method, MethodCard


class CopyTarget(Method):
    card = MethodCard(name="copy-target", version="1", input_size=256, template="ffhq-256", licence="MIT",
                      paper="baseline (no swap)")

    def swap(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return target.clone()
