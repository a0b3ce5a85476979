"""Training checkpoints as safetensors plus JSON metadata: weights, optimiser state and step, never pickle.

Optimiser state dicts are flattened to ``opt/<name>/<param index>/<key>`` tensors; their param groups (plain
numbers) go into the metadata as JSON. Files are written to a temporary name and renamed, so a killed run leaves
the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from fsbench.errors import UsageError


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


def export_weights(path: Path, module: torch.nn.Module, metadata: dict[str, str] | None = None) -> Path:
    """The shipped inference weights of one network (safetensors)."""
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(module).state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def require_architecture(path: Path, recorded: Any, wanted: Any, ignore: tuple[str, ...] = ()) -> None:
    """A ValueError naming ``path`` and every field of the architecture ``recorded`` in an exported weights file
    that differs from the recipe's ``wanted`` (fields in ``ignore``, of networks the file does not hold, aside)."""
    differ = [f"{f.name} {getattr(recorded, f.name)} (config: {getattr(wanted, f.name)})" for f in fields(wanted)
              if f.name not in ignore and getattr(recorded, f.name) != getattr(wanted, f.name)]
    if differ:
        raise UsageError(f"{path}: its networks do not fit the configuration: {', '.join(differ)}")
