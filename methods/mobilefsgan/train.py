"""MobileFSGAN training on FSTriplets-style data: a :class:`fsbench.train.GANRun` that
:class:`fsbench.train.Trainer` drives (DDP, checkpoints, resume).

One step: G on a triplet batch (adversarial + identity at every head, pixel against the ground truth, perceptual
attribute loss at the full-size head, with the public code's weights but for the recipe's ``w_id``), then the three
discriminators on real crops and the detached outputs. Batches follow :func:`fsbench.train.step_rng`, so a resumed
run takes the steps an uninterrupted one would.

The identity loss is the recipe's ``identity_loss`` (:class:`fsbench.train.IdentityEnsemble`), by default the
generator's input recogniser alone (the paper); the source embedding fed to the generator stays
``arch.identity``'s. A weight average (``average.decay``) is what the monitor scores and the export holds.

The recipe's ``augment`` (:mod:`fsbench.train.augment`; not in the paper) degrades the triplets as ordinary
photographs are degraded: target and ground truth alike (the swap reproduces the target's light, blur, noise,
compression and framing), the source on its own, a scene occluder included where drawn (its identity must come
through them; the identity loss compares with the source before them); the discriminators' real photographs carry
the degradations and no scene occluder.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fsbench.api import asset_path, exported_metadata, landmarks68, read_weights, recorded_architecture
from fsbench.train import (AugmentConfig, Carried, Degradation, FaceCrops, GANRun, IdentityEnsemble, Initial, Monitor,
                           Trainer, WeightAverage, evaluated, export_weights, exported, hinge_d_loss,
                           require_architecture, sample_rng, save_grid, setup_distributed, source_views, step_rng,
                           training_crops, wrap_distributed)
from methods.mobilefsgan import losses
from methods.mobilefsgan.configs import Architecture, Config, load_config
from methods.mobilefsgan.discriminator import MultiScaleGradientDiscriminator
from methods.mobilefsgan.generator import EncoderDecoder
from methods.mobilefsgan.identity import TEMPLATE, IdentityNet
from methods.mobilefsgan.triplets import Triplets

BETAS = (0.0, 0.999)
# the public code's generator loss weights: the full-size head, then the two smaller heads; the smaller scales'
# weight in the discriminator loss
W_ADV, W_PIXEL, W_PERCEPTUAL, W_ADV_SMALL, W_ID_SMALL, D_SMALL = 1.0, 10.0, 4.0, 0.02, 20.0, 0.02
FLIP = 0.5  # probability of mirroring a triplet (source mirrored independently)
WEIGHTS = "mobilefsgan.safetensors"
_SOURCE_EDITED = ("id_source", "attr_source")


def crop_landmarks(crops: FaceCrops, cache: Path | None = None) -> np.ndarray:
    """68 landmarks per crop (NaN where dlib finds no face), cached by the crops' content hash."""
    digest = hashlib.sha256(crops.images.tobytes()).hexdigest()[:16]
    if cache is not None and cache.is_file():
        data = np.load(cache)
        if str(data["digest"]) == digest:
            return data["landmarks"]
    out = np.full((len(crops), 68, 2), np.nan, np.float32)
    for i, image in enumerate(crops.images):
        try:
            out[i] = landmarks68(image, crops.template)
        except ValueError:
            continue
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, landmarks=out, digest=np.array(digest))
    return out


