"""MobileFSGAN training on FSTriplets-style data through fsbench's loop (DDP, checkpoints, resume).

One step: G on a triplet batch (adversarial + identity at every head, pixel against the ground truth, perceptual
attribute loss at the full-size head), then the three discriminators on real crops and the detached outputs.
Batches are a function of (seed, step, rank), so a resumed run takes the steps an uninterrupted one would.

The identity loss's recognisers are ``id_losses`` (``fsbench.api.IdentityEnsemble``, each on its own random
augmentation of the output when ``id_augment``), by default the generator's input recogniser alone (the paper);
the source embedding fed to the generator stays ``identity``'s. ``ema_decay`` > 0 keeps a moving average of the
generator's weights (not the paper's), which the monitor scores and the export holds. ``monitor_every`` scores
fixed validation swaps with dlib into monitor.jsonl.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fsbench.api import (FaceCrops, IdentityEnsemble, LoopConfig, Monitor, Trainer, WeightAverage, asset_path,
                         export_weights, exported_metadata, hinge_d_loss, landmarks68, read_weights,
                         setup_distributed, training_crops, unwrap, wrap_distributed)
from methods.mobilefsgan import losses
from methods.mobilefsgan.configs import Config, load_config
from methods.mobilefsgan.discriminator import MultiScaleGradientDiscriminator
from methods.mobilefsgan.generator import EncoderDecoder
from methods.mobilefsgan.identity import TEMPLATE, IdentityNet
from methods.mobilefsgan.triplets import Triplets

WEIGHTS = "mobilefsgan.safetensors"
_SOURCE_EDITED = ("id_source", "attr_source")
_SAMPLE_STREAM = 2**31  # the sample grid's batch: a seed no training step (seed, step, rank) uses


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
    """source, target, truth (target where there is none), has_truth, real (an unedited photo per sample)."""
    rows: dict[str, list[np.ndarray]] = {"source": [], "target": [], "truth": [], "real": []}
    has_truth = []
    for _ in range(cfg.batch):
        kind, source, target, truth = triplets.sample(rng)
        if rng.random() < cfg.flip:
            target, truth = target[:, ::-1], None if truth is None else truth[:, ::-1]
        if rng.random() < cfg.flip:
            source = source[:, ::-1]
        rows["source"].append(source)
        rows["target"].append(target)
        rows["truth"].append(target if truth is None else truth)
        rows["real"].append(target if kind in _SOURCE_EDITED else source)
        has_truth.append(truth is not None)
    batch = {k: _tensor([np.ascontiguousarray(im) for im in v], cfg.size) for k, v in rows.items()}
    batch["has_truth"] = torch.tensor(has_truth)
    return batch


def _g_adv(logits: torch.Tensor) -> torch.Tensor:
    """The public code's generator term: hinge with the fake labelled real, mean relu(1 − D(G))."""
    return F.relu(1 - logits).mean()


def _scaled(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)


