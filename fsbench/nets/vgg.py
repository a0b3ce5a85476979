"""VGG19 convolutional features in plain torch, keys as torchvision's ``features.*`` so the user's
``vgg19-dcbb9e9d.pth`` loads strictly (torchvision itself cannot be installed next to CPU torch here)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fsbench.errors import UsageError

_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def vgg19_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in _LAYOUT:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            cin = int(v)
    return nn.Sequential(*layers)


def load_vgg19_features(path: str | Path) -> nn.Sequential:
    """torchvision's ImageNet VGG19 ``features`` from the user's file (weights_only load, strict keys)."""
    if not path:
        raise UsageError("perceptual = vgg19 needs vgg19_file=<path to vgg19-dcbb9e9d.pth> (torchvision's file)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise UsageError(f"{path}: expected torchvision's VGG19 state dict, found {type(state).__name__}")
    features = vgg19_features()
    features.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")},
                             strict=True)
    return features.eval()
