"""Named FaceShifter configurations: ``paper`` (256 px, full width) and scaled-down ones for CPU training and tests.

Channel counts are the paper's (Fig. 12) times ``width``; the resolution must be a multiple of 128 so that the
U-Net keeps the paper's n = 8 attribute levels (7 stride-2 convolutions down to a ``size/128`` square bottleneck).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from fsbench.api import resolve_config


@dataclass(frozen=True)
class FaceShifterConfig:
    size: int = 256  # crop side (ffhq-256 template)
    width: float = 1.0  # channel multiplier on the paper's channel plan
    id_encoder: str = "sface"  # z_id, the generator's identity input: sface (embedded), arcface-ir-se50
    # the identity loss's recognisers (fsbench.api.IdentityEnsemble; never dlib); (): id_encoder alone (the paper)
    id_losses: tuple[str, ...] = ()
    id_augment: bool = False  # each loss recogniser sees a random differentiable augmentation of the swap
    id_dim: int = 128  # z_id size: 128 for SFace, 512 for the paper's ArcFace
    d_scales: int = 3  # multi-scale discriminator (pix2pixHD-style)
    d_layers: int = 3  # stride-2 layers per scale
    batch: int = 8  # per rank (paper: 4 GPUs × 8)
    lr: float = 4e-4
    betas: tuple[float, float] = (0.0, 0.999)
    same_ratio_aei: float = 0.8
    same_ratio_hear: float = 0.5
    w_adv: float = 1.0
    w_att: float = 10.0
    w_id: float = 5.0
    w_rec: float = 10.0
    w_pose: float = 0.0  # AEI-Net: pose of Ŷ vs X_t under a fitted pose network (fsbench.api.pose_loss); 0: none
    w_pose_hear: float = 0.0  # HEAR-Net: the same pose term on its output Y vs the un-occluded X_t; 0: none
    pose_warmup: int = 500  # steps over which each run ramps a pose weight in from 0 (see train.RampedWeight)
    # decay of the exponential moving average of AEI-Net's and HEAR-Net's weights that the monitor scores and the
    # export holds (fsbench.api.WeightAverage; not in the paper); 0: the live weights, as the paper
    ema_decay: float = 0.0
    steps_aei: int = 500_000
    steps_hear: int = 50_000
    hear_time_share: float = 0.15  # of a time limit, the share left to HEAR-Net after AEI-Net
    data: str | None = None  # "portraits", an image folder (identity = subfolder) or None (mini training identities)
    occlusion_p: float = 0.5  # share of HEAR-Net targets that get a synthetic occluder
    seed: int = 0
    checkpoint_every: int = 200
    sample_every: int = 500
    log_every: int = 10
    monitor_every: int = 0  # validation swaps scored with dlib every N steps (fsbench.api.Monitor); 0: none
    precision: str = "fp32"  # "bf16": training steps under autocast; "auto": bf16 where native (fsbench.api.LoopConfig)

    @property
    def recognisers(self) -> tuple[str, ...]:
        """Every recogniser whose embedding the training used (z_id and the identity loss)."""
        return tuple(dict.fromkeys((self.id_encoder, *self.id_losses)))

    def channels(self, paper: int, floor: int = 4) -> int:
        """The paper's channel count scaled by ``width`` (at least ``floor``)."""
        return max(floor, int(round(paper * self.width)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CONFIGS: dict[str, FaceShifterConfig] = {
    "paper": FaceShifterConfig(),
    # the paper's 512-d ArcFace z_id: the user's IR-SE50 file (`fsbench assets add arcface-ir-se50 PATH`)
    "paper-arcface": FaceShifterConfig(id_encoder="arcface-ir-se50", id_dim=512),
    # AEI-Net and HEAR-Net at 128 px and 1/8 of the paper's width on the mini training identities: one CPU core
    "cpu": FaceShifterConfig(size=128, width=1 / 8, batch=8, steps_aei=100_000, steps_hear=100_000,
                             checkpoint_every=100, sample_every=250),
    # the shipped weights' recipe: cpu's networks on the portraits training split, the SFace + FaceNet ensemble loss
    # on augmented swaps, 20 % X_s = X_t (the paper: 80 %), a pose term, a 0.999 weight average, bf16 steps where the
    # CPU has native bf16
    "cpu-portraits": FaceShifterConfig(size=128, width=1 / 8, batch=8, steps_aei=100_000, steps_hear=100_000,
                                       checkpoint_every=100, sample_every=250, data="portraits", same_ratio_aei=0.2,
                                       id_losses=("sface", "facenet"), id_augment=True, monitor_every=250,
                                       w_id=12.0, w_att=30.0, w_pose=14.0, w_pose_hear=1.0, hear_time_share=0.2,
                                       ema_decay=0.999, precision="auto"),
    # tests: every part, tiny
    "tiny": FaceShifterConfig(size=128, width=1 / 32, batch=2, d_layers=2, checkpoint_every=1, sample_every=1,
                              log_every=1),
}


def get_config(name: str, **overrides: Any) -> FaceShifterConfig:
    """A named configuration or a JSON file of fields, with ``overrides`` applied (unknown keys are errors)."""
    cfg = resolve_config(FaceShifterConfig, CONFIGS, name, overrides)
    if cfg.size % 128:
        raise ValueError(f"size must be a multiple of 128 (n = 8 attribute levels), got {cfg.size}")
    return cfg
