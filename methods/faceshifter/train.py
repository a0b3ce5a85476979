"""FaceShifter training: AEI-Net first, then HEAR-Net on the frozen AEI-Net (paper Sec. 3.3 and 4).

AEI-Net:  L = adv (hinge, multi-scale D) + 10·att + 5·id + 10·rec, 80 % of samples with X_s = X_t.
HEAR-Net: L = rec + id + chg, 50 % of samples with X_s = X_t, targets with synthetic occluders (+ pose when
``w_pose_hear``).
Adam β = (0, 0.999), lr 4e-4. Each phase has its own resumable checkpoint under ``out/aei`` and ``out/hear``;
under a time limit AEI-Net gets ``1 − hear_time_share`` of it and HEAR-Net the rest.

Loss normalisation (the paper writes sums of squared norms): att = ½ Σ_k mean((z_att^k(Ŷ) − z_att^k(X_t))²),
rec = ½ mean((Ŷ − X_t)²) over the X_s = X_t samples, id = 1 − cos(z_id(Ŷ), z_id(X_s)), chg = mean |Ŷ − Ŷ_s,t|;
images in [-1, 1]. Per-element means keep the paper's weights meaningful at any resolution and width.

The identity loss's recognisers are ``id_losses`` (``fsbench.api.IdentityEnsemble``: 1 − cos averaged over them,
each on its own random augmentation of Ŷ when ``id_augment``); by default the z_id encoder alone, as the paper.
z_id, the generator's input, stays ``id_encoder``'s embedding whatever the loss uses, so a checkpoint trained
with one loss continues with another. ``w_pose`` > 0 adds a pose term to AEI-Net's loss (not the paper's): the
swap's head pose against the target's under a small network fitted to MediaPipe's pose of the training crops
(``fsbench.api.pose_prior``, fitted once per run into ``out``); ``w_pose_hear`` > 0 adds the same term to
HEAR-Net's loss, against the target before its occluders. ``ema_decay`` > 0 keeps a moving average of each
network's weights (not the paper's): the monitor scores it, HEAR-Net trains on AEI-Net's, and the export holds
both. ``monitor_every`` scores fixed validation swaps with dlib (monitor.jsonl).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from fsbench.api import (FaceCrops, IdentityDraw, IdentityEnsemble, LoopConfig, Monitor, Trainer, WeightAverage,
                         export_weights, hinge_d_loss, hinge_g_loss, identity_encoder, pose_loss, pose_prior,
                         prefixed, read_weights, setup_distributed, training_crops, unwrap, wrap_distributed)
from methods.faceshifter.aei import AEINet
from methods.faceshifter.configs import FaceShifterConfig, get_config
from methods.faceshifter.discriminator import MultiScaleDiscriminator
from methods.faceshifter.method import TEMPLATE, FaceShifterNet, weights_config
from methods.faceshifter.occlusion import occlude_batch


def frozen_identity_encoder(cfg: FaceShifterConfig, device: torch.device) -> Any:
    enc = identity_encoder(cfg.id_encoder, device)
    if not hasattr(enc, "embed"):
        raise ValueError(f"identity encoder '{cfg.id_encoder}' is not differentiable (no .embed); "
                         "training needs one (sface, or a torch ArcFace backend)")
    for p in enc.net.parameters():
        p.requires_grad_(False)
    return enc


def _weighted_rec(y: torch.Tensor, x: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    per = 0.5 * (y - x).pow(2).flatten(1).mean(1)
    return (per * same).sum() / same.sum().clamp_min(1)


class Identity:
    """z_id (the generator's input, ``id_encoder``) and the identity loss (``id_losses``, ensembled)."""

    def __init__(self, cfg: FaceShifterConfig, device: torch.device) -> None:
        self.enc = frozen_identity_encoder(cfg, device)
        self.loss_net = IdentityEnsemble(cfg.id_losses or (cfg.id_encoder,), cfg.id_augment, device,
                                         encoders={cfg.id_encoder: self.enc})

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


def _save_grid(rows: list[torch.Tensor], path: Path) -> None:
    """Rows of ``B×3×H×W`` images in [-1, 1] as one PNG."""
    grid = torch.cat([torch.cat(list(r.detach().clamp(-1, 1).cpu()), dim=2) for r in rows], dim=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), ((grid.permute(1, 2, 0).numpy()[..., ::-1] + 1) * 127.5).round().astype(np.uint8))


