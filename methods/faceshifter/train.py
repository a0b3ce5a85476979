"""FaceShifter training: AEI-Net first, then HEAR-Net on the frozen AEI-Net (paper Sec. 3.3 and 4), each a
:class:`fsbench.train.GANRun` that :class:`fsbench.train.Trainer` drives.

AEI-Net:  L = adv (hinge, multi-scale D) + w_att·att + w_id·id + 10·rec (the paper: 10, 5), ``same_ratio`` of the
samples with X_s = X_t (the paper: 80 %).
HEAR-Net: L = rec + id + chg, 50 % of samples with X_s = X_t, half the targets with synthetic occluders.
Adam β = (0, 0.999), lr 4e-4. Each phase has its own resumable checkpoint under ``out/aei`` and ``out/hear``;
under a time limit AEI-Net gets ``1 − hear_time_share`` of it and HEAR-Net the rest.

Loss normalisation (the paper writes sums of squared norms): att = ½ Σ_k mean((z_att^k(Ŷ) − z_att^k(X_t))²),
rec = ½ mean((Ŷ − X_t)²) over the X_s = X_t samples, id = 1 − cos(z_id(Ŷ), z_id(X_s)), chg = mean |Ŷ − Ŷ_s,t|;
images in [-1, 1]. Per-element means keep the paper's weights meaningful at any resolution and width.

The identity loss is the recipe's ``identity_loss`` (:class:`fsbench.train.IdentityEnsemble`), by default the z_id
encoder alone, as the paper. z_id, the generator's input, stays ``arch.id_encoder``'s embedding whatever the loss
uses, so a checkpoint trained with one loss continues with another. ``w_pose`` > 0 adds a pose term to AEI-Net's
loss (not the paper's): the swap's head pose against the target's under a small network fitted to MediaPipe's pose
of the training crops (:func:`fsbench.train.pose_prior.pose_prior`, fitted once per run into ``out``);
``w_pose_hear`` > 0 adds the same term to HEAR-Net's loss, against the target before its occluders. A weight
average (``average.decay``) of each network is what the monitor scores, what HEAR-Net trains on (AEI-Net's) and
what the export holds.

In-the-wild training (not the paper's). ``frames_ratio`` of the X_s ≠ X_t samples take X_s and X_t from two crops
of one person (the training video's frames): real pose and expression change between them, and X_t is the swap's
ground truth, so the reconstruction loss covers them as it covers X_s = X_t. The recipe's ``augment``
(:mod:`fsbench.train.augment`) degrades X_t (its light, blur, noise, compression and framing are attributes the
swap must reproduce, as the reconstruction and attribute losses ask) and X_s on its own draw (z_id must carry the
identity through them; the identity loss compares with X_s before them); an X_s = X_t sample stays one image. Scene
occluders go on X_s in both phases (an occluder must not come through the identity) and on X_t in HEAR-Net's
only: ΔY_t = X_t − AEI(X_t, X_t) is made of what AEI-Net fails to reproduce, and occluders are what HEAR-Net
restores from it (the paper's division of work); an AEI-Net taught to carry occluders through its attribute path
would thin that signal and spend its small capacity on them. The discriminator's real photographs are the degraded
X_s without its occluder: the swaps carry degradations, never a synthetic occluder.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np
import torch

from fsbench.api import (UsageError, exported_metadata, identity_encoder, prefixed, read_weights,
                         recorded_architecture)
from fsbench.train import (Carried, Degradation, Dist, FaceCrops, GANRun, IdentityDraw, IdentityEnsemble, Initial,
                           LoopConfig, Monitor, Trainer, WeightAverage, evaluated, export_weights, exported,
                           hinge_d_loss, hinge_g_loss, pose_loss, require_architecture, sample_rng, save_grid,
                           setup_distributed, source_views, step_rng, training_crops, wrap_distributed)
from fsbench.train.bundle import BundleSpec, recogniser_assets, write as write_bundle
from fsbench.train.pose_prior import pose_prior
from methods.faceshifter.aei import AEINet
from methods.faceshifter.configs import Architecture, FaceShifterConfig, get_config
from methods.faceshifter.discriminator import MultiScaleDiscriminator
from methods.faceshifter.net import TEMPLATE, FaceShifterNet
from methods.faceshifter.occlusion import MASK_ASSETS, occlude_batch

LR, BETAS = 4e-4, (0.0, 0.999)
W_ADV, W_REC = 1.0, 10.0
HEAR_SAME_RATIO = 0.5
OCCLUSION_P = 0.5  # share of HEAR-Net targets that get a synthetic occluder
POSE_WARMUP = 500  # steps over which each call ramps a pose weight in from 0 (see RampedWeight)
SAMPLES = 6  # pairs in a sample grid


def _weighted_rec(y: torch.Tensor, x: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    per = 0.5 * (y - x).pow(2).flatten(1).mean(1)
    return (per * same).sum() / same.sum().clamp_min(1)


class Identity:
    """z_id (the generator's input, ``arch.id_encoder``) and the identity loss (the recipe's ``identity_loss``)."""

    def __init__(self, cfg: FaceShifterConfig, device: torch.device) -> None:
        name = cfg.arch.id_encoder
        self.enc = identity_encoder(name, device)
        if not hasattr(self.enc, "embed"):
            raise UsageError(f"identity encoder '{name}' is not differentiable (no .embed); training needs one "
                             "(sface, or a torch ArcFace backend)")
        self.enc.net.requires_grad_(False)
        self.loss_net = IdentityEnsemble.of(cfg.identity_loss, name, self.enc, device)

    def z_id(self, crops: torch.Tensor) -> torch.Tensor:
        """z_id of crops in [0, 1]."""
        return self.enc.embed(crops, TEMPLATE)

    def targets(self, src: torch.Tensor) -> list[torch.Tensor]:
        """The loss recognisers' embeddings of X_s (in [0, 1], un-augmented)."""
        with torch.no_grad():
            return self.loss_net.embed(src, TEMPLATE)

    def loss(self, y: torch.Tensor, targets: list[torch.Tensor]) -> torch.Tensor:
        """Per sample: 1 − cos(Ŷ, X_s), averaged over the loss recognisers; ``y`` in [-1, 1]."""
        return self.loss_net.loss((y + 1) / 2, targets, TEMPLATE)


