"""BatchNorm folding for inference: a BN in eval mode after a convolution is an affine map per output channel,
so it folds into that convolution's weights and bias exactly (outputs change by float rounding only)."""
from __future__ import annotations

import copy

import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` in which every ``BatchNorm2d`` that directly follows a ``Conv2d`` or
    ``ConvTranspose2d`` inside an ``nn.Sequential`` is folded into it (and replaced by ``nn.Identity``)."""
    folded = copy.deepcopy(module).eval()
    for seq in folded.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                seq[i + 1] = nn.Identity()
    return folded
