"""Expression backends.

* ``mediapipe-blendshapes`` (embedded): MediaPipe's 52 blendshape scores in [0, 1], column i = MediaPipe's
  category i (names in :data:`fsbench.metrics.pose.BLENDSHAPES`; ``_neutral`` is kept and scores ~0). Read by
  the landmarker call that :mod:`fsbench.metrics.pose` shares, so asking for pose too costs nothing more. NaN
  rows where no face is found.
* ``deep3d`` (reference): Deep3DFaceRecon_pytorch's 64 expression coefficients, columns 80:144 of its 257
  (see :mod:`fsbench.nets.deep3d` for the alignment and the files it needs).
"""
from __future__ import annotations

import torch

from fsbench import assets
from fsbench.metrics.base import Backend, BackendInfo, check_crops
from fsbench.metrics.pose import BLENDSHAPES, read_faces
from fsbench.nets import deep3d


class MediaPipeBlendshapes(Backend):
    info = BackendInfo("mediapipe-blendshapes", "expression", "embedded", "expr-MediaPipe-blendshapes",
                       ("mediapipe-face-landmarker",), len(BLENDSHAPES),
                       "the MediaPipe face landmarker's 52 blendshape scores (ARKit names, _neutral included), "
                       "on crops re-aligned to ffhq-256 at 256")

    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        return read_faces(crops, template)[1]


class Deep3DExpression(Backend):
    info = BackendInfo("deep3d", "expression", "reference", "expr-Deep3DFaceRecon",
                       ("deep3dfacerecon", "deep3dfacerecon-lm3d"), 64,
                       "Deep3DFaceRecon_pytorch (ResNet-50, epoch_20) expression coefficients [80:144]; "
                       "align_img 5-point alignment to 224 with similarity_Lm3D_all.mat, RGB in [0, 1]")

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.lm3d = assets.load("deep3dfacerecon-lm3d")
        self.net = assets.load("deep3dfacerecon").to(self.device)

    @torch.no_grad()
    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        check_crops(crops)
        x = deep3d.preprocess(crops.to(self.device, torch.float32), template, self.lm3d)
        return self.net(x)[:, deep3d.COEFFS["exp"]].float().cpu()
