"""CosFace sphere20 in plain torch, laid out like the public CosFace_pytorch code so that its official file
``net_sphere20_data_vggface2_acc_9955.pth`` loads with ``strict=True``.

Module names and shapes follow class ``sphere`` (type 20) in MuggleWang/CosFace_pytorch, ``net.py``, which
ReliableSwap and later face-swapping papers load for FF++ ID retrieval. Each of the four stages is an
``nn.Sequential``: index 0 a 3×3 stride-2 conv *with* bias, index 1 a PReLU, then 1, 2, 4, 1 residual blocks
(``conv1``/``prelu1``/``conv2``/``prelu2``, 3×3 convs without bias). ``fc`` maps the flattened 512×7×6 map to
the 512-d embedding, so the input is 112 high and 96 wide.

Preprocessing in that code (``lfw_eval.py``): RGB faces aligned to SphereFace's 96×112 five-point template,
``ToTensor`` then ``Normalize(0.5, 0.5)``, i.e. ``(x − 0.5) / 0.5`` for x in [0, 1]. SphereFace's template is
insightface's ArcFace-112 template shifted 8 px to the left, so a 96×112 crop is columns 8…103 of an
ArcFace-112 crop.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

EMBEDDING_DIM = 512
INPUT_HEIGHT, INPUT_WIDTH = 112, 96
_STAGES = ((3, 64, 1), (64, 128, 2), (128, 256, 4), (256, 512, 1))  # (in, out channels, residual blocks)


class Block(nn.Module):
    """Residual block: ``x + prelu2(conv2(prelu1(conv1(x))))``."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.prelu1 = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.prelu2 = nn.PReLU(planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.prelu2(self.conv2(self.prelu1(self.conv1(x))))


def _stage(cin: int, cout: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.PReLU(cout), *(Block(cout) for _ in range(blocks)))


class Sphere20(nn.Module):
    """sphere20 (CosFace). ``forward`` takes ``(x − 0.5) / 0.5`` RGB, ``B×3×112×96``; returns ``B×512`` raw."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1, self.layer2, self.layer3, self.layer4 = (_stage(*stage) for stage in _STAGES)
        self.fc = nn.Linear(512 * (INPUT_HEIGHT // 16) * (INPUT_WIDTH // 16), EMBEDDING_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.flatten(1))


def load_sphere20(path: str | Path) -> Sphere20:
    """Sphere20 with the weights of a CosFace_pytorch state dict (a plain ``torch.save(state_dict)``), eval mode.

    The file is read with ``weights_only=True`` (no pickled code runs).
    """
    net = Sphere20()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    net.requires_grad_(False)
    return net.eval()