def _swap_mean(per_sample: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Mean over the X_s ≠ X_t samples (0 if none): the identity loss that measures swapping, logged beside the
    loss itself, whose mean is dominated by the X_s = X_t samples where it is trivially low."""
    swap = 1 - same
    return (per_sample.detach() * swap).sum() / swap.sum().clamp_min(1)


def ramped(weight: float, steps_in: int, warmup: int) -> float:
    """``weight`` × min(1, (steps_in + 1) / warmup): a loss term that a resumed run adds is ramped in, because
    Adam's second-moment estimate (β2 = 0.999) was built without its gradient; at full weight at once, a large term
    overruns the other terms' step sizes."""
    return weight * min(1.0, (steps_in + 1) / max(1, warmup))


class RampedWeight:
    """A loss weight :func:`ramped` in over the first ``warmup`` steps of this call, whatever step it resumes at."""

    def __init__(self, weight: float, warmup: int = POSE_WARMUP) -> None:
        self.weight, self.warmup = weight, warmup
        self.first_step: int | None = None

    def __call__(self, step: int) -> float:
        if self.first_step is None:
            self.first_step = step
        return ramped(self.weight, step - self.first_step, self.warmup)


class Pairs(NamedTuple):
    """A batch of training pairs, crops in [0, 1]."""

    src: torch.Tensor  # X_s
    tgt: torch.Tensor  # X_t
    same: torch.Tensor  # bool: X_s = X_t, one image
    truth: torch.Tensor  # bool: X_t is Ŷ's ground truth (X_s = X_t, or another crop of X_t's person)


class BalancedPairs:
    """Swap batches drawn per identity, not per image (:class:`fsbench.train.IdentityDraw`): target and source
    identity uniformly at random, then an image of each, each mirrored with probability ½; with ``frames_ratio``,
    that share of the X_s ≠ X_t samples are two crops of one person (frames of the training video)."""

    def __init__(self, crops: FaceCrops, frames_ratio: float = 0.0) -> None:
        self.crops, self.frames_ratio = crops, frames_ratio
        self._draw = IdentityDraw(crops.identities)
        labels, counts = np.unique(crops.identities, return_counts=True)
        self._multi = np.flatnonzero(np.isin(crops.identities, labels[counts >= 2]))
        if frames_ratio and not self._multi.size:
            raise UsageError("frames_ratio needs an identity with two training crops (video frames)")
        self._draw_multi = IdentityDraw(crops.identities[self._multi]) if self._multi.size else None

    def _mates(self, rng: np.random.Generator, target: np.ndarray, source: np.ndarray, same: np.ndarray
               ) -> np.ndarray:
        """Marks ``frames_ratio`` of the X_s ≠ X_t samples and makes their X_t and X_s two crops of one person."""
        mate = (rng.random(len(target)) < self.frames_ratio) & ~same
        for k in np.flatnonzero(mate):
            t = self._multi[self._draw_multi(rng, 1)[0]]
            others = self._multi[(self.crops.identities[self._multi] == self.crops.identities[t]) & (self._multi != t)]
            target[k], source[k] = t, others[rng.integers(len(others))]
        return mate

    def __call__(self, rng: np.random.Generator, batch: int, same_ratio: float) -> Pairs:
        """``same_ratio`` of the samples with X_s = X_t."""
        target, source = self._draw(rng, batch), self._draw(rng, batch)
        same = rng.random(batch) < same_ratio
        flip_t, flip_s = rng.random(batch) < 0.5, rng.random(batch) < 0.5
        mate = self._mates(rng, target, source, same) if self.frames_ratio else np.zeros(batch, bool)
        tgt = self.crops.tensor(target)
        tgt[flip_t] = tgt[flip_t].flip(-1)
        src = self.crops.tensor(source)
        src[flip_s] = src[flip_s].flip(-1)
        same_t = torch.from_numpy(same)
        return Pairs(_one_image(same_t, tgt, src), tgt, same_t, torch.from_numpy(same | mate))


def _one_image(same: torch.Tensor, tgt: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """``src`` with X_t in the X_s = X_t samples."""
    return torch.where(same[:, None, None, None], tgt, src)


def _logged(values: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: round(float(v.detach()), 5) for k, v in values.items()}


class Batch(NamedTuple):
    """AEI-Net's inputs of one step, crops in [0, 1] on the training device."""

    src: torch.Tensor  # X_s as the generator sees it
    tgt: torch.Tensor  # X_t
    truth: torch.Tensor  # 1 where X_t is Ŷ's ground truth (the reconstruction loss's samples), else 0
    id_src: torch.Tensor  # X_s before the in-the-wild degradations: the identity loss's source
    real: torch.Tensor  # the discriminator's real photographs: X_s degraded, without a scene occluder


class AEIRun(GANRun):
    """AEI-Net's training: generator (adv + att + id + rec, + pose when ``w_pose``) then discriminator (hinge)."""

    def __init__(self, cfg: FaceShifterConfig, crops: FaceCrops, ident: Identity, aei: torch.nn.Module,
                 disc: torch.nn.Module, d: Dist, prior: torch.nn.Module | None) -> None:
        self.cfg, self.pairs, self.ident, self.aei = cfg, BalancedPairs(crops, cfg.frames_ratio), ident, aei
        self.disc, self.d, self.prior, self.pose_weight = disc, d, prior, RampedWeight(cfg.w_pose)
        self.modules = {"aei": aei, "disc": disc}
        self.optimizers = {name: torch.optim.Adam(net.parameters(), lr=LR, betas=BETAS)
                           for name, net in (("g", aei), ("d", disc))}
        self.averages = {"aei": WeightAverage(aei, cfg.average.decay)} if cfg.average.decay else {}

    def _batch(self, rng: np.random.Generator, batch: int, same_ratio: float) -> Batch:
        """Pairs with the recipe's in-the-wild degradations: X_t's (reproduced by the swap), X_s's own (an
        occluder included, where drawn), one image where X_s = X_t."""
        p, aug = self.pairs(rng, batch, same_ratio), self.cfg.augment
        src, tgt, real = p.src, p.tgt, p.src
        if aug.p:
            tgt = Degradation.draw(rng, batch, aug)(p.tgt)
            src, real = (_one_image(p.same, tgt, x) for x in source_views(p.src, rng, aug))
        return Batch(*(x.to(self.d.device) for x in (src, tgt, p.truth.float(), p.src, real)))

    def _generator_loss(self, b: Batch, step: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        with torch.no_grad():
            z_id = self.ident.z_id(b.src)
        y, z_att_t, z_att_y = self.aei(b.tgt * 2 - 1, z_id, True)
        adv = hinge_g_loss(self.disc(y)[0])
        att = 0.5 * sum((a - b).pow(2).mean() for a, b in zip(z_att_y, z_att_t))
        id_per = self.ident.loss(y, self.ident.targets(b.id_src))
        rec = _weighted_rec(y, b.tgt * 2 - 1, b.truth)
        loss = W_ADV * adv + cfg.w_att * att + cfg.w_id * id_per.mean() + W_REC * rec
        logged = dict(adv=adv, att=att, id=id_per.mean(), id_swap=_swap_mean(id_per, b.truth), rec=rec)
        if cfg.w_pose:
            logged["pose"] = pose_loss(self.prior, (y + 1) / 2, b.tgt).mean()
            loss = loss + self.pose_weight(step) * logged["pose"]
        return loss, y, logged

    def step(self, step: int) -> dict[str, float]:
        b = self._batch(step_rng(self.cfg.loop.seed, step, self.d.rank), self.cfg.loop.batch, self.cfg.same_ratio)
        loss_g, y, logged = self._generator_loss(b, step)
        self.optimizers["g"].zero_grad(set_to_none=True)
        loss_g.backward()
        self.optimizers["g"].step()
        loss_d = hinge_d_loss(*self.disc(b.real * 2 - 1, y.detach()))
        self.optimizers["d"].zero_grad(set_to_none=True)
        loss_d.backward()
        self.optimizers["d"].step()
        return _logged(dict(g=loss_g, **logged, d=loss_d))

    def swap(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """AEI-Net's swaps of crops in [0, 1]."""
        with evaluated(self.aei, self.averages.get("aei")) as aei:
            return (aei(tgt * 2 - 1, self.ident.z_id(src))[0] + 1) / 2

    def sample(self, step: int, path: Path) -> None:
        b = self._batch(sample_rng(self.cfg.loop.seed), SAMPLES, 0.0)
        save_grid([b.src * 2 - 1, b.tgt * 2 - 1, self.swap(b.src, b.tgt) * 2 - 1], path)


class HEARRun(GANRun):
    """HEAR-Net's training on the frozen AEI-Net: rec + id + chg (+ pose when ``w_pose_hear``), targets occluded
    synthetically."""

    def __init__(self, cfg: FaceShifterConfig, crops: FaceCrops, ident: Identity, aei: AEINet,
                 hear: torch.nn.Module, d: Dist, prior: torch.nn.Module | None) -> None:
        self.cfg, self.pairs, self.ident = cfg, BalancedPairs(crops, cfg.frames_ratio), ident
        self.aei, self.hear, self.d, self.prior = aei.eval(), hear, d, prior
        self.pose_weight = RampedWeight(cfg.w_pose_hear)
        self.modules = {"hear": hear}
        self.optimizers = {"hear": torch.optim.Adam(hear.parameters(), lr=LR, betas=BETAS)}
        self.averages = {"hear": WeightAverage(hear, cfg.average.decay)} if cfg.average.decay else {}

    def _occluded(self, rng: np.random.Generator, batch: int) -> tuple[torch.Tensor, ...]:
        """(X_s, X_t with HEAR-Net's occluders, truth, the identity loss's X_s, X_t before its occluders), with the
        recipe's in-the-wild degradations: one draw for X_t with and without its occluders (a scene occluder
        among them, where drawn: HEAR-Net restores every occluder), X_s's own."""
        p, aug = self.pairs(rng, batch, HEAR_SAME_RATIO), self.cfg.augment
        clean = p.tgt
        tgt = occlude_batch(clean, rng, OCCLUSION_P)
        src = id_src = _one_image(p.same, tgt, p.src)  # X_s = X_t, occluder included
        if aug.p:
            deg = Degradation.draw(rng, batch, aug)
            tgt, clean = deg(deg.occlude(tgt, rng)), deg(clean)
            src = _one_image(p.same, tgt, source_views(p.src, rng, aug)[0])
        return src, tgt, p.truth.float(), id_src, clean

    def inputs(self, rng: np.random.Generator, batch: int) -> tuple[torch.Tensor, ...]:
        """(X_s, X_t occluded, truth, the loss's embeddings of X_s, Ŷ_s,t, ΔY_t, X_t before its occluders in
        [0, 1]), the other images in [-1, 1]."""
        src, tgt, truth, id_src, clean = (x.to(self.d.device) for x in self._occluded(rng, batch))
        with torch.no_grad():
            z = self.ident.z_id(torch.cat([src, tgt]))
            xt = tgt * 2 - 1
            y = self.aei(torch.cat([xt, xt]), z)[0]
        y_st, y_tt = y.chunk(2)
        return src * 2 - 1, xt, truth, self.ident.targets(id_src), y_st, xt - y_tt, clean

    def step(self, step: int) -> dict[str, float]:
        rng = step_rng(self.cfg.loop.seed, step, self.d.rank)
        xs, xt, truth, targets, y_st, err, clean = self.inputs(rng, self.cfg.loop.batch)
        y = self.hear(y_st, err)
        id_per = self.ident.loss(y, targets)
        logged = dict(rec=_weighted_rec(y, xt, truth), id=id_per.mean(), id_swap=_swap_mean(id_per, truth),
                      chg=(y - y_st).abs().mean())
        loss = logged["rec"] + logged["id"] + logged["chg"]
        if self.cfg.w_pose_hear:
            logged["pose"] = pose_loss(self.prior, (y + 1) / 2, clean).mean()
            loss = loss + self.pose_weight(step) * logged["pose"]
        self.optimizers["hear"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["hear"].step()
        return _logged(dict(loss=loss, **logged))

    def _refine(self, y_st: torch.Tensor, err: torch.Tensor) -> torch.Tensor:
        with evaluated(self.hear, self.averages.get("hear")) as hear:
            return hear(y_st, err)

    def sample(self, step: int, path: Path) -> None:
        with torch.no_grad():
            xs, xt, _, _, y_st, err, _ = self.inputs(sample_rng(self.cfg.loop.seed), SAMPLES)
        save_grid([xs, xt, y_st, err.clamp(-1, 1), self._refine(y_st, err)], path)

    @torch.no_grad()
    def swap(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """AEI-Net then HEAR-Net on crops in [0, 1] (the exported network's forward)."""
        xt = tgt * 2 - 1
        y = self.aei(torch.cat([xt, xt]), self.ident.z_id(torch.cat([src, tgt])))[0]
        y_st, y_tt = y.chunk(2)
        return (self._refine(y_st, xt - y_tt) + 1) / 2


def initial_weights(cfg: FaceShifterConfig, path: Path | None) -> dict[str, Initial]:
    """Per phase, AEI-Net's and HEAR-Net's weights and training counts in an exported file (``--init-from``), which
    must have ``cfg``'s architecture (the discriminator, not exported, starts fresh); none without a file."""
    if path is None:
        return {}
    require_architecture(path, recorded_architecture(Architecture, path, "FaceShifter"), cfg.arch, ignore=("d_layers",))
    state, meta = read_weights(path), exported_metadata(path)
    return {name: Initial({name: prefixed(state, name)},
                          Carried(int(meta.get(f"{name}_steps", 0)), float(meta.get(f"{name}_train_s", 0))))
            for name in ("aei", "hear")}


class _Setup:
    """What both phases share: the recipe, the ranks, the crops, the identity networks, the pose prior, the
    monitor (main rank) and the networks (seeded: the same initial weights on every rank and in every run)."""

    def __init__(self, cfg: FaceShifterConfig, out: Path, device: str) -> None:
        self.cfg, self.out, self.d = cfg, out, setup_distributed(device)
        self.crops = training_crops(cfg.data, TEMPLATE, cfg.arch.size)
        self.ident = Identity(cfg, self.d.device)
        self.monitor = Monitor(TEMPLATE, cfg.arch.size, device=self.d.device) if cfg.monitor.every and self.d.main \
            else None
        torch.manual_seed(cfg.loop.seed)
        self.net, self.disc = FaceShifterNet(cfg.arch), MultiScaleDiscriminator(cfg.arch)
        pose = cfg.w_pose or cfg.w_pose_hear
        self.prior = pose_prior(out, self.crops).to(self.d.device) if pose else None

    def trainer(self, run: GANRun, phase: str, loop: LoopConfig, time_limit_s: float | None,
                initial: dict[str, Initial]) -> Trainer:
        return Trainer(run, loop, self.d, self.out / phase, monitor_every=self.cfg.monitor.every,
                       time_limit_s=time_limit_s, initial=initial.get(phase))


def _export(s: _Setup, config: str, phases: dict[str, Trainer]) -> Path:
    path = s.out / f"faceshifter-{Path(config).stem}.safetensors"
    if s.d.main:
        meta = {"config": json.dumps(asdict(s.cfg)), "world": str(s.d.world), "device": str(s.d.device),
                "identity_loss": json.dumps(s.ident.loss_net.describe()),
                **{f"{name}_steps": str(t.total_steps) for name, t in phases.items()},
                **{f"{name}_train_s": f"{t.total_seconds:.0f}" for name, t in phases.items()}}
        export_weights(path, s.net.eval(), meta)
    return path


def train(config: str, out: Path, device: str = "cpu", *, init_from: Path | None = None,
          time_limit_s: float | None = None, overrides: Mapping[str, Any] | None = None) -> Path:
    """Train (or resume) AEI-Net then HEAR-Net into ``out``; exports ``out/faceshifter-<config>.safetensors``.
    ``init_from``: exported weights a fresh phase starts from (with fresh optimisers)."""
    cfg = get_config(config, dict(overrides or {}))
    initial = initial_weights(cfg, init_from)
    started = time.perf_counter()
    s = _Setup(cfg, Path(out), device)
    aei, disc = wrap_distributed(s.net.aei, s.d), wrap_distributed(s.disc, s.d)
    aei_run = AEIRun(cfg, s.crops, s.ident, aei, disc, s.d, s.prior)
    aei_limit = time_limit_s * (1 - cfg.hear_time_share) if time_limit_s else None
    aei_trainer = s.trainer(aei_run, "aei", cfg.loop, aei_limit, initial)
    aei_trainer.train(s.monitor)
    if aei_trainer.interrupted:  # killed: HEAR-Net waits for the next call
        return s.out / "aei" / "checkpoint.safetensors"
    s.net.aei.load_state_dict(exported(aei, aei_run.averages.get("aei")).state_dict())  # HEAR-Net's input, exported
    hear = wrap_distributed(s.net.hear, s.d)
    hear_run = HEARRun(cfg, s.crops, s.ident, s.net.aei, hear, s.d, s.prior)
    hear_limit = max(1.0, time_limit_s - (time.perf_counter() - started)) if time_limit_s else None
    hear_trainer = s.trainer(hear_run, "hear", replace(cfg.loop, steps=cfg.hear_steps), hear_limit, initial)
    hear_trainer.train(s.monitor)
    s.net.hear.load_state_dict(exported(hear, hear_run.averages.get("hear")).state_dict())
    return _export(s, config, {"aei": aei_trainer, "hear": hear_trainer})


def bundle(config: str, out: Path, *, overrides: Mapping[str, Any] | None = None, quality: int | None = None
           ) -> Path:
    """The training bundle of a recipe (:mod:`fsbench.train.bundle`) in the folder ``out``: its crops, its
    recognisers' files, HEAR-Net's occluder photos and, for a pose term, the run's pose prior fitted here (MediaPipe
    labels it, and the bundle's machine need not have MediaPipe)."""
    cfg = get_config(config, dict(overrides or {}))
    files = (*recogniser_assets(cfg.recognisers), *MASK_ASSETS)
    spec = BundleSpec("faceshifter", config, cfg, cfg.data, TEMPLATE, cfg.arch.size, files,
                      pose_prior if cfg.w_pose or cfg.w_pose_hear else None)
    return write_bundle(spec, out, quality)
