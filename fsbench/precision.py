"""The precision a network's convolutions and matmuls actually run in, read while it runs.

A method's ``auto`` precision depends on the machine (bf16 on a CPU with native bf16, else fp32), so runs record
what ran, and benches report it beside their timings.
"""
from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from fsbench.nets import prepack

_DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16", torch.float64: "fp64"}
COMPUTE_OPS = {torch.ops.aten.convolution.default, torch.ops.aten.mm.default, torch.ops.aten.addmm.default,
               torch.ops.aten.bmm.default, torch.ops.aten.baddbmm.default, *prepack.COMPUTE_OPS}


class ComputeDtypes(TorchDispatchMode):
    """Records the dtypes the convolutions and matmuls run in while the mode is active."""

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in COMPUTE_OPS and isinstance(args[0], torch.Tensor):
            self.dtypes.add(_DTYPE_NAMES.get(args[0].dtype, str(args[0].dtype).removeprefix("torch.")))
        return func(*args, **(kwargs or {}))

    @property
    def precision(self) -> str:
        """``bf16``, ``fp32``, ``bf16+fp32`` when mixed; ``none`` when no torch convolution or matmul ran."""
        return "+".join(sorted(self.dtypes)) or "none"
