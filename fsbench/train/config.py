"""Training configurations: a named preset or a JSON file of fields, with ``fsbench train --set`` overrides."""
from __future__ import annotations

import json
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def resolve_config(cls: type[T], presets: Mapping[str, Any], name: str, overrides: Mapping[str, Any]) -> T:
    """``cls`` built from ``presets[name]`` (an instance or a dict of fields) or from the JSON file ``name``, then
    ``overrides``. Unknown names and keys are errors that list the known ones; JSON lists become tuples where the
    field's default is a tuple (e.g. Adam betas)."""
    if name in presets:
        preset = presets[name]
        values = asdict(preset) if is_dataclass(preset) else dict(preset)
    elif Path(name).is_file():
        try:
            values = json.loads(Path(name).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{name}: not a JSON object of {cls.__name__} fields ({err})") from err
    else:
        raise ValueError(f"unknown config '{name}' for {cls.__name__} (known: {', '.join(presets)}, or a JSON file)")
    values.update(overrides)
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)} for {cls.__name__} "
                         f"(known: {', '.join(sorted(known))})")
    for key, value in values.items():
        if isinstance(value, list) and isinstance(known[key].default, tuple):
            values[key] = tuple(value)
    return cls(**values)
