"""Wall-clock timers and the machine's matmul yardstick, shared by the benches and the methods' comparisons.

Kept apart from :mod:`fsbench.bench` so that :mod:`fsbench.api` can offer them to plugins without
importing the bench (which imports the runner's crops and scoring).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so that wall time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, n: int = 1024, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """Measured matmul throughput of this device in ``dtype`` (GFLOP/s), the yardstick for achieved GFLOP/s."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def time_ms(fn: Callable[[], Any], device: torch.device, warmup: int, runs: int) -> list[float]:
    """Wall milliseconds of ``runs`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def interleaved_ms(variants: dict[str, Callable[[], Any]], rounds: int, runs: int) -> dict[str, list[float]]:
    """Wall milliseconds of each variant, timed round by round (``runs`` calls of each variant per round), so
    that side-by-side comparisons see the same machine load."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            for _ in range(runs):
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1000)
    return times
