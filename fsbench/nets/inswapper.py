"""insightface's ``inswapper_128.onnx``: its interface, checked when the file is added (no peer method runs it yet).

The published graph takes ``target`` (N×3×128×128, the aligned target crop) and ``source`` (N×512, the source
identity latent) and returns the swapped 128×128 crop.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fsbench.errors import UsageError


def load_inswapper(path: str | Path) -> Any:
    """The parsed ONNX model; ``ValueError`` naming the file when its inputs are not inswapper's."""
    import onnx

    model = onnx.load(str(path))
    shapes = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    ranks = sorted(len(s) for s in shapes.values())
    if ranks != [2, 4] or not any(len(s) == 2 and s[-1] == 512 for s in shapes.values()):
        raise UsageError(f"{path}: inputs {shapes}; inswapper_128 takes an N×3×128×128 target and an N×512 source")
    return model
