"""A resumable training loop: deterministic per step, checkpoints that survive a kill, JSONL loss logs.

Every step seeds torch with ``seed + step`` and methods draw their batches as a function of the step, so a run
resumed from a checkpoint takes exactly the steps an uninterrupted run would have taken.
"""
from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from fsbench.train import checkpoint
from fsbench.train.average import WeightAverage
from fsbench.train.checkpoint import unwrap
from fsbench.train.dist import Dist

StepFn = Callable[[int], dict[str, float]]
SampleFn = Callable[[int, Path], None]
MonitorFn = Callable[[], dict]  # scores the current networks (fsbench.train.monitor.Monitor.score)


@dataclass
class LoopConfig:
    out: Path
    steps: int
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 10
    sample_every: int = 500
    monitor_every: int = 0  # 0: no monitor; else records in out/monitor.jsonl where a call starts and every N
    time_limit_s: float | None = None  # stop (with a checkpoint) after this long
    # "bf16": each step runs under torch.autocast in bfloat16 (weights, optimiser state and checkpoints stay fp32);
    # "auto": bf16 where the device has native bf16 kernels, else fp32 (see bf16_steps)
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(f"training precision must be fp32, bf16 or auto, got {self.precision!r}")


def native_bf16_cpu(device: torch.device) -> bool:
    """Whether ``device`` is a CPU whose oneDNN has native bf16 kernels (on other CPUs bf16 is emulated, many times
    slower than fp32); training's and inference's ``auto`` precision both ask this."""
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


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


class Trainer:
    """Runs ``step_fn`` from the last checkpoint; ``averages`` (name → :class:`WeightAverage`) are updated after every
    step and checkpointed beside ``modules``. ``initial`` (module name → state dict) starts a run whose folder holds
    no checkpoint from those weights, with fresh optimisers (``fsbench train --init-from``)."""

    def __init__(self, cfg: LoopConfig, d: Dist, modules: dict[str, torch.nn.Module],
                 optimizers: dict[str, torch.optim.Optimizer],
                 averages: dict[str, WeightAverage] | None = None,
                 initial: dict[str, dict[str, torch.Tensor]] | None = None) -> None:
        self.cfg, self.d, self.modules, self.optimizers = cfg, d, modules, optimizers
        self.averages, self.initial = averages or {}, initial or {}
        self.ckpt = cfg.out / "checkpoint.safetensors"
        self.step = 0
        self.elapsed = 0.0  # training seconds over every call that trained this run, recorded in the checkpoint
        self._stop = False

    @property
    def interrupted(self) -> bool:
        """Whether the last run stopped on SIGTERM/SIGINT (callers with several phases stop there too)."""
        return self._stop

    def resume(self) -> int:
        saved = checkpoint.module_names(self.ckpt) if self.ckpt.is_file() else set()
        if saved:
            averaged = {name: a.average for name, a in self.averages.items() if name in saved}
            self.step, extra = checkpoint.load(self.ckpt, {**self.modules, **averaged}, self.optimizers)
            self.elapsed = float(extra.get("elapsed_s", 0.0))
            if self.initial and self.d.main:
                print(f"{self.ckpt}: resuming at step {self.step} (initial weights start a fresh run only)")
        else:
            for name, state in self.initial.items():
                unwrap(self.modules[name]).load_state_dict(state)
        for name, average in self.averages.items():
            if name not in saved:  # a fresh run, or a state saved before averaging began
                average.reset()
        return self.step

    def save(self) -> None:
        if self.d.main:
            averaged = {name: a.average for name, a in self.averages.items()}
            checkpoint.save(self.ckpt, {**self.modules, **averaged}, self.optimizers, self.step,
                            {"elapsed_s": self.elapsed})

    def _on_signal(self, signum, frame) -> None:  # noqa: ANN001 — signal handler signature
        self._stop = True

    def _monitor(self, monitor_fn: MonitorFn | None, at_start: bool = False) -> None:
        from fsbench.train.monitor import RECORD_FILE, append_record, read_records

        if monitor_fn is None or not self.cfg.monitor_every or not self.d.main:
            return
        path = self.cfg.out / RECORD_FILE
        if at_start and path.is_file() and any(r["step"] == self.step for r in read_records(path)):
            return
        if at_start or self.step % self.cfg.monitor_every == 0:
            append_record(path, self.step, monitor_fn())

    def run(self, step_fn: StepFn, sample_fn: SampleFn | None = None, monitor_fn: MonitorFn | None = None) -> int:
        """Train from the last checkpoint to ``cfg.steps``; returns the step reached. ``monitor_fn`` (main rank
        only) is scored where this call starts and every ``monitor_every`` steps."""
        self.resume()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        log = self.cfg.out / "losses.jsonl"
        self.cfg.out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        elapsed_before = self.elapsed
        bf16 = bf16_steps(self.cfg.precision, self.d.device)
        if self.d.main and emulated_bf16(self.cfg.precision, self.d.device):
            print("warning: precision bf16 on a CPU without native bf16 kernels is emulated and runs many times "
                  "slower than fp32 here; train with precision fp32 (or auto) on this machine")
        elif self.d.main and self.cfg.precision == "auto":
            print(f"precision auto: {'bf16' if bf16 else 'fp32'} steps on this {self.d.device.type}")
        self._monitor(monitor_fn, at_start=True)
        try:
            while self.step < self.cfg.steps and not self._stop:
                torch.manual_seed(self.cfg.seed + self.step)
                t0 = time.perf_counter()
                with torch.autocast(self.d.device.type, torch.bfloat16, enabled=bf16):
                    losses = step_fn(self.step)
                for average in self.averages.values():
                    average.update()
                self.step += 1
                self.elapsed = elapsed_before + (time.perf_counter() - started)
                if self.d.main and (self.step % self.cfg.log_every == 0 or self.step == 1):
                    with open(log, "a") as f:
                        f.write(json.dumps({"step": self.step, "seconds": round(self.elapsed, 2),
                                            "step_s": round(time.perf_counter() - t0, 3), **losses}) + "\n")
                if self.step % self.cfg.checkpoint_every == 0:
                    self.save()
                if sample_fn is not None and self.d.main and self.step % self.cfg.sample_every == 0:
                    sample_fn(self.step, self.cfg.out / "samples" / f"step{self.step:07d}.png")
                self._monitor(monitor_fn)
                if self.cfg.time_limit_s and time.perf_counter() - started > self.cfg.time_limit_s:
                    break
        finally:
            self.save()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return self.step