def _tensor(images: list[np.ndarray], size: int) -> torch.Tensor:
    """uint8 crops → B×3×size×size in [-1, 1]."""
    resized = [im if im.shape[0] == size else cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
               for im in images]
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def make_batch(triplets: Triplets, cfg: Config, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """source, target, truth (target where there is none), has_truth, real (an unedited photo per sample),
    identity (the source before the in-the-wild degradations: the identity loss's); with the recipe's ``augment``,
    the images degraded (:func:`_in_the_wild`)."""
    rows: dict[str, list[np.ndarray]] = {"source": [], "target": [], "truth": [], "real": []}
    has_truth, kinds = [], []
    for _ in range(cfg.loop.batch):
        kind, source, target, truth = triplets.sample(rng)
        if rng.random() < FLIP:
            target, truth = target[:, ::-1], None if truth is None else truth[:, ::-1]
        if rng.random() < FLIP:
            source = source[:, ::-1]
        rows["source"].append(source)
        rows["target"].append(target)
        rows["truth"].append(target if truth is None else truth)
        rows["real"].append(target if kind in _SOURCE_EDITED else source)
        has_truth.append(truth is not None)
        kinds.append(kind)
    batch = {k: _tensor([np.ascontiguousarray(im) for im in v], cfg.size) for k, v in rows.items()}
    batch["has_truth"], batch["identity"] = torch.tensor(has_truth), batch["source"]
    return _in_the_wild(batch, kinds, rng, cfg.augment) if cfg.augment.p else batch


def _in_the_wild(batch: dict[str, torch.Tensor], kinds: list[str], rng: np.random.Generator, cfg: AugmentConfig
                 ) -> dict[str, torch.Tensor]:
    """A batch's images degraded as in the wild (:mod:`fsbench.train.augment`): one draw for the target and its
    ground truth (the swap reproduces the target's degradations), the source's own (a scene occluder included,
    where drawn: the identity must come through it); a ``same`` source is degraded as its target. Each real photo
    is the degraded image it copies, a source without its scene occluder (the swaps never carry one)."""
    unit = {k: (batch[k] + 1) / 2 for k in ("source", "target", "truth")}
    deg = Degradation.draw(rng, len(kinds), cfg)
    target, truth = deg(unit["target"]), deg(unit["truth"])
    source, real = source_views(unit["source"], rng, cfg)
    same, edited = (torch.tensor([k in group for k in kinds])[:, None, None, None]
                    for group in (("same",), _SOURCE_EDITED))
    as_target = deg(unit["source"])
    source, real = torch.where(same, as_target, source), torch.where(same, as_target, real)
    real = torch.where(edited, target, real)
    images = {"source": source, "target": target, "truth": truth, "real": real}
    return {**batch, **{k: v * 2 - 1 for k, v in images.items()}}


def _g_adv(logits: torch.Tensor) -> torch.Tensor:
    """The public code's generator term: hinge with the fake labelled real, mean relu(1 − D(G))."""
    return F.relu(1 - logits).mean()


def _scaled(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)


class MobileFSGANRun(GANRun):
    """The generator, its discriminators, their optimisers and losses of one training run."""

    def __init__(self, cfg: Config, triplets: Triplets, device: str) -> None:
        self.cfg, self.triplets = cfg, triplets
        self.d = setup_distributed(device)
        torch.manual_seed(cfg.loop.seed)  # identical initial weights on every rank and every fresh run
        self.identity = IdentityNet(cfg.arch.identity, self.d.device)
        self.id_loss = IdentityEnsemble.of(cfg.identity_loss, cfg.arch.identity, self.identity.encoder, self.d.device)
        self.G = wrap_distributed(EncoderDecoder(cfg.arch.width, self.identity.dim), self.d)
        self.D = wrap_distributed(MultiScaleGradientDiscriminator(cfg.arch.disc_width, cfg.arch.disc_layers), self.d)
        self.perceptual = losses.perceptual_loss(cfg.perceptual, self.d.device, cfg.vgg19_file)
        self.modules = {"G": self.G, "D": self.D}
        self.optimizers = {"G": torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=BETAS),
                           "D": torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=BETAS)}
        self.averages = {"G": WeightAverage(self.G, cfg.average.decay)} if cfg.average.decay else {}

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.identity.embed((images + 1) / 2)

    def _generator_loss(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor], tuple]:
        with torch.no_grad():
            source_id = self._embed(b["source"])
            id_targets = self.id_loss.embed((b["identity"] + 1) / 2, TEMPLATE)
        heads = self.G(b["target"], source_id)
        adv = [_g_adv(x) for x in self.D(*heads)]
        ids = [losses.identity_loss(self.id_loss.cosines((x + 1) / 2, id_targets, TEMPLATE)) for x in heads]
        pixel = losses.pixel_loss(heads[0], b["truth"], b["has_truth"])
        perceptual = self.perceptual(heads[0], b["target"])
        loss = (W_ADV * adv[0] + self.cfg.w_id * ids[0] + W_PIXEL * pixel + W_PERCEPTUAL * perceptual
                + W_ADV_SMALL * (adv[1] + adv[2]) + W_ID_SMALL * (ids[1] + ids[2]))
        logged = {"adv": adv[0], "id": ids[0], "id_half": ids[1], "id_quarter": ids[2], "pixel": pixel,
                  self.perceptual.label: perceptual}
        return loss, logged, heads

    def _discriminator_loss(self, real: torch.Tensor, heads: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.cfg.size
        fake_logits = self.D(*(x.detach() for x in heads))
        real_logits = self.D(real, _scaled(real, size // 2), _scaled(real, size // 4))
        d_terms = [0.5 * hinge_d_loss([r], [f]) for r, f in zip(real_logits, fake_logits)]
        return d_terms[0] + D_SMALL * (d_terms[1] + d_terms[2]), d_terms[0]

    def step(self, step: int) -> dict[str, float]:
        rng = step_rng(self.cfg.loop.seed, step, self.d.rank)
        b = {k: v.to(self.d.device) for k, v in make_batch(self.triplets, self.cfg, rng).items()}
        loss_g, logged, heads = self._generator_loss(b)
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss_g.backward()
        self.optimizers["G"].step()
        loss_d, d_full = self._discriminator_loss(b["real"], heads)
        self.optimizers["D"].zero_grad(set_to_none=True)
        loss_d.backward()
        self.optimizers["D"].step()
        return {k: v.item() for k, v in dict(g=loss_g, d=loss_d, **logged, d_full=d_full).items()}

    def swap(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The full-size head's swaps of crops in [0, 1]."""
        with evaluated(self.G, self.averages.get("G")) as G:
            return (G(target * 2 - 1, self._embed(source * 2 - 1))[0] + 1) / 2

    def sample(self, step: int, path: Path) -> None:
        """A grid of source / target / truth / output for a fixed batch."""
        b = make_batch(self.triplets, self.cfg, sample_rng(self.cfg.loop.seed))
        source, target = ((b[k].to(self.d.device) + 1) / 2 for k in ("source", "target"))
        out = self.swap(source, target).cpu() * 2 - 1
        save_grid([b["source"], b["target"], b["truth"], out], path)


def initial_weights(cfg: Config, path: Path | None) -> Initial | None:
    """The generator's weights and training counts in an exported file (``--init-from``), which must have ``cfg``'s
    architecture (the discriminators, not exported, start fresh); none without a file."""
    if path is None:
        return None
    recorded = recorded_architecture(Architecture, path, "MobileFSGAN")
    require_architecture(path, recorded, cfg.arch, ignore=("disc_width", "disc_layers"))
    meta = exported_metadata(path)
    return Initial({"G": read_weights(path)}, Carried(int(meta.get("step", 0)), float(meta.get("train_seconds", 0))))


def run(cfg: Config, out: Path, device: str, crops: FaceCrops, landmarks: np.ndarray, *,
        initial: Initial | None = None, time_limit_s: float | None = None) -> Path:
    """Train (resuming from ``out``, or a fresh run from ``initial`` weights) and export the generator; returns the
    weights' path."""
    textures = [cv2.cvtColor(cv2.imread(str(asset_path(name))), cv2.COLOR_BGR2RGB) for name in cfg.mask_textures]
    triplets = Triplets(crops.images, crops.identities, landmarks, cfg.mix, textures, cfg.per_identity)
    gan = MobileFSGANRun(cfg, triplets, device)
    trainer = Trainer(gan, cfg.loop, gan.d, out, monitor_every=cfg.monitor.every, time_limit_s=time_limit_s,
                      initial=initial)
    monitor = Monitor(TEMPLATE, cfg.size, device=gan.d.device) if cfg.monitor.every and gan.d.main else None
    trainer.train(monitor)
    meta = {"config": json.dumps(asdict(cfg)), "step": str(trainer.total_steps),
            "train_seconds": f"{trainer.total_seconds:.0f}",
            "embedding": str(gan.identity.dim), "identity_loss": json.dumps(gan.id_loss.describe())}
    if gan.d.main:  # one writer; every rank returns the path
        export_weights(out / WEIGHTS, exported(gan.G, gan.averages.get("G")), meta)
    return out / WEIGHTS


def train(config: str, out: Path, device: str = "cpu", *, init_from: Path | None = None,
          time_limit_s: float | None = None, overrides: Mapping[str, Any] | None = None) -> Path:
    """``fsbench train mobilefsgan``: the configuration's ``data`` (portraits, the mini training identities or a
    folder) as 256 px ffhq-256 crops; a fresh run starts from the exported weights ``init_from`` where given."""
    cfg = load_config(config, dict(overrides or {}))
    initial = initial_weights(cfg, init_from)
    crops = training_crops(cfg.data, TEMPLATE, 256)
    landmarks = crop_landmarks(crops, Path(out) / "landmarks.npz")
    return run(cfg, Path(out), device, crops, landmarks, initial=initial, time_limit_s=time_limit_s)
