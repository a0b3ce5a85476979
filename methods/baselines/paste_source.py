"""paste-source: the aligned source face blended into the target crop — a naive identity ceiling.

Both crops share one alignment template, so the source face already sits where the target face is. The source's
colours are matched to the target's inside the face mask (per-channel mean and standard deviation), then the
source is alpha-blended into the target with the template's soft face mask.
"""
from __future__ import annotations

import torch

from fsbench.api import Method, MethodCard, face_mask


class PasteSource(Method):
    card = MethodCard(name="paste-source", version="1", input_size=256, template="ffhq-256", licence="MIT",
                      paper="baseline (aligned paste with colour transfer)")

    def swap(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        size = target.shape[-1]
        mask = torch.from_numpy(face_mask(self.card.template, size)).to(target)[None, None]
        weight = mask / mask.sum()
        src_mean = (source * weight).sum((2, 3), keepdim=True)
        tgt_mean = (target * weight).sum((2, 3), keepdim=True)
        src_std = (((source - src_mean) ** 2 * weight).sum((2, 3), keepdim=True)).sqrt().clamp_min(1e-3)
        tgt_std = (((target - tgt_mean) ** 2 * weight).sum((2, 3), keepdim=True)).sqrt()
        matched = ((source - src_mean) / src_std * tgt_std + tgt_mean).clamp(0, 1)
        return mask * matched + (1 - mask) * target
