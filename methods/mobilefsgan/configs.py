"""Named training configurations. ``paper`` is the public code's setting; ``cpu`` a 128 px run on the mini training
identities for one CPU core; ``cpu-portraits`` the shipped weights' recipe; ``cpu-wild`` that recipe with
in-the-wild degradations of the crops; ``smoke`` a seconds-long run for tests."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fsbench.train import AugmentConfig, AverageConfig, IdentityLossConfig, LoopConfig, MonitorConfig, resolve_config

# the public FaceShifterDataset's probabilities, regrouped into fsbench's triplet kinds
PAPER_MIX = {"pair": 0.6, "same": 0.112, "frames": 0.06, "id_target": 0.078, "id_source": 0.0,
             "attr_target": 0.15, "attr_source": 0.0}

# fabric photos for the mask occluder (insightface's surgical-mask textures, embedded assets)
MASK_TEXTURES = tuple(f"media/insightface/mask_{c}.jpg" for c in ("black", "blue", "green", "white"))


@dataclass(frozen=True)
class Architecture:
    """What the networks are built from (the generator and its discriminators); nothing of the training."""

    width: int = 64  # the paper's N
    identity: str = "sface"  # the source embedding: "sface" (embedded, 128-d) or "mobilefacenet" (the user's, 512-d)
    disc_width: int = 16
    disc_layers: int = 4


@dataclass(frozen=True)
class Config:
    """A training recipe: the architecture, the scaffold's parts and MobileFSGAN's own fields."""

    arch: Architecture = field(default_factory=Architecture)
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=500_000, batch=16, checkpoint_every=100,
                                                                sample_every=250))
    identity_loss: IdentityLossConfig = field(default_factory=IdentityLossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # in-the-wild degradations; default: none
    average: AverageConfig = field(default_factory=AverageConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    size: int = 256  # training crop side; heads at size, size/2, size/4
    data: str | None = None  # "portraits", an image folder (identity = subfolder) or None (mini training identities)
    per_identity: bool = False  # draw triplet images per identity (an identity, then its image), not per image
    perceptual: str = "mobilenet_v2"  # or "vgg19" (needs vgg19_file)
    vgg19_file: str = ""
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    w_id: float = 20.0  # identity loss weight at the full-size head
    mix: dict[str, float] = field(default_factory=lambda: dict(PAPER_MIX))
    mask_textures: tuple[str, ...] = MASK_TEXTURES  # assets; () = flat colours

    @property
    def recognisers(self) -> tuple[str, ...]:
        """Every recogniser whose embedding the training uses (the source embedding and the identity loss)."""
        return tuple(dict.fromkeys((self.arch.identity, *self.identity_loss.resolved(self.arch.identity))))


_CPU_MIX = {"pair": 0.35, "same": 0.15, "frames": 0.2, "id_target": 0.06, "id_source": 0.06, "attr_target": 0.1,
            "attr_source": 0.08}
_CPU_LOOP = LoopConfig(steps=20_000, batch=4, checkpoint_every=100, sample_every=250)
_PORTRAITS = Config(size=128, loop=replace(_CPU_LOOP, steps=100_000, precision="auto"), lr_g=2e-4, lr_d=2e-4,
                    mask_textures=(), w_id=40.0, data="portraits", per_identity=True,
                    identity_loss=IdentityLossConfig(("sface", "facenet"), augment=True),
                    monitor=MonitorConfig(every=250))
CONFIGS: dict[str, Config] = {
    "paper": Config(),
    # more triplets with a ground truth than the paper's mix (a few thousand steps need the pixel loss's pull);
    # flat-coloured mask occluders
    "cpu": Config(size=128, loop=_CPU_LOOP, lr_g=2e-4, lr_d=2e-4, mask_textures=(), mix=_CPU_MIX),
    # the shipped weights' recipe: the portraits training split drawn per identity, the SFace + FaceNet ensemble
    # loss on augmented outputs at twice the paper's identity weight, the paper's triplet mix, the live generator
    # exported (no weight average), bf16 steps where the CPU has native bf16
    "cpu-portraits": _PORTRAITS,
    # cpu-portraits with ordinary photographs' conditions: 70 % of the crops degraded as in the wild
    # (fsbench.train.augment)
    "cpu-wild": replace(_PORTRAITS, augment=AugmentConfig(p=0.7)),
    "smoke": Config(size=64, arch=Architecture(width=8, disc_width=4, disc_layers=2), mask_textures=(),
                    loop=LoopConfig(steps=4, batch=2, checkpoint_every=2, log_every=1, sample_every=1000)),
}


def load_config(name: str, overrides: dict[str, Any] | None = None) -> Config:
    """A named recipe or a JSON file, with overrides (``fsbench train --set key=value``, dotted keys for nested
    fields)."""
    return resolve_config(Config, CONFIGS, name, overrides or {})
