"""SFace (OpenCV Zoo ``face_recognition_sface_2021dec_int8bq.onnx``) as a plain, differentiable torch module.

The ONNX file holds a MobileNet-style face recogniser exported from MXNet and then block-quantised to int8:
every weight is an ``int8`` initializer expanded by a ``DequantizeLinear`` node (with ``block_size``) and,
for convolutions, reshaped to its 4-D shape. :func:`load_sface` expands those weights to float32 with numpy
and loads them into :class:`SFaceNet`, whose layers are written out from the graph:

* input ``data`` 1×3×112×112, RGB in 0..255 (OpenCV's ``FaceRecognizerSF::feature`` calls
  ``blobFromImage(aligned, 1, (112, 112), 0, swapRB=true)`` on its BGR ArcFace-aligned crop), normalised inside
  the graph as ``(x − 127.5) · 0.0078125`` (initializers ``scalar_op1``, ``scalar_op2``);
* ``conv_1``: 3×3 conv 3→32, stride 1, then BatchNorm (eps 1e-3) and PReLU;
* ``conv_2 … conv_14``: depthwise 3×3 (``conv_N_dw``) + pointwise 1×1 (``conv_N``), each with BatchNorm
  (eps 1e-3) and PReLU; the depthwise convs of blocks 3, 5, 7 and 13 have stride 2 (112 → 7);
* ``bn1`` (BatchNorm, eps 2e-5) on the 1024×7×7 map, dropout (identity at inference), flatten, ``pre_fc1``
  linear 50176→128 and ``fc1`` BatchNorm1d (eps 2e-5): the 128-d, unnormalised embedding.

The module is a frozen feature extractor: its parameters do not require gradients and it stays in eval mode
even when a parent module is put in training mode, so that it can serve as an identity loss (gradients flow to
the input) without its BatchNorm statistics moving.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from fsbench.errors import UsageError

EMBEDDING_DIM = 128
INPUT_SIZE = 112
# (block, output channels, stride of its depthwise conv) for conv_2 … conv_14, as read from the graph
_BLOCKS = ((2, 64, 1), (3, 128, 2), (4, 128, 1), (5, 256, 2), (6, 256, 1), (7, 512, 2), (8, 512, 1), (9, 512, 1),
           (10, 512, 1), (11, 512, 1), (12, 512, 1), (13, 1024, 2), (14, 1024, 1))
_CONV_EPS = 1e-3
_HEAD_EPS = 2e-5


class ConvBNPReLU(nn.Module):
    """Bias-free conv, BatchNorm, PReLU: one ``conv_N[_dw]`` unit of the graph."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=_CONV_EPS)
        self.prelu = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn(self.conv(x)))


class SFaceNet(nn.Module):
    """SFace. ``forward`` takes RGB crops in [0, 1], ``B×3×112×112``, ArcFace-aligned; returns ``B×128`` raw."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("input_mean", torch.tensor(127.5))  # graph initializer scalar_op1 (0..255 scale)
        self.register_buffer("input_scale", torch.tensor(0.0078125))  # scalar_op2
        layers: dict[str, nn.Module] = {"conv_1": ConvBNPReLU(3, 32, 3)}
        cin = 32
        for block, cout, stride in _BLOCKS:
            layers[f"conv_{block}_dw"] = ConvBNPReLU(cin, cin, 3, stride, groups=cin)
            layers[f"conv_{block}"] = ConvBNPReLU(cin, cout, 1)
            cin = cout
        self.body = nn.Sequential()
        for name, layer in layers.items():
            self.body.add_module(name, layer)
        self.bn1 = nn.BatchNorm2d(cin, eps=_HEAD_EPS)
        side = INPUT_SIZE // 16
        self.pre_fc1 = nn.Linear(cin * side * side, EMBEDDING_DIM)
        self.fc1 = nn.BatchNorm1d(EMBEDDING_DIM, eps=_HEAD_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)  # oneDNN's depthwise convs: ~1.6× faster on CPU
        x = (x * 255.0 - self.input_mean) * self.input_scale
        x = self.bn1(self.body(x)).flatten(1)
        return self.fc1(self.pre_fc1(x))

    def train(self, mode: bool = True) -> SFaceNet:
        """Stays in eval mode whatever ``mode`` says: a pretrained, frozen feature extractor (see module doc)."""
        return super().train(False)


def dequantize_blocked(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int,
                       block_size: int) -> np.ndarray:
    """ONNX ``DequantizeLinear`` with blocked quantisation (opset 21): ``(q − zp[block]) · scale[block]``.

    ``scale`` and ``zero_point`` have ``q``'s shape except along ``axis``, where they have one entry per block of
    ``block_size`` consecutive elements (the last block may be short).
    """
    n = q.shape[axis]
    if scale.shape[axis] != -(-n // block_size) or scale.shape != zero_point.shape:
        raise ValueError(f"blocked dequantisation: data {q.shape}, scale {scale.shape}, zero point "
                         f"{zero_point.shape}, axis {axis}, block size {block_size} do not fit")
    s = np.repeat(scale.astype(np.float32), block_size, axis=axis).take(np.arange(n), axis=axis)
    z = np.repeat(zero_point.astype(np.float32), block_size, axis=axis).take(np.arange(n), axis=axis)
    return (q.astype(np.float32) - z) * s


def _graph_tensors(path: str | Path) -> tuple[dict[str, np.ndarray], list]:
    """Initializers plus the outputs of the weight-preparation nodes (DequantizeLinear, Reshape of constants)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if not all(name in tensors for name in node.input):
            continue  # an activation node; the weight nodes come first and depend only on initializers
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "DequantizeLinear":
            q, scale, zero_point = (tensors[name] for name in node.input)
            if not attrs.get("block_size"):
                raise UsageError(f"{path}: node {node.name or node.output[0]} is not block-quantised; "
                                 "this loader expects the int8bq SFace file")
            tensors[node.output[0]] = dequantize_blocked(q, scale, zero_point, attrs.get("axis", 1),
                                                         attrs["block_size"])
        elif node.op_type == "Reshape":
            tensors[node.output[0]] = tensors[node.input[0]].reshape(tensors[node.input[1]])
    return tensors, list(model.graph.node)


