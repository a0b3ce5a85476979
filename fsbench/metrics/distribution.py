"""Fréchet distances between two sets of crops, and the two distribution backends that embed them.

* ``inception`` (reference): pytorch-fid's Inception pool3 features; the only backend whose figure is called FID.
* ``mobilenet-v2`` (embedded): torchvision's ImageNet MobileNetV2, 1280-d pooled features; printed as
  FD-MobileNetV2. Its values are not FID values and are not comparable with published FIDs.

FD-id, the Fréchet distance between the identity embeddings of two sets, needs no extra backend: it is
:func:`frechet_from_features` on the features of an identity backend (e.g. ``sface``), printed under
``FD-id (<the backend's label>)`` (its declaration, fsbench/metrics/definitions.py).

Both sets of a comparison must be aligned with the same template: these backends take the crops as they are.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import nn

from fsbench import assets
from fsbench.metrics.base import Backend, BackendInfo, check_crops
from fsbench.nets import imagenet
from fsbench.nets.fold import fold_batchnorm
from fsbench.nets.inception import FEATURE_DIM as INCEPTION_DIM
from fsbench.nets.mobilenet_v2 import FEATURE_DIM as MOBILENET_DIM, load_mobilenet_v2
from fsbench.nets.onnx_graph import TorchExport



def feature_stats(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64, ``np.cov`` with N−1) of ``N×dim`` features, as pytorch-fid computes them.

    Failed samples (NaN rows) must be dropped by the caller: they are an error here, not silently skipped.
    """
    x = _checked(features)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _checked(features: np.ndarray | torch.Tensor) -> np.ndarray:
    """``N×dim`` features as float64, N ≥ 2, all finite; a ValueError otherwise."""
    x = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need N×dim features with N >= 2, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf (failed samples?); drop those rows first")
    return x


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance ``||mu1 − mu2||² + Tr(S1 + S2 − 2·sqrt(S1·S2))`` between two Gaussians.

    Computed as pytorch-fid's ``calculate_frechet_distance``: ``scipy.linalg.sqrtm`` of the product; if that is
    not finite (near-singular product), ``eps`` is added to both diagonals and the root taken again; an imaginary
    part from numerical error is dropped when the diagonal's is within 1e-3 of zero, otherwise it is an error.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"mismatched statistics: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs "
                         f"{sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        warnings.warn(f"Fréchet distance: singular covariance product; adding {eps} to the diagonals",
                      RuntimeWarning, stacklevel=2)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Fréchet distance: imaginary component {np.max(np.abs(covmean.imag))} in sqrt(S1·S2)")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_from_features(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets (``N×dim`` and ``M×dim``).

    With fewer samples than dimensions in either set the covariances are singular, and the square root of their
    product is taken exactly from the features instead (:func:`frechet_low_rank`); otherwise as pytorch-fid."""
    a, b = _checked(a), _checked(b)
    if min(len(a), len(b)) < a.shape[1]:
        return frechet_low_rank(a, b)
    return frechet_distance(*feature_stats(a), *feature_stats(b))


def frechet_low_rank(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """The Fréchet distance of :func:`frechet_distance` from the features themselves, exact at any rank.

    With ``A`` and ``B`` the centred features scaled by ``1/sqrt(N−1)`` (so ``S1 = AᵀA``, ``S2 = BᵀB``), the
    eigenvalues of ``S1·S2`` are the squared singular values of ``A·Bᵀ``; hence ``Tr sqrt(S1·S2)`` is the nuclear
    norm of ``A·Bᵀ`` (``N×M``), and no ``dim×dim`` square root of a singular product is taken."""
    x, y = _checked(a), _checked(b)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"mismatched features: {x.shape} vs {y.shape}")
    mu_a, mu_b = x.mean(axis=0), y.mean(axis=0)
    scaled_a = (x - mu_a) / np.sqrt(len(x) - 1)
    scaled_b = (y - mu_b) / np.sqrt(len(y) - 1)
    cross = np.linalg.svd(scaled_a @ scaled_b.T, compute_uv=False).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.sum(scaled_a ** 2) + np.sum(scaled_b ** 2) - 2 * cross)


class MobileNetV2Backend(Backend):
    """ImageNet MobileNetV2 pooled features: crops resized to 224 (bilinear, antialiased), ImageNet mean/std.

    Runs BatchNorm-folded in onnxruntime (1.4× the folded, channels-last torch network's throughput on two CPU
    threads; features within 1e-5). It stays fp32: bf16 moved features by up to 3.7 % (relative L2) and the FD between two halves of the mini-video
    gallery from 243.10 to 235.72."""

    info = BackendInfo("mobilenet-v2", "distribution", "embedded", "FD-MobileNetV2", ("mobilenet-v2-imagenet",),
                       MOBILENET_DIM, "torchvision ImageNet MobileNetV2, 1280-d global-average-pooled features")
    size = 224
    # onnxruntime gets 4 faces a call: its 6×-expanded 112×112 maps outgrow the CPU caches at 32, which runs at half
    # the throughput (`fsbench bench --metrics`; features do not depend on the batch: tests/test_distribution.py)
    ORT_CHUNK = 4

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        net = fold_batchnorm(load_mobilenet_v2(assets.path("mobilenet-v2-imagenet")))
        pooled = nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.graph = TorchExport(pooled, (3, self.size, self.size), self.device.type == "cuda", self.ORT_CHUNK)

    @torch.inference_mode()
    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        check_crops(crops)
        x = crops.to(self.device, torch.float32).contiguous()  # resizing a channels-last batch: 1.6× the time
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return torch.from_numpy(self.graph({"x": imagenet.normalise(x).cpu().numpy()}))


class InceptionBackend(Backend):
    """FID: pytorch-fid's Inception pool3 features (resize to 299 and [-1, 1] scaling happen in the network)."""

    info = BackendInfo("inception", "distribution", "reference", "FID", ("inception-fid",), INCEPTION_DIM,
                       "pytorch-fid InceptionV3 (pt_inception-2015-12-05), 2048-d pool3 features")

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.net = assets.load("inception-fid").to(self.device)

    @torch.inference_mode()
    def features(self, crops: torch.Tensor, template: str) -> torch.Tensor:
        check_crops(crops)
        return self.net(crops.to(self.device, torch.float32)).float().cpu()
