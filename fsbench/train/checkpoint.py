"""Training checkpoints as safetensors plus JSON metadata: weights, optimiser state and step, never pickle.

Optimiser state dicts are flattened to ``opt/<name>/<param index>/<key>`` tensors; their param groups (plain
numbers) go into the metadata as JSON. Files are written to a temporary name and renamed, so a killed run leaves
the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return module.module if hasattr(module, "module") else module  # DistributedDataParallel


def save(path: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
         step: int, extra: dict[str, Any] | None = None) -> Path:
    tensors: dict[str, torch.Tensor] = {}
    groups: dict[str, Any] = {}
    for name, module in modules.items():
        for key, value in unwrap(module).state_dict().items():
            tensors[f"model/{name}/{key}"] = value.detach().cpu().contiguous()
    for name, opt in optimizers.items():
        state = opt.state_dict()
        groups[name] = state["param_groups"]
        for index, param_state in state["state"].items():
            for key, value in param_state.items():
                tensor = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"opt/{name}/{index}/{key}"] = tensor.detach().cpu().contiguous()
    meta = {"step": str(step), "param_groups": json.dumps(groups), "extra": json.dumps(extra or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def load(path: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer]
         ) -> tuple[int, dict[str, Any]]:
    """Restore modules and optimisers in place; returns (step, extra)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for name, module in modules.items():
        prefix = f"model/{name}/"
        unwrap(module).load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    groups = json.loads(meta["param_groups"])
    for name, opt in optimizers.items():
        prefix = f"opt/{name}/"
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, sub = key[len(prefix):].split("/", 1)
                state.setdefault(int(index), {})[sub] = value
        opt.load_state_dict({"state": state, "param_groups": groups[name]})
    return int(meta["step"]), json.loads(meta["extra"])


def module_names(path: Path) -> set[str]:
    """The names of the modules whose weights a training checkpoint holds."""
    with safe_open(str(path), framework="pt") as f:
        return {key.split("/")[1] for key in f.keys() if key.startswith("model/")}


def exported_metadata(path: Path, *keys: str) -> dict[str, str]:
    """The metadata of an exported weights file, which must hold ``keys``; a ValueError names the file otherwise."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
    missing = [key for key in keys if key not in meta]
    if missing:
        raise ValueError(f"{path}: not an exported weights file of this method (its metadata has no "
                         f"{', '.join(missing)})")
    return meta


def export_weights(path: Path, module: torch.nn.Module, metadata: dict[str, str] | None = None) -> Path:
    """The shipped inference weights of one network (safetensors)."""
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(module).state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of an exported weights file (safetensors, no pickle); a ValueError names the file otherwise."""
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise ValueError(f"{path}: no such weights file")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from err


def prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix.``, with the prefix removed (one network of a combined file)."""
    return {key[len(prefix) + 1:]: value for key, value in state.items() if key.startswith(prefix + ".")}


def load_weights(path: Path, module: torch.nn.Module) -> torch.nn.Module:
    """Load safetensors weights with strict key checking; the error names the file."""
    state = read_weights(path)
    missing, unexpected = unwrap(module).load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit {type(unwrap(module)).__name__} "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    return module
