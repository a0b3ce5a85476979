"""argparse types for the `fsbench` commands: a wrong number or a device the machine lacks is refused by the
parser, in one line, before anything loads."""
from __future__ import annotations

import argparse

from fsbench.errors import UsageError


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (batch sizes, runs, threads, limits of pairs, image sizes)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (warm-up runs, seeds)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def device(text: str) -> str:
    """A torch device this machine has: ``cpu``, ``cuda``, ``cuda:N`` (N below the GPU count), ``mps``, ..."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"'{text}' is not a torch device (e.g. cpu, cuda, cuda:1, mps)") from None
    if dev.type == "cpu":
        return text
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else "no usable GPU"
            raise argparse.ArgumentTypeError(f"'{text}' is not available on this machine ({build}); use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"'{text}': this machine has {torch.cuda.device_count()} GPU(s)")
        return text
    backend = getattr(torch, dev.type, None) if dev.type != "mps" else getattr(torch.backends, "mps", None)
    available = getattr(backend, "is_available", None)
    if available is None or not available():
        raise argparse.ArgumentTypeError(f"'{text}' is not available on this machine; use cpu")
    return text


def key_values(values: list[str], flag: str, example: str) -> dict[str, str]:
    """``KEY=VALUE`` options (``--backend``, ``--protocol-option``, ``--set``) as a dict, refusing any other form."""
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise UsageError(f"{flag} expects KEY=VALUE (e.g. {example}), got '{value}'")
        out[key] = val
    return out
