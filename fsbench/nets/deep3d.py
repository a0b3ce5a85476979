"""Deep3DFaceRecon_pytorch's coefficient regressor (``ReconNetWrapper`` with a ResNet-50) in plain torch.

Layout as in sicxu/Deep3DFaceRecon_pytorch ``models/networks.py`` (``ReconNetWrapper``, ``use_last_fc=False``):
``backbone.*`` is the torchvision ResNet-50 without ``fc``; ``final_layers.0..6`` are 1×1 convolutions with bias
(2048 → 80 id, 64 exp, 80 tex, 3 angle, 27 gamma, 2 tx/ty, 1 tz) whose outputs are concatenated to 257
coefficients (split as in ``models/bfm.py``, ``split_coeff``). ``epoch_20.pth`` is the dict that
``models/base_model.py`` ``save_networks`` writes: the network under ``'net_recon'`` (unwrapped from
DataParallel, so without a ``module.`` prefix), next to optimiser and scheduler states.

Preprocessing as ``test.py`` → ``util/preprocess.py`` ``align_img``: the five points (eye centres, nose tip,
mouth corners) with y flipped (``H − 1 − y``) are fitted by ``POS`` (a least-squares affine camera) to the
five 3D points of the standard face in ``BFM/similarity_Lm3D_all.mat``, which ``util/load_mats.py`` ``load_lm3d``
takes from its 68 points (nose 30, eyes mean(36, 39) and mean(42, 45), mouth 48 and 54, 0-based). The image
is resized by ``s = 102 / scale`` (PIL bicubic), cut to 224×224 around the fitted translation (zeros outside),
and fed as RGB in [0, 1] without normalisation. That .mat file (committed in the repository's ``BFM/`` folder)
is the only BFM file this needs: the expression coefficients come straight from the network, so neither the
face model (``BFM_model_front.mat``, built from ``01_MorphableModel.mat`` and ``Exp_Pca.bin``) nor the
renderer is used.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fsbench.errors import UsageError
from fsbench.faces.templates import TEMPLATES
from fsbench.nets.resnet import ResNet

COEFFS = {"id": slice(0, 80), "exp": slice(80, 144), "tex": slice(144, 224), "angle": slice(224, 227),
          "gamma": slice(227, 254), "trans": slice(254, 257)}
NUM_COEFFS = 257
INPUT_SIZE = 224
RESCALE = 102.0
_HEAD_DIMS = (80, 64, 80, 3, 27, 2, 1)
# 68-point indices (0-based) of load_lm3d's five points, in the template order (left eye, right eye, nose,
# left mouth corner, right mouth corner, left/right as seen in the image)
_LM68_TO_5 = ((36, 39), (42, 45), (30,), (48,), (54,))


class ReconNet(nn.Module):
    """``B×3×224×224`` RGB in [0, 1] → ``B×257`` coefficients."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ResNet((3, 4, 6, 3), num_classes=None)
        self.final_layers = nn.ModuleList(nn.Conv2d(self.backbone.feature_dim, n, 1, bias=True) for n in _HEAD_DIMS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone.features(x)
        return torch.flatten(torch.cat([layer(f) for layer in self.final_layers], dim=1), 1)


def load_reconnet(path: str | Path) -> ReconNet:
    """The ``'net_recon'`` entry of an official checkpoint in a :class:`ReconNet`, strict, in eval mode."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "net_recon" not in checkpoint:
        found = sorted(checkpoint)[:5] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise UsageError(f"{path}: not a Deep3DFaceRecon_pytorch checkpoint (no 'net_recon' entry; found {found})")
    net = ReconNet()
    net.load_state_dict(checkpoint["net_recon"], strict=True)
    return net.eval()


def load_lm3d(path: str | Path) -> np.ndarray:
    """The standard face's five 3D points (5×3) from ``similarity_Lm3D_all.mat`` (its ``'lm'``, 68×3)."""
    from scipy.io import loadmat

    lm = np.asarray(loadmat(str(path))["lm"], np.float64)
    if lm.shape != (68, 3):
        raise UsageError(f"{path}: 'lm' has shape {lm.shape}, expected (68, 3)")
    return np.stack([lm[list(idx)].mean(0) for idx in _LM68_TO_5])


def pos(points: np.ndarray, lm3d: np.ndarray) -> tuple[np.ndarray, float]:
    """Translation (2,) and scale of the least-squares affine camera projecting ``lm3d`` (N×3) onto ``points``
    (N×2): each image coordinate is fitted as ``a·X + b·Y + c·Z + t``; the scale is the mean norm of the two
    fitted rows (a, b, c)."""
    n = len(points)
    a = np.zeros((2 * n, 8))
    a[0::2, :3], a[0::2, 3] = lm3d, 1.0
    a[1::2, 4:7], a[1::2, 7] = lm3d, 1.0
    k = np.linalg.lstsq(a, np.asarray(points, np.float64).reshape(-1), rcond=None)[0]
    scale = (np.linalg.norm(k[:3]) + np.linalg.norm(k[4:7])) / 2
    return np.array([k[3], k[7]]), float(scale)


def crop_geometry(template: str, size: int, lm3d: np.ndarray) -> tuple[int, int, int, int]:
    """(resized width, resized height, left, top) of ``align_img`` for a ``template`` crop of side ``size``."""
    points = TEMPLATES[template].points_at(size).astype(np.float64)
    points[:, 1] = size - 1 - points[:, 1]
    t, scale = pos(points, lm3d)
    s = RESCALE / scale
    w = h = int(size * s)
    left = int(w / 2 - INPUT_SIZE / 2 + (t[0] - size / 2) * s)
    top = int(h / 2 - INPUT_SIZE / 2 + (size / 2 - t[1]) * s)
    return w, h, left, top


def preprocess(crops: torch.Tensor, template: str, lm3d: np.ndarray) -> torch.Tensor:
    """``B×3×224×224`` network input from ``B×3×S×S`` RGB crops in [0, 1] aligned with ``template``."""
    w, h, left, top = crop_geometry(template, crops.shape[-1], lm3d)
    # PIL's bicubic resize (torch's antialiased bicubic matches it), clipped to the range as uint8 pixels are
    x = F.interpolate(crops, size=(h, w), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    # PIL's crop: the 224 window at (left, top), zeros where it leaves the image (negative pads cut)
    return F.pad(x, (-left, left + INPUT_SIZE - w, -top, top + INPUT_SIZE - h))
