"""MobileNetV2 (ImageNet) in plain torch, laid out like torchvision's so its official file loads with strict=True.

Module names and shapes follow torchvision/models/mobilenetv2.py at width 1.0: ``features.0`` is conv-BN-ReLU6
(3→32, stride 2), ``features.1 … 17`` are inverted residual blocks (``features.N.conv.*``), ``features.18`` is the
1×1 conv-BN-ReLU6 to 1280 channels, and ``classifier.1`` the 1280→1000 linear layer (``classifier.0`` is dropout).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIM = 1280

# (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper, Table 2
_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn_relu6(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Expand (1×1) → depthwise 3×3 → linear projection (1×1); a residual connection where shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [_conv_bn_relu6(cin, hidden, 1)] if expand != 1 else []
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """ImageNet MobileNetV2 at width 1.0. Input: ImageNet-normalised RGB, 224×224 in training."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
        cin = 32
        for expand, cout, repeats, stride in _SETTING:
            for i in range(repeats):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        layers.append(_conv_bn_relu6(cin, FEATURE_DIM, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(FEATURE_DIM, num_classes))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The 1280-d global-average-pooled features (the classifier's input)."""
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pooled(x))


def load_mobilenet_v2(path: str | Path) -> MobileNetV2:
    """The network with torchvision's ImageNet weights (``mobilenet_v2-b0353104.pth``), in eval mode."""
    net = MobileNetV2()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval()
