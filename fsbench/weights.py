"""Exported weights files (safetensors, never pickle): their tensors, their metadata, a strict load into a network."""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, TypeVar

import torch
from safetensors import safe_open

from fsbench.errors import UsageError

T = TypeVar("T")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of an exported weights file; a ValueError names the file otherwise."""
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise UsageError(f"{path}: no such weights file")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise UsageError(f"{path}: not a readable safetensors file ({err})") from err


def exported_metadata(path: Path, *keys: str) -> dict[str, str]:
    """The metadata of an exported weights file, which must hold ``keys``; a ValueError names the file otherwise."""
    if not Path(path).is_file():
        raise UsageError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise UsageError(f"{path}: not a readable safetensors file ({err})") from err
    missing = [key for key in keys if key not in meta]
    if missing:
        raise UsageError(f"{path}: not an exported weights file of this method (its metadata has no "
                         f"{', '.join(missing)})")
    return meta


def prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix.``, with the prefix removed (one network of a combined file)."""
    return {key[len(prefix) + 1:]: value for key, value in state.items() if key.startswith(prefix + ".")}


def load_weights(path: Path, module: torch.nn.Module) -> torch.nn.Module:
    """Load safetensors weights with strict key checking; the error names the file."""
    missing, unexpected = module.load_state_dict(read_weights(path), strict=False)
    if missing or unexpected:
        raise UsageError(f"{path}: weights do not fit {type(module).__name__} "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    return module


def training_recognisers(encoder: str, metadata: Mapping[str, str]) -> tuple[str, ...]:
    """Every recogniser a weights file trained with, for its card: the generator's identity ``encoder`` and the
    identity loss's (the ``identity_loss`` metadata its training wrote)."""
    loss = json.loads(metadata.get("identity_loss", "{}")).get("recognisers", [])
    return tuple(dict.fromkeys((encoder, *loss)))


def recorded_config(path: Path, metadata: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The training recipe an exported weights file records in its ``config`` metadata (plain values).
    ``metadata``: the file's metadata where the caller has read it already (``exported_metadata(path, "config")``),
    so that the file is read once."""
    metadata = exported_metadata(path, "config") if metadata is None else metadata
    try:
        config = json.loads(metadata["config"])
    except json.JSONDecodeError as err:
        raise UsageError(f"{path}: its recorded configuration is not JSON ({err})") from None
    if not isinstance(config, dict):
        raise UsageError(f"{path}: its recorded configuration is not an object")
    return config


def recorded_architecture(cls: type[T], path: Path, method: str, config: Mapping[str, Any] | None = None) -> T:
    """The architecture (a dataclass ``cls``) of the networks in an exported weights file: its recipe's ``arch``.
    The shipped files record their recipe flat, the architecture's fields among the others. A file that records
    not every field of ``cls`` is another method's: a UsageError says so. ``config``: the file's
    :func:`recorded_config` where the caller has read it already."""
    recorded = recorded_config(path) if config is None else config
    values = recorded.get("arch", recorded)
    missing = [f.name for f in fields(cls) if f.name not in values]
    if missing:
        raise UsageError(f"{path}: not {method} weights: the training configuration recorded in it has no "
                         f"{', '.join(missing[:4])}; is it another method's file?")
    try:
        return cls(**{f.name: values[f.name] for f in fields(cls)})
    except (TypeError, ValueError) as err:
        raise UsageError(f"{path}: its recorded architecture does not fit {cls.__name__} ({err})") from None
