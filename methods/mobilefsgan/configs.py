"""Named training configurations. ``paper`` is the public code's setting; ``cpu`` a 128 px run on the mini training
identities for one CPU core; ``cpu-portraits`` the shipped weights' recipe; ``smoke`` a seconds-long run for tests."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fsbench.api import resolve_config

# the public FaceShifterDataset's probabilities, regrouped into fsbench's triplet kinds
PAPER_MIX = {"pair": 0.6, "same": 0.112, "frames": 0.06, "id_target": 0.078, "id_source": 0.0,
             "attr_target": 0.15, "attr_source": 0.0}

# fabric photos for the mask occluder (insightface's surgical-mask textures, embedded assets)
MASK_TEXTURES = tuple(f"media/insightface/mask_{c}.jpg" for c in ("black", "blue", "green", "white"))


@dataclass
class Config:
    size: int = 256  # training crop side; heads at size, size/2, size/4
    width: int = 64  # the paper's N
    identity: str = "sface"  # "sface" (embedded, 128-d) or "mobilefacenet" (the user's file, 512-d: assets add)
    # the identity loss's recognisers (fsbench.api.IdentityEnsemble; never dlib); (): ``identity`` alone (the paper)
    id_losses: tuple[str, ...] = ()
    id_augment: bool = False  # each loss recogniser sees a random differentiable augmentation of the output
    data: str | None = None  # "portraits", an image folder (identity = subfolder) or None (mini training identities)
    per_identity: bool = False  # draw triplet images per identity (an identity, then its image), not per image
    perceptual: str = "mobilenet_v2"  # or "vgg19" (needs vgg19_file)
    vgg19_file: str = ""
    disc_width: int = 16
    disc_layers: int = 4
    batch: int = 16
    steps: int = 500_000
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.999)
    # decay of the exponential moving average of the generator's weights that the monitor scores and the export holds
    # (fsbench.api.WeightAverage; not in the paper); 0: the live weights, as the paper
    ema_decay: float = 0.0
    # generator loss weights: full-size head, then the two smaller heads (the public code's numbers)
    w_adv: float = 1.0
    w_id: float = 20.0
    w_pixel: float = 10.0
    w_perceptual: float = 4.0
    w_adv_small: float = 0.02
    w_id_small: float = 20.0
    d_small: float = 0.02  # discriminator loss weight of the two smaller scales
    flip: float = 0.5  # probability of mirroring a triplet (source mirrored independently)
    mix: dict[str, float] = field(default_factory=lambda: dict(PAPER_MIX))
    mask_textures: list[str] = field(default_factory=lambda: list(MASK_TEXTURES))  # assets; [] = flat colours
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    sample_every: int = 250
    time_limit_s: float | None = None
    monitor_every: int = 0  # validation swaps scored with dlib every N steps (fsbench.api.Monitor); 0: none
    precision: str = "fp32"  # "bf16": training steps under autocast; "auto": bf16 where native (fsbench.api.LoopConfig)

    @property
    def recognisers(self) -> tuple[str, ...]:
        return training_recognisers(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_recognisers(config: dict[str, Any]) -> tuple[str, ...]:
    """Every recogniser a configuration (as recorded in a weights file) trained with: input and loss."""
    return tuple(dict.fromkeys((config["identity"], *config.get("id_losses", ()))))


_CPU_MIX = {"pair": 0.35, "same": 0.15, "frames": 0.2, "id_target": 0.06, "id_source": 0.06, "attr_target": 0.1,
            "attr_source": 0.08}
CONFIGS: dict[str, dict[str, Any]] = {
    "paper": {},
    # more triplets with a ground truth than the paper's mix (a few thousand steps need the pixel loss's pull);
    # flat-coloured mask occluders
    "cpu": {"size": 128, "batch": 4, "steps": 20_000, "lr_g": 2e-4, "lr_d": 2e-4, "mask_textures": [],
            "mix": _CPU_MIX},
    # the shipped weights' recipe: the portraits training split drawn per identity, the SFace + FaceNet ensemble
    # loss on augmented outputs at twice the paper's identity weight, the paper's triplet mix, the live generator
    # exported (no weight average), bf16 steps where the CPU has native bf16
    "cpu-portraits": {"size": 128, "batch": 4, "steps": 100_000, "lr_g": 2e-4, "lr_d": 2e-4, "mask_textures": [],
                      "mix": dict(PAPER_MIX), "w_id": 40.0, "data": "portraits", "per_identity": True,
                      "id_losses": ("sface", "facenet"), "id_augment": True, "monitor_every": 250,
                      "precision": "auto"},
    "smoke": {"size": 64, "width": 8, "disc_width": 4, "disc_layers": 2, "batch": 2, "steps": 4,
              "checkpoint_every": 2, "log_every": 1, "sample_every": 1000, "mask_textures": []},
}


def load_config(name: str, **overrides: Any) -> Config:
    """A named configuration or a JSON file, with overrides (``fsbench train --set key=value``)."""
    return resolve_config(Config, CONFIGS, name, overrides)
