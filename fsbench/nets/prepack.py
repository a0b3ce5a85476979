"""Convolutions with their weights reordered once, for CPU inference.

oneDNN runs a convolution in a blocked weight layout; ``F.conv2d`` reorders the weight into it on every call. For a
small batch at low resolution that reorder is most of the work (a 1024→1024 4×4 convolution on a 4×4 map moves
16.8 M weights to do 67 M multiply-adds per image). :func:`prepack_convolutions`
reorders each weight once (the ``mkldnn`` operators torch's own CPU compiler emits for frozen graphs) and runs the
convolution from it. Outputs come back channels-last, so a network whose elementwise operations should stay fast
gets channels-last inputs throughout (a channels-last input keeps every later map channels-last).
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import conv_flop_count


def available(device: torch.device) -> bool:
    """Whether prepacked convolutions can run on ``device`` (oneDNN on the CPU)."""
    return device.type == "cpu" and torch.backends.mkldnn.is_available()


class PrepackedConv(nn.Module):
    """A ``Conv2d`` or ``ConvTranspose2d`` (zero padding) whose weight was reordered once for oneDNN."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d) -> None:
        super().__init__()
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.output_padding = list(conv.output_padding) if self.transposed else []
        weight = conv.weight.detach()
        if self.transposed:
            self.weight = torch.ops.mkldnn._reorder_convolution_transpose_weight(
                weight, self.padding, self.output_padding, self.stride, self.dilation, self.groups, None)
        else:
            self.weight = torch.ops.mkldnn._reorder_convolution_weight(
                weight, self.padding, self.stride, self.dilation, self.groups, None)
        self.bias = None if conv.bias is None else conv.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return torch.ops.mkldnn._convolution_transpose_pointwise(
                x, self.weight, self.bias, self.padding, self.output_padding, self.stride, self.dilation, self.groups,
                "none", [], "")
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups, "none", [], "")


def prepack_convolutions(module: nn.Module) -> nn.Module:
    """Turns ``module`` (an inference copy on the CPU, weights already in their final dtype) into eval mode with
    every zero-padded ``Conv2d`` and ``ConvTranspose2d`` replaced by a :class:`PrepackedConv`, in place, and returns
    it; unchanged where oneDNN is missing. Subclasses are replaced too, so they must compute their base's function.
    For inference only: prepacked weights have no gradients and do not move with ``.to()``."""
    param = next(module.parameters(), None)
    if param is None or not available(param.device):
        return module
    module.eval()
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d)) and child.padding_mode == "zeros":
                setattr(parent, name, PrepackedConv(child))
    return module


def _flops(transposed: bool):
    def count(x_shape: list[int], w_shape: list[int], *args, out_shape: list[int], **kwargs) -> int:
        return conv_flop_count(x_shape, w_shape, out_shape, transposed)
    return count


# for torch's FlopCounterMode(custom_mapping=...), which counts only aten's own convolution
FLOP_FORMULAS = {torch.ops.mkldnn._convolution_pointwise: _flops(False),
                 torch.ops.mkldnn._convolution_transpose_pointwise: _flops(True)}
COMPUTE_OPS = (torch.ops.mkldnn._convolution_pointwise.default,
               torch.ops.mkldnn._convolution_transpose_pointwise.default)
