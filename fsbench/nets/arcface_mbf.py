"""InsightFace's ArcFace MobileFaceNet (``w600k_mbf.onnx``, the ``buffalo_s`` recogniser) as a plain torch module.

The ONNX file is arcface_torch's MobileFaceNet at width scale 2, exported with every BatchNorm folded into the
convolution before it (so each convolution has a bias), except the last one on the embedding:

* input ``B×3×112×112``, RGB, ``(x − 127.5) / 127.5`` on the 0..255 scale (insightface's ``ArcFaceONNX`` for a
  graph without in-graph normalisation nodes), aligned to insightface's five-point ``arcface-112`` template;
* ``conv1``: 3×3 conv 3→128 stride 2 + PReLU; ``conv2_dw``: 3×3 conv 128→128 in 64 groups + PReLU;
* stages of :class:`DepthWise` units (1×1 expand + PReLU, 3×3 depthwise + PReLU, 1×1 linear projection), the first
  of a stage with stride 2 and no shortcut, the rest residual: 128 (1 + 4), 256 (1 + 6), 256 (1 + 2), the strided
  unit of the last stage expanding to 512 inside;
* ``conv_sep``: 1×1 256→512 + PReLU; ``reduce``: 1×1 512→64 + PReLU; flatten (64·7·7 = 3136); ``fc``: linear
  3136→512; ``features``: BatchNorm1d (eps 1e-5): the 512-d, unnormalised embedding.

:func:`load_arcface_mbf` walks the graph in order and hands each Conv's weight and bias and each PRelu's slopes to
the module's layers in definition order, checking every kernel, stride, padding and group count against the graph;
every initialiser is used once and every parameter filled (``strict=True``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

EMBEDDING_DIM = 512
INPUT_SIZE = 112
# (input channels, expanded channels of the strided unit, output channels = the residual units' width, residual
# units after the strided one)
_STAGES = ((128, 128, 128, 4), (128, 256, 256, 6), (256, 512, 256, 2))


class ConvPReLU(nn.Sequential):
    """Convolution (BatchNorm folded in: it has a bias) and a per-channel PReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups), nn.PReLU(cout))


class DepthWise(nn.Module):
    """1×1 expand + PReLU, 3×3 depthwise + PReLU, 1×1 linear projection; with ``residual``, plus the input."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.expand = ConvPReLU(cin, mid, 1)
        self.depthwise = ConvPReLU(mid, mid, 3, stride, groups=mid)
        self.project = nn.Conv2d(mid, cout, 1)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class ArcFaceMBF(nn.Module):
    """``forward`` takes RGB crops in [0, 1], ``B×3×112×112`` aligned to ``arcface-112``; returns ``B×512`` raw."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvPReLU(3, 128, 3, 2), ConvPReLU(128, 128, 3, groups=64)]
        for cin, mid, cout, repeats in _STAGES:
            layers.append(DepthWise(cin, mid, cout, 2, residual=False))
            layers += [DepthWise(cout, cout, cout, 1, residual=True) for _ in range(repeats)]
        layers += [ConvPReLU(256, 512, 1), ConvPReLU(512, 64, 1)]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(64 * 7 * 7, EMBEDDING_DIM)
        self.features = nn.BatchNorm1d(EMBEDDING_DIM, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x * 255.0 - 127.5) / 127.5).contiguous(memory_format=torch.channels_last)
        return self.features(self.fc(self.body(x).flatten(1)))

    def train(self, mode: bool = True) -> ArcFaceMBF:
        """Stays in eval mode: an evaluation recogniser with fixed BatchNorm statistics."""
        return super().train(False)


def _graph_params(path: str | Path) -> tuple[list[tuple[str, dict, list[np.ndarray]]], dict[str, np.ndarray]]:
    """(op type, attributes, initialiser inputs) of each Conv, PRelu, Gemm and BatchNormalization node in graph
    order, and every initialiser by name."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "PRelu", "Gemm", "BatchNormalization"):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            nodes.append((node.op_type, attrs, [name for name in node.input if name in tensors]))
    return nodes, tensors


def _module_slots(net: ArcFaceMBF) -> list[tuple[str, str, nn.Module]]:
    """(state-dict prefix, the ONNX op that fills it, module) in the order the graph computes them."""
    slots = []
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            slots.append((name, "Conv", module))
        elif isinstance(module, nn.PReLU):
            slots.append((name, "PRelu", module))
    return slots + [("fc", "Gemm", net.fc), ("features", "BatchNormalization", net.features)]


def _check_conv(name: str, conv: nn.Conv2d, attrs: dict) -> None:
    graph = (tuple(attrs["kernel_shape"]), tuple(attrs["strides"]), tuple(attrs["pads"]), attrs.get("group", 1))
    mine = (conv.kernel_size, conv.stride, conv.padding * 2, conv.groups)
    if graph != mine:
        raise ValueError(f"ArcFace MobileFaceNet: graph conv {graph} does not match the module's {name} {mine}")


def load_arcface_mbf(path: str | Path) -> ArcFaceMBF:
    """:class:`ArcFaceMBF` with the weights of ``w600k_mbf.onnx``; eval mode, frozen, channels-last.
    ``ValueError`` when the graph's layers are not this network's."""
    nodes, tensors = _graph_params(path)
    net = ArcFaceMBF()
    slots = _module_slots(net)
    if [op for op, _, _ in nodes] != [op for _, op, _ in slots]:
        raise ValueError(f"{path}: its layers are not those of InsightFace's MobileFaceNet (w600k_mbf)")
    state: dict[str, np.ndarray] = {}
    used: list[str] = []
    for (op, attrs, inputs), (name, _, module) in zip(nodes, slots):
        used += inputs
        values = [tensors[i] for i in inputs]
        if op == "Conv":
            _check_conv(name, module, attrs)
            state[f"{name}.weight"], state[f"{name}.bias"] = values
        elif op == "PRelu":
            state[f"{name}.weight"] = values[0].reshape(-1)
        elif op == "Gemm":
            state["fc.weight"], state["fc.bias"] = values
        else:
            for key, value in zip(("weight", "bias", "running_mean", "running_var"), values):
                state[f"features.{key}"] = value
            state["features.num_batches_tracked"] = np.array(0, np.int64)
    if sorted(used) != sorted(tensors):
        raise ValueError(f"{path}: initialisers left unused: {sorted(set(tensors) - set(used))[:5]}")
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    net.requires_grad_(False)
    return net.to(memory_format=torch.channels_last).eval()
