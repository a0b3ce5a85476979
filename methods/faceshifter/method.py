"""The FaceShifter plugin: AEI-Net + HEAR-Net with the in-repo checkpoint (``weights/``, see MODEL_CARD.md).

Inference takes ffhq-256-aligned crops at the shipped configuration's resolution. HEAR-Net needs the heuristic
error ΔY_t = X_t − AEI(X_t, X_t), so a swap runs the attribute encoder once on X_t and the AAD generator on the
source and target identities batched together, with the attribute modulations γ_att, β_att computed once for both
(they depend on X_t only, so this is exact). The AAD layer is written for speed (methods/faceshifter/aei.py); with
identical weights the outputs match a public re-implementation's network definition to float rounding
(MODEL_CARD.md).

Swaps run a copy of the network made for inference (:class:`FastFaceShifter`): every BatchNorm folded into the
convolution before it (exact in eval mode), in bfloat16 on CPUs with native bf16 kernels, else fp32. bf16 stays
within 8/255 of fp32 on [0, 1] images, half a level on average (tests/test_faceshifter.py).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from fsbench.api import (Method, MethodCard, UsageError, exported_metadata, fold_batchnorm, identity_encoder,
                         inference_dtype, load_weights, prepack_convolutions, recorded_architecture, recorded_config,
                         training_recognisers)
from methods.faceshifter.configs import Architecture, get_config
from methods.faceshifter.net import TEMPLATE, FaceShifterNet, parameter_count

WEIGHTS = Path(__file__).parent / "weights" / "faceshifter-cpu.safetensors"


# The prepacked channels-last path pays off for wide networks and costs for narrow ones, whose few channels make
# channels-last group norm and AAD's elementwise modulations slow: bf16, one thread, the two paths cross near width
# 1/4 (`python -m methods.faceshifter.report layouts`), so it is used from half the paper's width up.
PREPACK_MIN_WIDTH = 0.5


class FastFaceShifter(nn.Module):
    """:class:`FaceShifterNet` for inference: a copy with every BatchNorm folded into the (transposed) convolution
    before it (exact in eval mode) and its weights in ``dtype``; inputs are cast to it, outputs returned in fp32.

    ``prepacked`` (default: on the CPU from :data:`PREPACK_MIN_WIDTH` up): every convolution's weight reordered
    once for oneDNN (:mod:`fsbench.nets.prepack`) and the maps channels-last, which keeps AAD's elementwise
    modulations in the convolutions' layout; it halves the paper-size bf16 swap's time
    (methods/faceshifter/compare_public.py). Autocast is not used: it re-casts every weight on every call."""

    def __init__(self, net: FaceShifterNet, dtype: torch.dtype, prepacked: bool | None = None) -> None:
        super().__init__()
        self.dtype = dtype
        on_cpu = next(net.parameters()).device.type == "cpu"
        self.prepacked = on_cpu and net.arch.width >= PREPACK_MIN_WIDTH if prepacked is None else prepacked
        folded = fold_batchnorm(net).to(dtype)  # the U-Nets' conv → BN → LeakyReLU layers (aei.unet_layers)
        self.net = prepack_convolutions(folded) if self.prepacked else folded

    @torch.no_grad()
    def forward(self, target: torch.Tensor, z_src: torch.Tensor, z_tgt: torch.Tensor) -> torch.Tensor:
        """As :meth:`FaceShifterNet.forward`; returns fp32 (contiguous)."""
        target = target.to(self.dtype)
        if self.prepacked:
            target = target.contiguous(memory_format=torch.channels_last)
        return self.net(target, z_src.to(self.dtype), z_tgt.to(self.dtype)).float().contiguous()


def _card(path: Path, sha256: str | None = None) -> MethodCard:
    """The card of the weights in ``path`` (the paper's architecture and no checkpoint if there is no file), their
    metadata read once; ``sha256``: the file's hash, given by the caller (create_method names a user's file and
    its hash on the card :meth:`FaceShifter.card_for` gives)."""
    meta = exported_metadata(path, "config") if path.is_file() else {}
    config = recorded_config(path, meta) if meta else {}
    arch = recorded_architecture(Architecture, path, "FaceShifter", config) if meta else Architecture()
    recognisers = training_recognisers(arch.id_encoder, meta) if meta else (arch.id_encoder,)
    return MethodCard(
        name="faceshifter", version="3", input_size=arch.size, template=TEMPLATE, licence="MIT",
        checkpoint=path.name if meta else None, checkpoint_sha256=sha256, parameters=parameter_count(arch),
        paper="Li et al., FaceShifter: Towards High Fidelity and Occlusion Aware Face Swapping, CVPR 2020",
        notes={"config": config if meta else {"arch": asdict(arch)},
               "identity_encoder": arch.id_encoder, "inference": "BN folded, bf16 where native (else fp32)",
               "training_recognisers": list(recognisers), "model_card": "methods/faceshifter/MODEL_CARD.md"})


class FaceShifter(Method):
    card = _card(WEIGHTS, hashlib.sha256(WEIGHTS.read_bytes()).hexdigest() if WEIGHTS.is_file() else None)

    def __init__(self, device: str | torch.device = "cpu", weights: Path | None = None,
                 random_arch: Architecture | None = None, precision: str = "auto") -> None:
        """``weights``: a FaceShifter safetensors file (default: the shipped one). ``random_arch``: instead,
        random weights in that architecture (see :meth:`untrained`). ``precision``: ``fp32``, ``bf16`` or
        ``auto`` (bf16 where the CPU has native bf16 kernels, else fp32) for :class:`FastFaceShifter`."""
        super().__init__(device)
        if random_arch is not None:
            torch.manual_seed(0)
            self.arch, net = random_arch, FaceShifterNet(random_arch)
        else:
            path = Path(weights) if weights else WEIGHTS
            if not path.is_file():
                raise UsageError(f"{path}: no FaceShifter weights; train them with "
                                        "`fsbench train faceshifter --config cpu --out runs/train/faceshifter`")
            self.arch = recorded_architecture(Architecture, path, "FaceShifter")
            net = load_weights(path, FaceShifterNet(self.arch))
        self.net = net.to(self.device).eval()
        self.fast = FastFaceShifter(self.net, inference_dtype(precision, self.device))
        self.encoder = identity_encoder(self.arch.id_encoder, self.device)

    @classmethod
    def card_for(cls, weights: Path) -> MethodCard:
        return _card(weights)

    @classmethod
    def untrained(cls, config: str, device: str | torch.device = "cpu") -> FaceShifter:
        cfg = get_config(config)
        method = cls(device, random_arch=cfg.arch)
        method.card = replace(cls.card, name=f"faceshifter[{config}, random weights]", input_size=cfg.arch.size,
                              checkpoint=None, checkpoint_sha256=None, parameters=parameter_count(cfg.arch),
                              notes={"config": asdict(cfg), "weights": "random (untrained)"})
        return method

    def _fit(self, crops: torch.Tensor) -> torch.Tensor:
        size = self.arch.size
        crops = crops.to(self.device, torch.float32)
        if crops.shape[-1] != size:
            crops = F.interpolate(crops, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return crops

    @torch.inference_mode()
    def embed_identity(self, source: torch.Tensor) -> torch.Tensor:
        return self.encoder.embed(self._fit(source), TEMPLATE)

    @torch.inference_mode()
    def swap_embedded(self, identity: Any, target: torch.Tensor) -> torch.Tensor:
        size = target.shape[-1]
        tgt = self._fit(target)
        z_tgt = self.encoder.embed(tgt, TEMPLATE)
        y = (self.fast(tgt * 2 - 1, identity, z_tgt) + 1) / 2
        if y.shape[-1] != size:
            y = F.interpolate(y, size=(size, size), mode="bilinear", align_corners=False)
        return y.clamp(0, 1).to(target.device)

    def swap(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.swap_embedded(self.embed_identity(source), target)

    def modules(self) -> dict[str, nn.Module]:
        return {"aei": self.net.aei, "hear": self.net.hear}

    @classmethod
    def train(cls, config: str, out: Path, device: str = "cpu", *, init_from: Path | None = None,
              time_limit_s: float | None = None, overrides: Mapping[str, Any] | None = None) -> Path:
        from methods.faceshifter.train import train

        return train(config, out, device, init_from=init_from, time_limit_s=time_limit_s, overrides=overrides)

    @classmethod
    def bundle(cls, config: str, out: Path, *, overrides: Mapping[str, Any] | None = None,
               quality: int | None = None) -> Path:
        from methods.faceshifter.train import bundle

        return bundle(config, out, overrides=overrides, quality=quality)
