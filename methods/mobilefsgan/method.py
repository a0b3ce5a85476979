"""MobileFSGAN as an fsbench method: SFace source embedding, generator on the target crop, full-size head."""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Mapping

import torch

from fsbench.api import (Method, MethodCard, UsageError, exported_metadata, inference_dtype, load_weights,
                         recorded_architecture, recorded_config, training_recognisers)
from methods.mobilefsgan.configs import Architecture, load_config
from methods.mobilefsgan.export import export_onnx, fold
from methods.mobilefsgan.generator import EncoderDecoder
from methods.mobilefsgan.identity import DIMS, IdentityNet, TEMPLATE

WEIGHTS_DIR = Path(__file__).parent / "weights"
CHECKPOINT = "mobilefsgan-cpu.safetensors"


def load_generator(path: Path) -> tuple[EncoderDecoder, dict[str, Any]]:
    """The generator a weights file was trained as (width and embedding size from its metadata), in eval mode, and
    the recipe it records."""
    meta = exported_metadata(path, "config", "embedding")
    cfg = recorded_config(path, meta)
    net = EncoderDecoder(recorded_architecture(Architecture, path, "MobileFSGAN", cfg).width, int(meta["embedding"]))
    load_weights(path, net)
    return net.eval(), cfg


def _trained_on(cfg: dict[str, Any]) -> str:
    data = cfg.get("data")
    if data == "portraits":
        return "portraits training split + mini training identities"
    return "mini training identities" if data is None else f"the image folder {data}"


def _card(path: Path, sha256: str | None = None) -> MethodCard:
    """The card of the weights in ``path`` (the shipped file's sha256 is pinned by the caller rather than hashed at
    every import); notes from the file's training configuration, empty if there is no file."""
    meta = exported_metadata(path, "config") if path.is_file() else {}
    cfg = recorded_config(path, meta) if meta else {}
    identity = (recorded_architecture(Architecture, path, "MobileFSGAN", cfg) if meta else Architecture()).identity
    return MethodCard(name="mobilefsgan", version="1", input_size=128, template=TEMPLATE, checkpoint=path.name,
                      checkpoint_sha256=sha256, parameters=2_075_413,
                      licence="MIT (code); weights trained in-repo (see MODEL_CARD.md)",
                      paper="MobileFSGAN (HoiM/MobileFSGAN); generator at N=64 with the SFace 128-d embedding",
                      notes={"identity": identity, "output": "full-size head", "trained": _trained_on(cfg),
                             "training_recognisers": list(training_recognisers(identity, meta) if meta else ()),
                             "inference": "BN folded, channels-last, bf16 where native (else fp32)"})


class MobileFSGAN(Method):
    card = _card(WEIGHTS_DIR / CHECKPOINT, "467b568326c303a2261e39f760e0c603206da2fe8eaf604e5841724e4c5f5f1b")

    def __init__(self, device: str | torch.device = "cpu", weights: str | Path | None = None,
                 precision: str = "auto", random_arch: Architecture | None = None) -> None:
        """``precision``: ``fp32`` (BN-folded, channels-last), ``bf16`` (the same in bfloat16) or ``auto``
        (bf16 where oneDNN has native bf16 kernels on this CPU, else fp32; CUDA runs fp32). ``random_arch``:
        random weights in that architecture instead of a weights file (see :meth:`untrained`)."""
        super().__init__(device)
        if random_arch is not None:
            torch.manual_seed(0)
            identity = random_arch.identity
            self.generator = EncoderDecoder(random_arch.width, DIMS[identity]).eval()
        else:
            path = Path(weights) if weights else WEIGHTS_DIR / CHECKPOINT
            if not path.is_file():
                raise UsageError(f"{path}: MobileFSGAN weights missing (train them with "
                                 f"`fsbench train mobilefsgan --config cpu --out DIR`)")
            self.generator, cfg = load_generator(path)
            identity = recorded_architecture(Architecture, path, "MobileFSGAN", cfg).identity
        self.identity = IdentityNet(identity, self.device)
        self.dtype = inference_dtype(precision, self.device)
        self.fast = fold(self.generator).to(self.device, self.dtype).to(memory_format=torch.channels_last)

    @classmethod
    def card_for(cls, weights: Path) -> MethodCard:
        return _card(weights)

    @classmethod
    def untrained(cls, config: str, device: str | torch.device = "cpu") -> MobileFSGAN:
        cfg = load_config(config)
        method = cls(device, random_arch=cfg.arch)
        method.card = replace(cls.card, name=f"mobilefsgan[{config}, random weights]", input_size=cfg.size,
                              checkpoint=None, checkpoint_sha256=None,
                              parameters=sum(p.numel() for p in method.generator.parameters()),
                              notes={**cls.card.notes, "config": asdict(cfg), "weights": "random (untrained)"})
        return method

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator}

    def export_onnx(self, path: str | Path) -> Path:
        """The BN-folded fp32 generator (full-size head) as ONNX at the card's input size."""
        return export_onnx(self.generator, Path(path), self.card.input_size)

    @torch.no_grad()
    def embed_identity(self, source: torch.Tensor) -> torch.Tensor:
        return self.identity.embed(source.to(self.device))

    @torch.no_grad()
    def swap_embedded(self, identity: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = (target.to(self.device, self.dtype) * 2 - 1).contiguous(memory_format=torch.channels_last)
        full = self.fast(x, identity.to(self.dtype))[0]
        return ((full.float() + 1) / 2).clamp(0, 1).contiguous()

    def swap(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.swap_embedded(self.embed_identity(source), target)

    @classmethod
    def train(cls, config: str, out: Path, device: str = "cpu", *, init_from: Path | None = None,
              time_limit_s: float | None = None, overrides: Mapping[str, Any] | None = None) -> Path:
        from methods.mobilefsgan.train import train

        return train(config, out, device, init_from=init_from, time_limit_s=time_limit_s, overrides=overrides)
