"""copy-target: returns the target unchanged — the floor for identity, the ceiling for attributes; copy-target-128
does the same through a 128-pixel crop, the working size of the trained reference methods, so its figures are the
best appearance (FD) and attribute figures a 128-pixel swapper can reach on a protocol."""
from __future__ import annotations

import torch

from fsbench.api import Method, MethodCard


class CopyTarget(Method):
    card = MethodCard(name="copy-target", version="1", input_size=256, template="ffhq-256", licence="MIT",
                      paper="baseline (no swap)")

    def swap(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return target.clone()


class CopyTarget128(CopyTarget):
    card = MethodCard(name="copy-target-128", version="1", input_size=128, template="ffhq-256", licence="MIT",
                      paper="baseline (no swap, at the 128-pixel size of the trained reference methods)")