def _check_topology(net: SFaceNet, nodes: list) -> None:
    """Every Conv node of the graph must match the module's conv of the same name (kernel, stride, padding, groups)."""
    import onnx

    convs = {name[: -len(".conv")].rsplit(".", 1)[-1]: m for name, m in net.named_modules()
             if name.endswith(".conv")}
    seen = set()
    for node in nodes:
        if node.op_type != "Conv":
            continue
        unit = node.output[0][: -len("_conv2d")]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        conv = convs.get(unit)
        graph = (tuple(attrs["kernel_shape"]), tuple(attrs["strides"]), tuple(attrs["pads"]), attrs.get("group", 1))
        if conv is None or graph != (conv.kernel_size, conv.stride, conv.padding * 2, conv.groups):
            raise ValueError(f"SFace graph node {unit} {attrs} does not match the torch definition")
        seen.add(unit)
    if seen != set(convs):
        raise ValueError(f"SFace graph convs differ from the torch definition: {sorted(set(convs) ^ seen)}")


def load_sface(path: str | Path) -> SFaceNet:
    """SFaceNet with the weights of the int8bq ONNX file expanded to float32; eval mode, frozen, channels-last."""
    tensors, nodes = _graph_tensors(path)
    net = SFaceNet()
    _check_topology(net, nodes)
    state: dict[str, np.ndarray] = {
        "input_mean": tensors["scalar_op1"].reshape(()),
        "input_scale": tensors["scalar_op2"].reshape(()),
        "pre_fc1.weight": tensors["pre_fc1_weight_dequantized"],
        "pre_fc1.bias": tensors["pre_fc1_bias_dequantized"],
    }
    units = ["conv_1"] + [f"conv_{block}{part}" for block, _, _ in _BLOCKS for part in ("_dw", "")]
    bns = [(f"body.{unit}.bn", f"{unit}_batchnorm") for unit in units] + [("bn1", "bn1"), ("fc1", "fc1")]
    for unit in units:  # torch module names are the graph's unit names
        state[f"body.{unit}.conv.weight"] = tensors[f"{unit}_conv2d_weight_reshaped"]
        state[f"body.{unit}.prelu.weight"] = tensors[f"{unit}_relu_gamma"].reshape(-1)
    for module, onnx_name in bns:
        state[f"{module}.weight"] = tensors[f"{onnx_name}_gamma"]
        state[f"{module}.bias"] = tensors[f"{onnx_name}_beta"]
        state[f"{module}.running_mean"] = tensors[f"{onnx_name}_moving_mean"]
        state[f"{module}.running_var"] = tensors[f"{onnx_name}_moving_var"]
        state[f"{module}.num_batches_tracked"] = np.array(0, np.int64)
    net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=True)
    net.requires_grad_(False)
    return net.to(memory_format=torch.channels_last).eval()
