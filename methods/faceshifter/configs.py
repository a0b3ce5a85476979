"""FaceShifter's architecture and named training recipes: ``paper`` (256 px, full width) and scaled-down ones for CPU
training and tests.

Channel counts are the paper's (Fig. 12) times ``width``; the resolution must be a multiple of 128 so that the
U-Net keeps the paper's n = 8 attribute levels (7 stride-2 convolutions down to a ``size/128`` square bottleneck).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fsbench.api import UsageError
from fsbench.train import AugmentConfig, AverageConfig, IdentityLossConfig, LoopConfig, MonitorConfig, resolve_config


@dataclass(frozen=True)
class Architecture:
    """What the networks are built from (AEI-Net, HEAR-Net, the discriminator); nothing of the training."""

    size: int = 256  # crop side (ffhq-256 template)
    width: float = 1.0  # channel multiplier on the paper's channel plan
    id_encoder: str = "sface"  # z_id, the generator's identity input: sface (embedded), arcface-ir-se50
    id_dim: int = 128  # z_id size: 128 for SFace, 512 for the paper's ArcFace
    d_layers: int = 3  # stride-2 layers per discriminator scale

    def __post_init__(self) -> None:
        if self.size % 128:
            raise UsageError(f"size must be a multiple of 128 (n = 8 attribute levels), got {self.size}")

    def channels(self, paper: int, floor: int = 4) -> int:
        """The paper's channel count scaled by ``width`` (at least ``floor``)."""
        return max(floor, int(round(paper * self.width)))


@dataclass(frozen=True)
class FaceShifterConfig:
    """A training recipe: the architecture, the scaffold's parts (``loop.steps`` are AEI-Net's) and FaceShifter's
    own fields."""

    arch: Architecture = field(default_factory=Architecture)
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=500_000, batch=8))  # paper: 4 GPUs × 8
    identity_loss: IdentityLossConfig = field(default_factory=IdentityLossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # in-the-wild degradations; default: none
    average: AverageConfig = field(default_factory=AverageConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    data: str | None = None  # "portraits", an image folder (identity = subfolder) or None (mini training identities)
    same_ratio: float = 0.8  # AEI-Net's share of X_s = X_t samples (HEAR-Net: the paper's 0.5)
    frames_ratio: float = 0.0  # share of the X_s ≠ X_t samples drawn as two crops of one person (video frames)
    w_att: float = 10.0
    w_id: float = 5.0
    w_pose: float = 0.0  # AEI-Net: pose of Ŷ vs X_t under a fitted pose network (fsbench.train.pose_loss); 0: none
    w_pose_hear: float = 0.0  # HEAR-Net: the same pose term on its output Y vs the un-occluded X_t; 0: none
    hear_steps: int = 50_000
    hear_time_share: float = 0.15  # of a time limit, the share left to HEAR-Net after AEI-Net

    @property
    def recognisers(self) -> tuple[str, ...]:
        """Every recogniser whose embedding the training uses (z_id and the identity loss)."""
        return tuple(dict.fromkeys((self.arch.id_encoder, *self.identity_loss.resolved(self.arch.id_encoder))))


_CPU = FaceShifterConfig(arch=Architecture(size=128, width=1 / 8),
                         loop=LoopConfig(steps=100_000, batch=8, checkpoint_every=100, sample_every=250),
                         hear_steps=100_000)
_PORTRAITS = replace(_CPU, loop=replace(_CPU.loop, precision="auto"), data="portraits", same_ratio=0.2,
                     identity_loss=IdentityLossConfig(("sface", "facenet"), augment=True),
                     monitor=MonitorConfig(every=250), average=AverageConfig(decay=0.999), w_id=12.0, w_att=30.0,
                     w_pose=14.0, w_pose_hear=1.0, hear_time_share=0.2)
CONFIGS: dict[str, FaceShifterConfig] = {
    "paper": FaceShifterConfig(),
    # the paper's 512-d ArcFace z_id: the user's IR-SE50 file (`fsbench assets add arcface-ir-se50 PATH`)
    "paper-arcface": FaceShifterConfig(arch=Architecture(id_encoder="arcface-ir-se50", id_dim=512)),
    # AEI-Net and HEAR-Net at 128 px and 1/8 of the paper's width on the mini training identities: one CPU core
    "cpu": _CPU,
    # the shipped weights' recipe: cpu's networks on the portraits training split, the SFace + FaceNet ensemble loss
    # on augmented swaps, 20 % X_s = X_t (the paper: 80 %), a pose term, a 0.999 weight average, bf16 steps where the
    # CPU has native bf16
    "cpu-portraits": _PORTRAITS,
    # cpu-portraits with ordinary photographs' conditions: 70 % of the crops degraded as in the wild
    # (fsbench.train.augment), and a tenth of the pairs of two people replaced by two crops of the training video's
    # man (real pose and expression change; X_t is the ground truth)
    "cpu-wild": replace(_PORTRAITS, augment=AugmentConfig(p=0.7), frames_ratio=0.1),
    # tests: every part, tiny
    "tiny": FaceShifterConfig(arch=Architecture(size=128, width=1 / 32, d_layers=2),
                              loop=LoopConfig(batch=2, checkpoint_every=1, sample_every=1, log_every=1)),
}

# cpu-wild's losses and data for one GPU, trained from a training bundle (`fsbench bundle`, MODEL_CARD.md): AEI-Net
# and HEAR-Net at twice its width, batch 32 (the paper's 4 GPUs × 8), bf16 steps where the GPU has them, the identity
# loss on SFace alone (FaceNet's file does not travel to a lent GPU beside the repository), no monitor (it scores
# with dlib)
CONFIGS["gpu"] = replace(CONFIGS["cpu-wild"], arch=Architecture(size=128, width=1 / 4),
                         loop=LoopConfig(steps=500_000, batch=32, checkpoint_every=2000, log_every=50,
                                         sample_every=1000, precision="auto"),
                         identity_loss=IdentityLossConfig(("sface",), augment=True), monitor=MonitorConfig(every=0))


def get_config(name: str, overrides: dict[str, Any] | None = None) -> FaceShifterConfig:
    """A named recipe or a JSON file of fields, with ``overrides`` applied (dotted keys for nested fields; unknown
    keys are errors)."""
    return resolve_config(FaceShifterConfig, CONFIGS, name, overrides or {})
