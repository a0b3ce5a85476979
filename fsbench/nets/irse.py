"""ArcFace IR-SE50 in plain torch, laid out like the public InsightFace_Pytorch ``Backbone(50, mode="ir_se")`` so
that its ``model_ir_se50.pth`` (the identity encoder most FaceShifter re-implementations train with) loads with
``strict=True``.

Layout of that state dict: ``input_layer`` = (conv 3×3 3→64, BN, PReLU); ``body`` = 24 improved-residual units
with squeeze-excitation (3, 4, 14, 3 units at 64, 128, 256, 512 channels, the first unit of each stage strided);
``output_layer`` = (BN, dropout, flatten, linear 512·7·7→512, BN1d). A unit is ``res_layer`` = (BN, conv 3×3,
PReLU, conv 3×3 with the stride, BN, SE(fc1, fc2 as bias-free 1×1 convs, reduction 16)) plus ``shortcut_layer``:
a strided identity (1×1 max pool, no weights) when the channel count is kept, else (conv 1×1, BN).

Preprocessing of that code: RGB ArcFace-112 crops, ``(x − 0.5) / 0.5`` for x in [0, 1]; the embedding is
L2-normalised.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fsbench.errors import UsageError

EMBEDDING_DIM = 512
INPUT_SIZE = 112
_STAGES = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))  # (in, out channels, units) of IR-SE50


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class Unit(nn.Module):
    """Improved residual unit with squeeze-excitation (``bottleneck_IR_SE`` in the public code)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.shortcut_layer = (nn.MaxPool2d(1, stride) if cin == cout else
                               nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), SqueezeExcite(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IRSE50(nn.Module):
    """``forward`` takes ``(x − 0.5) / 0.5`` RGB, ``B×3×112×112``; returns ``B×512`` (not normalised)."""

    def __init__(self) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        self.body = nn.Sequential(*(Unit(cin if i == 0 else cout, cout, 2 if i == 0 else 1)
                                    for cin, cout, units in _STAGES for i in range(units)))
        side = INPUT_SIZE // 16
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(), nn.Flatten(),
                                          nn.Linear(512 * side * side, EMBEDDING_DIM), nn.BatchNorm1d(EMBEDDING_DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.body(self.input_layer(x)))


def load_ir_se50(path: str | Path) -> IRSE50:
    """IR-SE50 with the weights of an InsightFace_Pytorch state dict (a plain ``torch.save(state_dict)``), frozen,
    eval mode. The file is read with ``weights_only=True`` (no pickled code runs)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise UsageError(f"{path}: expected a state dict of IR-SE50 tensors, found {type(state).__name__}")
    net = IRSE50()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())  # torch lists the missing, unexpected and mis-shaped keys
        raise UsageError(f"{path}: not an InsightFace_Pytorch IR-SE50 state dict: {detail[:400]}") from None
    net.requires_grad_(False)
    return net.eval()
