"""The trainer: drives a :class:`GANRun` step by step, deterministic per step, with checkpoints that survive a kill
and JSONL loss logs.

One seed rule (:func:`step_rng`): every random draw of a step (its batch, its edits, torch's generator) comes from
(seed, step, rank, stream), so a run resumed from a checkpoint takes exactly the steps an uninterrupted run would
have taken, and ranks draw different batches.
"""
from __future__ import annotations

import json
import signal
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from fsbench.api import native_bf16_cpu
from fsbench.train import checkpoint
from fsbench.train.average import WeightAverage
from fsbench.train.checkpoint import unwrap
from fsbench.train.config import LoopConfig
from fsbench.train.dist import Dist

# the streams of one step (step_rng's last number): torch's generator and the batch (its images, edits and
# occluders); SAMPLE_STREAM (at step 0) gives the fixed batch of the sample grids
TORCH_STREAM, BATCH_STREAM, SAMPLE_STREAM = 0, 1, 2


def step_rng(seed: int, step: int, rank: int = 0, stream: int = BATCH_STREAM) -> np.random.Generator:
    """The generator of one stream of one step of one rank: the seed rule of every training run."""
    return np.random.default_rng([seed, step, rank, stream])


def sample_rng(seed: int) -> np.random.Generator:
    """The generator of the sample grids' fixed batch (the same at every step, on rank 0)."""
    return step_rng(seed, 0, 0, SAMPLE_STREAM)