def ramped(weight: float, steps_in: int, warmup: int) -> float:
    """``weight`` × min(1, (steps_in + 1) / warmup): a loss term that a resumed run adds is ramped in, because
    Adam's second-moment estimate (β2 = 0.999) was built without its gradient; at full weight at once, a large term
    overruns the other terms' step sizes."""
    return weight * min(1.0, (steps_in + 1) / max(1, warmup))


class RampedWeight:
    """A loss weight :func:`ramped` in over the first ``warmup`` steps of this run, whatever step it resumes at."""

    def __init__(self, weight: float, warmup: int) -> None:
        self.weight, self.warmup = weight, warmup
        self.first_step: int | None = None

    def __call__(self, step: int) -> float:
        if self.first_step is None:
            self.first_step = step
        return ramped(self.weight, step - self.first_step, self.warmup)


class BalancedPairs:
    """Swap batches drawn per identity, not per image (``fsbench.api.IdentityDraw``): target and source identity
    uniformly at random, then an image of each, each mirrored with probability ½. A function of (seed, step),
    like :meth:`FaceCrops.swap_batch`, so resumed runs draw the same batches."""

    def __init__(self, crops: FaceCrops) -> None:
        self.crops = crops
        self._draw = IdentityDraw(crops.identities)

    def __call__(self, seed: int, step: int, batch: int, same_ratio: float
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = self.crops.rng(seed, step)
        target, source = self._draw(rng, batch), self._draw(rng, batch)
        same = rng.random(batch) < same_ratio
        flip_t, flip_s = rng.random(batch) < 0.5, rng.random(batch) < 0.5
        tgt = self.crops.tensor(target)
        tgt[flip_t] = tgt[flip_t].flip(-1)
        src = self.crops.tensor(source)
        src[flip_s] = src[flip_s].flip(-1)
        src = torch.where(torch.from_numpy(same)[:, None, None, None], tgt, src)
        return src, tgt, torch.from_numpy(same)


class AEIPhase:
    """One AEI-Net step: generator (adv + att + id + rec, + pose when ``w_pose``) then discriminator (hinge)."""

    def __init__(self, cfg: FaceShifterConfig, crops: FaceCrops, ident: Identity, aei: torch.nn.Module,
                 disc: torch.nn.Module, rank: int, device: torch.device, prior: torch.nn.Module | None) -> None:
        self.cfg, self.pairs, self.ident, self.aei, self.disc = cfg, BalancedPairs(crops), ident, aei, disc
        self.rank, self.device, self.prior = rank, device, prior
        self.pose_weight = RampedWeight(cfg.w_pose, cfg.pose_warmup)
        self.average = WeightAverage(aei, cfg.ema_decay) if cfg.ema_decay else None
        self.opt_g = torch.optim.Adam(aei.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=cfg.betas)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src, tgt, same = self.pairs(self.cfg.seed * 1000 + self.rank, step, self.cfg.batch, self.cfg.same_ratio_aei)
        return src.to(self.device), tgt.to(self.device), same.to(self.device).float()

    def step(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        src, tgt, same = self.batch(step)
        xs, xt = src * 2 - 1, tgt * 2 - 1
        with torch.no_grad():
            z_id = self.ident.z_id(src)
        y, z_att_t, z_att_y = self.aei(xt, z_id, True)
        adv = hinge_g_loss(self.disc(y)[0])
        att = 0.5 * sum((a - b).pow(2).mean() for a, b in zip(z_att_y, z_att_t))
        id_per = self.ident.loss(y, self.ident.targets(src))
        ident = id_per.mean()
        rec = _weighted_rec(y, xt, same)
        loss_g = cfg.w_adv * adv + cfg.w_att * att + cfg.w_id * ident + cfg.w_rec * rec
        logged = dict(adv=adv, att=att, id=ident, id_swap=_swap_mean(id_per, same), rec=rec)
        if self.cfg.w_pose:
            logged["pose"] = pose_loss(self.prior, (y + 1) / 2, tgt).mean()
            loss_g = loss_g + self.pose_weight(step) * logged["pose"]
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        loss_d = hinge_d_loss(*self.disc(xs, y.detach()))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        return {k: round(float(v.detach()), 5) for k, v in dict(g=loss_g, **logged, d=loss_d).items()}

    @torch.no_grad()
    def swap(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """AEI-Net's swaps of crops in [0, 1] (eval mode; rank 0 only: not through DDP, whose forward syncs), by
        its weight average where there is one."""
        aei = self.average.average if self.average else unwrap(self.aei)
        training = aei.training
        aei.eval()
        y = aei(tgt * 2 - 1, self.ident.z_id(src))[0]
        aei.train(training)
        return (y + 1) / 2

    def sample(self, step: int, path: Path) -> None:
        src, tgt, _ = self.pairs(self.cfg.seed + 12345, 0, 6, 0.0)
        src, tgt = src.to(self.device), tgt.to(self.device)
        _save_grid([src * 2 - 1, tgt * 2 - 1, self.swap(src, tgt) * 2 - 1], path)


class HEARPhase:
    """One HEAR-Net step on the frozen AEI-Net: rec + id + chg (+ pose when ``w_pose_hear``), targets occluded
    synthetically."""

    def __init__(self, cfg: FaceShifterConfig, crops: FaceCrops, ident: Identity, aei: AEINet,
                 hear: torch.nn.Module, rank: int, device: torch.device, prior: torch.nn.Module | None) -> None:
        self.cfg, self.pairs, self.ident, self.aei, self.hear = cfg, BalancedPairs(crops), ident, aei.eval(), hear
        self.rank, self.device, self.prior = rank, device, prior
        self.pose_weight = RampedWeight(cfg.w_pose_hear, cfg.pose_warmup)
        self.average = WeightAverage(hear, cfg.ema_decay) if cfg.ema_decay else None
        self.opt = torch.optim.Adam(hear.parameters(), lr=cfg.lr, betas=cfg.betas)

    def inputs(self, step: int, seed: int) -> tuple[torch.Tensor, ...]:
        """(X_s, X_t occluded, same, the loss's embeddings of X_s, Ŷ_s,t, ΔY_t, X_t before its occluders in [0, 1]),
        the other images in [-1, 1]."""
        src, clean, same = self.pairs(seed, step, self.cfg.batch, self.cfg.same_ratio_hear)
        tgt = occlude_batch(clean, np.random.default_rng([seed, step, 1]), self.cfg.occlusion_p)
        src = torch.where(same[:, None, None, None], tgt, src)  # X_s = X_t, occluder included
        src, tgt, same = src.to(self.device), tgt.to(self.device), same.to(self.device).float()
        with torch.no_grad():
            z = self.ident.z_id(torch.cat([src, tgt]))
            xt = tgt * 2 - 1
            y = self.aei(torch.cat([xt, xt]), z)[0]
        y_st, y_tt = y.chunk(2)
        return src * 2 - 1, xt, same, self.ident.targets(src), y_st, xt - y_tt, clean.to(self.device)

    def step(self, step: int) -> dict[str, float]:
        xs, xt, same, targets, y_st, err, clean = self.inputs(step, self.cfg.seed * 1000 + self.rank)
        y = self.hear(y_st, err)
        rec = _weighted_rec(y, xt, same)
        id_per = self.ident.loss(y, targets)
        ident = id_per.mean()
        chg = (y - y_st).abs().mean()
        loss = rec + ident + chg
        logged = dict(rec=rec, id=ident, id_swap=_swap_mean(id_per, same), chg=chg)
        if self.cfg.w_pose_hear:
            logged["pose"] = pose_loss(self.prior, (y + 1) / 2, clean).mean()
            loss = loss + self.pose_weight(step) * logged["pose"]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        logged = dict(loss=loss, **logged)
        return {k: round(float(v.detach()), 5) for k, v in logged.items()}

    def _refine(self, y_st: torch.Tensor, err: torch.Tensor) -> torch.Tensor:
        """HEAR-Net's output in eval mode (rank 0, not through DDP), by its weight average where there is one."""
        hear = self.average.average if self.average else unwrap(self.hear)
        training = hear.training
        hear.eval()
        y = hear(y_st, err)
        hear.train(training)
        return y

    @torch.no_grad()
    def sample(self, step: int, path: Path) -> None:
        xs, xt, _, _, y_st, err, _ = self.inputs(0, self.cfg.seed + 12345)
        _save_grid([xs, xt, y_st, err.clamp(-1, 1), self._refine(y_st, err)], path)

    @torch.no_grad()
    def swap(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """AEI-Net then HEAR-Net on crops in [0, 1] (the shipped network's forward)."""
        xt = tgt * 2 - 1
        y = self.aei(torch.cat([xt, xt]), self.ident.z_id(torch.cat([src, tgt])))[0]
        y_st, y_tt = y.chunk(2)
        return (self._refine(y_st, xt - y_tt) + 1) / 2


def _loop(cfg: FaceShifterConfig, out: Path, steps: int, time_limit_s: float | None) -> LoopConfig:
    return LoopConfig(out=out, steps=steps, seed=cfg.seed, checkpoint_every=cfg.checkpoint_every,
                      log_every=cfg.log_every, sample_every=cfg.sample_every, monitor_every=cfg.monitor_every,
                      time_limit_s=time_limit_s, precision=cfg.precision)


ARCHITECTURE = ("size", "width", "id_encoder", "id_dim")


def initial_weights(cfg: FaceShifterConfig, path: Path | None) -> dict[str, dict[str, torch.Tensor]]:
    """AEI-Net's and HEAR-Net's weights in an exported file (``--init-from``), which must have ``cfg``'s
    architecture; none without a file."""
    if path is None:
        return {}
    recorded = weights_config(path)
    differ = [f"{k} {getattr(recorded, k)} (config: {getattr(cfg, k)})" for k in ARCHITECTURE
              if getattr(recorded, k) != getattr(cfg, k)]
    if differ:
        raise ValueError(f"{path}: its networks do not fit the configuration: {', '.join(differ)}")
    state = read_weights(path)
    return {name: prefixed(state, name) for name in ("aei", "hear")}


def train(config: str, out: Path, device: str = "cpu", init_from: Path | None = None, **overrides: Any) -> Path:
    """Train (or resume) AEI-Net then HEAR-Net into ``out``; exports ``out/faceshifter-<config>.safetensors``.
    ``init_from``: exported weights a fresh phase starts from (with fresh optimisers).

    Overrides: any config field, plus ``steps`` (AEI-Net steps) and ``time_limit_s`` (the whole call).
    """
    time_limit_s = overrides.pop("time_limit_s", None)
    if "steps" in overrides:
        overrides["steps_aei"] = overrides.pop("steps")
    cfg = get_config(config, **overrides)
    initial = initial_weights(cfg, init_from)
    started = time.perf_counter()
    d = setup_distributed(device)
    crops = training_crops(cfg.data, TEMPLATE, cfg.size)
    ident = Identity(cfg, d.device)
    monitor = Monitor(TEMPLATE, cfg.size, device=d.device) if cfg.monitor_every and d.main else None
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and in every run of a configuration
    net, disc = FaceShifterNet(cfg), MultiScaleDiscriminator(cfg)
    aei, disc = wrap_distributed(net.aei, d), wrap_distributed(disc, d)
    prior = pose_prior(out, crops).to(d.device) if cfg.w_pose or cfg.w_pose_hear else None
    phase = AEIPhase(cfg, crops, ident, aei, disc, d.rank, d.device, prior)
    aei_limit = time_limit_s * (1 - cfg.hear_time_share) if time_limit_s else None
    trainer = Trainer(_loop(cfg, out / "aei", cfg.steps_aei, aei_limit), d, {"aei": aei, "disc": disc},
                      {"g": phase.opt_g, "d": phase.opt_d}, phase.average and {"aei_average": phase.average},
                      {"aei": initial["aei"]} if initial else None)
    aei_steps = trainer.run(phase.step, phase.sample, monitor and (lambda: monitor.score(phase.swap)))
    aei_elapsed = trainer.elapsed
    if trainer.interrupted:  # killed: HEAR-Net waits for the next call
        return out / "aei" / "checkpoint.safetensors"
    if phase.average:  # saved with the state above; from here on AEI-Net is its average: HEAR-Net's input, exported
        net.aei.load_state_dict(phase.average.average.state_dict())

    hear = wrap_distributed(net.hear, d)
    hear_phase = HEARPhase(cfg, crops, ident, net.aei, hear, d.rank, d.device, prior)
    hear_limit = max(1.0, time_limit_s - (time.perf_counter() - started)) if time_limit_s else None
    hear_trainer = Trainer(_loop(cfg, out / "hear", cfg.steps_hear, hear_limit), d, {"hear": hear},
                           {"hear": hear_phase.opt}, hear_phase.average and {"hear_average": hear_phase.average},
                           {"hear": initial["hear"]} if initial else None)
    hear_steps = hear_trainer.run(hear_phase.step, hear_phase.sample,
                                  monitor and (lambda: monitor.score(hear_phase.swap)))
    if hear_phase.average:
        net.hear.load_state_dict(hear_phase.average.average.state_dict())

    path = out / f"faceshifter-{Path(config).stem}.safetensors"
    if d.main:
        meta = {"config": json.dumps(cfg.to_dict()), "aei_steps": str(aei_steps), "hear_steps": str(hear_steps),
                "aei_train_s": f"{aei_elapsed:.0f}", "hear_train_s": f"{hear_trainer.elapsed:.0f}",
                "world": str(d.world), "device": str(d.device),
                "identity_loss": json.dumps(ident.loss_net.describe())}
        export_weights(path, net.eval(), meta)
    return path