class Step:
    """The networks, optimisers and losses of one training run; ``__call__(step)`` trains one step."""

    def __init__(self, cfg: Config, triplets: Triplets, device: str) -> None:
        self.cfg, self.triplets = cfg, triplets
        self.d = setup_distributed(device)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank and every fresh run
        self.identity = IdentityNet(cfg.identity, self.d.device)
        self.id_loss = IdentityEnsemble(cfg.id_losses or (cfg.identity,), cfg.id_augment, self.d.device,
                                        encoders={cfg.identity: self.identity.encoder})
        self.G = wrap_distributed(EncoderDecoder(cfg.width, self.identity.dim), self.d)
        self.D = wrap_distributed(MultiScaleGradientDiscriminator(cfg.disc_width, cfg.disc_layers), self.d)
        self.perceptual = losses.perceptual_loss(cfg.perceptual, self.d.device, cfg.vgg19_file)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        self.average = WeightAverage(self.G, cfg.ema_decay) if cfg.ema_decay else None

    @property
    def generator(self) -> torch.nn.Module:
        """The generator the monitor scores and the export holds: the weight average where there is one."""
        return self.average.average if self.average else unwrap(self.G)

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.identity.embed((images + 1) / 2)

    def __call__(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        b = {k: v.to(self.d.device) for k, v in
             make_batch(self.triplets, cfg, np.random.default_rng([cfg.seed, step, self.d.rank])).items()}
        with torch.no_grad():
            source_id = self._embed(b["source"])
            id_targets = self.id_loss.embed((b["source"] + 1) / 2, TEMPLATE)
        full, half, quarter = self.G(b["target"], source_id)
        logits = self.D(full, half, quarter)
        ids = [losses.identity_loss(self.id_loss.cosines((x + 1) / 2, id_targets, TEMPLATE))
               for x in (full, half, quarter)]
        pixel = losses.pixel_loss(full, b["truth"], b["has_truth"])
        perceptual = self.perceptual(full, b["target"])
        adv = [_g_adv(x) for x in logits]
        loss_g = (cfg.w_adv * adv[0] + cfg.w_id * ids[0] + cfg.w_pixel * pixel + cfg.w_perceptual * perceptual
                  + cfg.w_adv_small * (adv[1] + adv[2]) + cfg.w_id_small * (ids[1] + ids[2]))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()

        real = b["real"]
        fake_logits = self.D(full.detach(), half.detach(), quarter.detach())
        real_logits = self.D(real, _scaled(real, cfg.size // 2), _scaled(real, cfg.size // 4))
        d_terms = [0.5 * hinge_d_loss([r], [f]) for r, f in zip(real_logits, fake_logits)]
        loss_d = d_terms[0] + cfg.d_small * (d_terms[1] + d_terms[2])
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        return {"g": loss_g.item(), "d": loss_d.item(), "adv": adv[0].item(), "id": ids[0].item(),
                "id_half": ids[1].item(), "id_quarter": ids[2].item(), "pixel": pixel.item(),
                self.perceptual.label: perceptual.item(), "d_full": d_terms[0].item()}

    @torch.no_grad()
    def swap(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The full-size head's swaps of crops in [0, 1] (eval mode, not through DDP)."""
        G = self.generator
        training = G.training
        G.eval()
        out = G(target * 2 - 1, self._embed(source * 2 - 1))[0]
        G.train(training)
        return (out + 1) / 2

    def sample(self, step: int, path: Path) -> None:
        """A grid of source / target / truth / output for a fixed batch."""
        b = make_batch(self.triplets, self.cfg, np.random.default_rng([self.cfg.seed, _SAMPLE_STREAM]))
        source, target = ((b[k].to(self.d.device) + 1) / 2 for k in ("source", "target"))
        out = self.swap(source, target).cpu() * 2 - 1
        rows = [torch.cat(list(x), 2) for x in (b["source"], b["target"], b["truth"], out)]
        grid = ((torch.cat(rows, 1).permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def initial_weights(cfg: Config, path: Path | None) -> dict[str, dict[str, torch.Tensor]]:
    """The generator's weights in an exported file (``--init-from``), which must have ``cfg``'s architecture; none
    without a file."""
    if path is None:
        return {}
    meta = exported_metadata(path, "config", "embedding")
    recorded = json.loads(meta["config"])
    differ = [f"{k} {recorded.get(k)} (config: {getattr(cfg, k)})" for k in ("width", "identity")
              if recorded.get(k) != getattr(cfg, k)]
    if differ:
        raise ValueError(f"{path}: its generator does not fit the configuration: {', '.join(differ)}")
    return {"G": read_weights(path)}


def run(cfg: Config, out: Path, device: str, crops: FaceCrops, landmarks: np.ndarray,
        initial: dict[str, dict[str, torch.Tensor]] | None = None) -> Path:
    """Train (resuming from ``out``, or a fresh run from ``initial`` weights) and export the generator; returns the
    weights' path."""
    textures = [cv2.cvtColor(cv2.imread(str(asset_path(name))), cv2.COLOR_BGR2RGB) for name in cfg.mask_textures]
    triplets = Triplets(crops.images, crops.identities, landmarks, cfg.mix, textures, cfg.per_identity)
    step = Step(cfg, triplets, device)
    loop = LoopConfig(out=out, steps=cfg.steps, seed=cfg.seed, checkpoint_every=cfg.checkpoint_every,
                      log_every=cfg.log_every, sample_every=cfg.sample_every, monitor_every=cfg.monitor_every,
                      time_limit_s=cfg.time_limit_s, precision=cfg.precision)
    trainer = Trainer(loop, step.d, {"G": step.G, "D": step.D}, {"G": step.opt_g, "D": step.opt_d},
                      step.average and {"G_average": step.average}, initial)
    monitor = Monitor(TEMPLATE, cfg.size, device=step.d.device) if cfg.monitor_every and step.d.main else None
    reached = trainer.run(step, step.sample, monitor and (lambda: monitor.score(step.swap)))
    meta = {"config": json.dumps(cfg.to_dict()), "step": str(reached), "train_seconds": f"{trainer.elapsed:.0f}",
            "embedding": str(step.identity.dim), "identity_loss": json.dumps(step.id_loss.describe())}
    if step.d.main:  # one writer; every rank returns the path
        export_weights(out / WEIGHTS, step.generator, meta)
    return out / WEIGHTS


def train(config: str, out: Path, device: str = "cpu", init_from: Path | None = None, **overrides: Any) -> Path:
    """``fsbench train mobilefsgan``: the configuration's ``data`` (portraits, the mini training identities or a
    folder) as 256 px ffhq-256 crops; a fresh run starts from the exported weights ``init_from`` where given."""
    cfg = load_config(config, **overrides)
    initial = initial_weights(cfg, init_from)
    crops = training_crops(cfg.data, TEMPLATE, 256)
    return run(cfg, Path(out), device, crops, crop_landmarks(crops, Path(out) / "landmarks.npz"), initial)