class GANRun(ABC):
    """What the trainer drives: the networks it checkpoints (``modules``, generators and discriminators by name),
    their ``optimizers``, the weight ``averages`` of some of them (module name → :class:`WeightAverage`, updated
    after every step and checkpointed as ``<name>_average``), one training ``step``, the ``swap`` the monitor
    scores and a ``sample`` grid."""

    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    averages: dict[str, WeightAverage]

    @abstractmethod
    def step(self, step: int) -> dict[str, float]:
        """One training step (batches drawn with :func:`step_rng`); returns the losses to log."""

    @abstractmethod
    def swap(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Swaps of crops in [0, 1] by the network the export holds (:func:`fsbench.train.average.evaluated`)."""

    @abstractmethod
    def sample(self, step: int, path: Path) -> None:
        """A PNG grid of the fixed batch of :func:`sample_rng` and its swaps."""


def save_grid(rows: list[torch.Tensor], path: Path) -> None:
    """Rows of ``B×3×H×W`` images in [-1, 1] as one PNG (a :meth:`GANRun.sample` grid)."""
    import cv2

    grid = torch.cat([torch.cat(list(r.detach().float().clamp(-1, 1).cpu()), dim=2) for r in rows], dim=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), ((grid.permute(1, 2, 0).numpy()[..., ::-1] + 1) * 127.5).round().astype(np.uint8))


def bf16_steps(precision: str, device: torch.device) -> bool:
    """Whether training steps run under bf16 autocast: always for ``bf16``; for ``auto`` on a CPU whose oneDNN has
    native bf16 kernels or a CUDA device that supports bf16 (elsewhere bf16 is emulated, see :func:`emulated_bf16`,
    and ``auto`` trains in fp32)."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return native_bf16_cpu(device)


def emulated_bf16(precision: str, device: torch.device) -> bool:
    """Whether bf16 steps would run on a CPU without native bf16 kernels, where oneDNN emulates them an order of
    magnitude slower than fp32."""
    return precision == "bf16" and device.type == "cpu" and not native_bf16_cpu(device)


class Carried(NamedTuple):
    """The training steps and seconds behind the exported weights a fresh run starts from (``--init-from``): an
    export counts its whole chain of runs."""

    steps: int = 0
    seconds: float = 0.0


class Initial(NamedTuple):
    """What a fresh run of one phase starts from (``--init-from``): exported weights (module name → state dict)
    and the training behind them."""

    weights: dict[str, dict[str, torch.Tensor]]
    carried: Carried = Carried()


class Trainer:
    """Runs a :class:`GANRun` in the run folder ``out`` from its last checkpoint to ``loop.steps``.

    ``initial`` starts a run whose folder holds no checkpoint from exported weights, with fresh optimisers
    (``fsbench train --init-from``); its counts carry into :attr:`total_steps` and :attr:`total_seconds`, and the
    checkpoint keeps them. ``monitor_every`` > 0 scores the run's swaps with the monitor given to :meth:`train`
    where the call starts and every ``monitor_every`` steps; ``time_limit_s`` ends the call with a checkpoint."""

    def __init__(self, gan: GANRun, loop: LoopConfig, d: Dist, out: Path, *, monitor_every: int = 0,
                 time_limit_s: float | None = None, initial: Initial | None = None) -> None:
        self.gan, self.loop, self.d, self.out = gan, loop, d, out
        self.monitor_every, self.time_limit_s = monitor_every, time_limit_s
        self.initial = initial or Initial({})
        self.ckpt = out / "checkpoint.safetensors"
        self.step = 0
        self.elapsed = 0.0  # training seconds over every call that trained this run, recorded in the checkpoint
        self.carried = self.initial.carried
        self._stop = False

    @property
    def interrupted(self) -> bool:
        """Whether the last call stopped on SIGTERM/SIGINT (callers with several phases stop there too)."""
        return self._stop

    @property
    def total_steps(self) -> int:
        """Steps of this run and of the runs its initial weights came from."""
        return self.carried.steps + self.step

    @property
    def total_seconds(self) -> float:
        """Training seconds of this run and of the runs its initial weights came from."""
        return self.carried.seconds + self.elapsed

    def _networks(self) -> dict[str, torch.nn.Module]:
        averaged = {f"{name}_average": a.average for name, a in self.gan.averages.items()}
        return {**self.gan.modules, **averaged}

    def resume(self) -> int:
        """Load the last checkpoint (or the initial weights of a fresh run); returns the step reached."""
        saved = checkpoint.module_names(self.ckpt) if self.ckpt.is_file() else set()
        if saved:
            networks = {name: net for name, net in self._networks().items() if name in saved}
            self.step, extra = checkpoint.load(self.ckpt, networks, self.gan.optimizers)
            self.elapsed = float(extra.get("elapsed_s", 0.0))
            self.carried = Carried(int(extra.get("carried_steps", self.carried.steps)),
                                   float(extra.get("carried_s", self.carried.seconds)))
            if self.initial.weights and self.d.main:
                print(f"{self.ckpt}: resuming at step {self.step} (initial weights start a fresh run only)")
        else:
            for name, state in self.initial.weights.items():
                unwrap(self.gan.modules[name]).load_state_dict(state)
        for name, average in self.gan.averages.items():
            if f"{name}_average" not in saved:  # a fresh run, or a state saved before averaging began
                average.reset()
        return self.step

    def save(self) -> None:
        if self.d.main:
            checkpoint.save(self.ckpt, self._networks(), self.gan.optimizers, self.step,
                            {"elapsed_s": self.elapsed, "carried_steps": self.carried.steps,
                             "carried_s": self.carried.seconds})

    def _on_signal(self, signum, frame) -> None:  # noqa: ANN001 — signal handler signature
        self._stop = True

    def _monitor(self, monitor: Any, at_start: bool = False) -> None:
        from fsbench.train.monitor import RECORD_FILE, append_record, read_records

        if monitor is None or not self.monitor_every or not self.d.main:
            return
        path = self.out / RECORD_FILE
        if at_start and path.is_file() and any(r["step"] == self.step for r in read_records(path)):
            return
        if at_start or self.step % self.monitor_every == 0:
            append_record(path, self.step, monitor.score(self.gan.swap))

    def _precision(self) -> bool:
        bf16 = bf16_steps(self.loop.precision, self.d.device)
        if self.d.main and emulated_bf16(self.loop.precision, self.d.device):
            print("warning: precision bf16 on a CPU without native bf16 kernels is emulated and runs many times "
                  "slower than fp32 here; train with precision fp32 (or auto) on this machine")
        elif self.d.main and self.loop.precision == "auto":
            print(f"precision auto: {'bf16' if bf16 else 'fp32'} steps on this {self.d.device.type}")
        return bf16

    def _log(self, losses: dict[str, float], step_s: float) -> None:
        if self.d.main and (self.step % self.loop.log_every == 0 or self.step == 1):
            with open(self.out / "losses.jsonl", "a") as f:
                f.write(json.dumps({"step": self.step, "seconds": round(self.elapsed, 2),
                                    "step_s": round(step_s, 3), **losses}) + "\n")

    def _one_step(self, bf16: bool, elapsed_before: float, started: float) -> None:
        loop = self.loop
        seed = step_rng(loop.seed, self.step, self.d.rank, TORCH_STREAM).integers(2**63)
        torch.manual_seed(int(seed))
        t0 = time.perf_counter()
        with torch.autocast(self.d.device.type, torch.bfloat16, enabled=bf16):
            losses = self.gan.step(self.step)
        for average in self.gan.averages.values():
            average.update()
        self.step += 1
        self.elapsed = elapsed_before + (time.perf_counter() - started)
        self._log(losses, time.perf_counter() - t0)
        if self.step % loop.checkpoint_every == 0:
            self.save()
        if self.d.main and self.step % loop.sample_every == 0:
            self.gan.sample(self.step, self.out / "samples" / f"step{self.step:07d}.png")

    def train(self, monitor: Any = None) -> int:
        """Train from the last checkpoint to ``loop.steps``; returns the step reached. ``monitor`` (a
        :class:`fsbench.train.monitor.Monitor`, main rank only) scores :meth:`GANRun.swap`."""
        self.resume()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        self.out.mkdir(parents=True, exist_ok=True)
        started, elapsed_before = time.perf_counter(), self.elapsed
        bf16 = self._precision()
        self._monitor(monitor, at_start=True)
        try:
            while self.step < self.loop.steps and not self._stop:
                self._one_step(bf16, elapsed_before, started)
                self._monitor(monitor)
                if self.time_limit_s and time.perf_counter() - started > self.time_limit_s:
                    break
        finally:
            self.save()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return self.step
