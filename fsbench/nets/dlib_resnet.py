"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in plain torch, with its weights
read from the ``.dat`` by a parser of dlib's serialisation.

The network is ``anet_type`` of dlib's ``examples/dnn_face_recognition_ex.cpp`` (and of dlib's Python
``face_recognition_model_v1``)::

    loss_metric<fc_no_bias<128, avg_pool_everything<
        alevel0<alevel1<alevel2<alevel3<alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

    alevel4 = ares<32> ×3;  alevel3 = ares_down<64>, ares<64> ×3;  alevel2 = ares_down<128>, ares<128> ×2;
    alevel1 = ares_down<256>, ares<256> ×2;  alevel0 = ares_down<256>
    block<N, stride> = affine<con<N,3,3,1,1, relu<affine<con<N,3,3,stride,stride, ·>>>>>
    ares<N>      = relu<add_prev1<block<N,1, tag1<·>>>>
    ares_down<N> = relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<N,2, tag1<·>>>>>>>

Facts of dlib's layers that this module reproduces (dlib/dnn/layers.h, input.h):

* ``input_rgb_image_sized``: each channel is ``(pixel − avg) / 256`` with the averages stored in the file
  (122.782, 117.001, 104.298 for R, G, B).
* ``con_``, ``max_pool_`` and ``avg_pool_`` pad ``size // 2`` at stride 1 and **nothing** at stride 2, so the
  150 px chip becomes 72 → 35 (max pool) → 17 → 8 → 4 → 2.
* ``add_prev_`` adds tensors of different shapes by treating missing elements as zero: the skip path of a
  downsampling block (``avg_pool`` 2×2/2 of the block's input) has fewer channels than the block, and at the
  8 px level the block's 3×3 output is added into the top-left of the skip path's 4×4.
* ``affine_`` is a per-channel ``γ·x + β``; it is folded here into the convolution before it (``con_`` has a
  bias), which changes results only by float rounding.
* ``fc_no_bias`` stores its weights as ``num_inputs × num_outputs``.

File layout (dlib/serialize.h, dlib/dnn/core.h, dlib/cuda/tensor.h): integers are a control byte (bit 7: sign,
low 4 bits: byte count) followed by little-endian bytes; floats are two such integers, mantissa and exponent;
strings are a length and bytes; bools are ASCII '1'/'0'; tensors are a version (2), four dims and raw
little-endian float32. The network is written outermost layer first: the loss, then one version number per layer
down to the input layer, then the input layer and each layer's details in forward order (each followed by its
training state: flags and gradient tensors, which are read and checked for shape only).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EMBEDDING_DIM = 128
INPUT_SIZE = 150
# (channels, downsampling) of each residual block, input side first
_BLOCKS = ((32, False),) * 3 + ((64, True),) + ((64, False),) * 3 + ((128, True),) + ((128, False),) * 2 \
    + ((256, True),) + ((256, False),) * 2 + ((256, True),)


class ResidualBlock(nn.Module):
    """``relu(block(x) + skip(x))``; the skip is ``avg_pool 2×2/2`` when downsampling, added with zero padding."""

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        stride = 2 if down else 1
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 0 if down else 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        if not self.down:
            return F.relu(y + x)
        skip = F.avg_pool2d(x, 2, 2)
        c, h, w = (max(a, b) for a, b in zip(y.shape[1:], skip.shape[1:]))
        y = F.pad(y, (0, w - y.shape[3], 0, h - y.shape[2], 0, c - y.shape[1]))
        skip = F.pad(skip, (0, w - skip.shape[3], 0, h - skip.shape[2], 0, c - skip.shape[1]))
        return F.relu(y + skip)


class DlibFaceResNet(nn.Module):
    """dlib's ResNet. ``forward`` takes RGB 150×150 face chips, ``B×3×150×150`` with values 0..255 (float), as
    dlib's ``get_face_chip`` cuts them; returns the ``B×128`` descriptor (dlib's L2 distance 0.6 threshold)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, 32, 7, 2, 0)
        cin = 32
        blocks = []
        for cout, down in _BLOCKS:
            blocks.append(ResidualBlock(cin, cout, down))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, EMBEDDING_DIM, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.input_mean) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        x = self.blocks(x.contiguous(memory_format=torch.channels_last))
        return self.fc(x.mean(dim=(2, 3)))


# ---------------------------------------------------------------- dlib's serialisation


class _Reader:
    """Sequential reader of dlib's serialised primitives; every failure names the file and the byte offset."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def error(self, what: str) -> ValueError:
        return ValueError(f"{self.path}: not dlib's face recognition ResNet v1 file: {what} (at byte {self.pos})")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.error(f"truncated: {n} more bytes needed, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if control & 0x70 or not 1 <= size <= 8:
            raise self.error(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def expect_int(self, allowed: tuple[int, ...], what: str) -> int:
        value = self.int()
        if value not in allowed:
            raise self.error(f"{what} is {value}, expected {' or '.join(map(str, allowed))}")
        return value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent >= 32000:  # dlib's markers for inf, -inf and NaN: no trained weight is one
            raise self.error("a non-finite float")
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self) -> bool:
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            raise self.error(f"bad bool byte {byte!r}")
        return byte == b"1"

    def string(self) -> str:
        return self.take(self.int()).decode("latin-1")

    def expect_string(self, allowed: tuple[str, ...]) -> str:
        start = self.pos
        try:
            value = self.string()
        except ValueError:
            value = None
        if value not in allowed:
            self.pos = start
            raise self.error(f"expected {' or '.join(map(repr, allowed))}, found {value!r}")
        return value

    def dims(self, version: int, what: str) -> tuple[int, ...]:
        self.expect_int((version,), f"{what} version")
        return tuple(self.int() for _ in range(4))

    def tensor(self, what: str) -> np.ndarray:
        shape = self.dims(2, f"{what} tensor")
        if any(d < 0 for d in shape):
            raise self.error(f"{what} tensor has negative dims {shape}")
        count = int(np.prod(shape))
        return np.frombuffer(self.take(4 * count), "<f4").reshape(shape)

    def alias(self, what: str) -> tuple[int, ...]:
        return self.dims(1, f"{what} alias tensor")


@dataclass(frozen=True)
class _Layer:
    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc, tag, skip
    channels: int = 0  # con and fc outputs
    size: int = 0  # con and pooling window (0: the whole map)
    stride: int = 1


def _layers() -> list[_Layer]:
    """``anet_type`` in forward order, one entry per layer of dlib's serialisation."""
    layers = [_Layer("con", 32, 7, 2), _Layer("affine"), _Layer("relu"), _Layer("max_pool", 0, 3, 2)]
    for cout, down in _BLOCKS:
        stride = 2 if down else 1
        layers += [_Layer("tag"), _Layer("con", cout, 3, stride), _Layer("affine"), _Layer("relu"),
                   _Layer("con", cout, 3, 1), _Layer("affine")]
        if down:
            layers += [_Layer("tag"), _Layer("skip"), _Layer("avg_pool", 0, 2, 2)]
        layers += [_Layer("add_prev"), _Layer("relu")]
    return layers + [_Layer("avg_pool", 0, 0, 1), _Layer("fc", EMBEDDING_DIM)]


def _read_con(r: _Reader, layer: _Layer, cin: int) -> tuple[np.ndarray, np.ndarray]:
    version = r.expect_string(("con_4", "con_5", "con_6"))
    params = r.tensor("con params").ravel()
    k, s = layer.size, layer.stride
    header = (r.int(), r.int(), r.int(), r.int(), r.int(), r.int(), r.int())
    expected = (layer.channels, k, k, s, s, 0 if s != 1 else k // 2, 0 if s != 1 else k // 2)
    if header != expected:
        raise r.error(f"con (filters, nr, nc, strides, paddings) {header}, expected {expected}")
    filters, biases = r.alias("con filters"), r.alias("con biases")
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float()
    use_bias = r.bool() if version in ("con_5", "con_6") else True
    if version == "con_6" and r.bool():
        raise r.error("con with a fused relu")
    if filters != (layer.channels, cin, k, k) or not use_bias or biases != (1, layer.channels, 1, 1):
        raise r.error(f"con filters {filters}, biases {biases}, use_bias {use_bias} for {cin}→{layer.channels}")
    n = int(np.prod(filters))
    if params.size != n + layer.channels:
        raise r.error(f"con params hold {params.size} values, expected {n + layer.channels}")
    return params[:n].reshape(filters), params[n:]


def _read_affine(r: _Reader, channels: int) -> tuple[np.ndarray, np.ndarray]:
    version = r.expect_string(("affine_", "affine_2"))
    params = r.tensor("affine params").ravel()
    gamma, beta = r.alias("affine gamma"), r.alias("affine beta")
    r.expect_int((0,), "affine mode (0: convolutional)")
    if version == "affine_2" and r.bool():
        raise r.error("a disabled affine layer")
    if gamma != (1, channels, 1, 1) or beta != gamma or params.size != 2 * channels:
        raise r.error(f"affine gamma {gamma}, beta {beta}, {params.size} params for {channels} channels")
    return params[:channels], params[channels:]


def _read_pool(r: _Reader, layer: _Layer) -> None:
    r.expect_string((f"{layer.kind}_2",))
    header = tuple(r.int() for _ in range(6))
    pad = 0 if layer.stride != 1 else layer.size // 2
    expected = (layer.size, layer.size, layer.stride, layer.stride, pad, pad)
    if header != expected:
        raise r.error(f"{layer.kind} (nr, nc, strides, paddings) {header}, expected {expected}")


def _read_fc(r: _Reader, layer: _Layer, cin: int) -> np.ndarray:
    version = r.expect_string(("fc_2", "fc_3"))
    outputs, inputs = r.int(), r.int()
    params = r.tensor("fc params").ravel()
    weights, _biases = r.alias("fc weights"), r.alias("fc biases")
    r.expect_int((1,), "fc bias mode (1: no bias)")
    for _ in range(4):
        r.float()
    if version == "fc_3":
        r.bool()  # use_bias: irrelevant under the no-bias mode
    if (outputs, inputs) != (layer.channels, cin) or weights != (cin, layer.channels, 1, 1) \
            or params.size != cin * layer.channels:
        raise r.error(f"fc {inputs}→{outputs} with weights {weights} and {params.size} params, "
                      f"expected {cin}→{layer.channels}")
    return params.reshape(cin, layer.channels)


def read_dlib_resnet(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of :class:`DlibFaceResNet` read from ``dlib_face_recognition_resnet_model_v1.dat``.

    The whole file is read against the exact layer sequence of ``anet_type``; any other version tag, shape,
    stride, padding, a truncation or bytes left over raise ``ValueError`` naming the file.
    """
    path = Path(path)
    r = _Reader(path.read_bytes(), path)
    layers = _layers()
    r.expect_int((1,), "loss layer version")
    if r.expect_string(("loss_metric_", "loss_metric_2")) == "loss_metric_2":
        r.float(), r.float()  # margin, distance threshold: training only
    versions = []
    for i, layer in enumerate(reversed(layers)):  # outermost first: one version number per layer
        innermost = i == len(layers) - 1
        allowed = (1,) if layer.kind in ("tag", "skip") else (2, 3) if innermost else (1, 2)
        versions.append(r.expect_int(allowed, f"version of layer {len(layers) - i} ({layer.kind})"))
    versions.reverse()
    r.expect_string(("input_rgb_image_sized",))
    mean = [r.float() for _ in range(3)]
    if (r.int(), r.int()) != (INPUT_SIZE, INPUT_SIZE):
        raise r.error(f"input size is not {INPUT_SIZE}×{INPUT_SIZE}")

    state: dict[str, torch.Tensor] = {"input_mean": torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)}
    convs = ["stem"] + [f"blocks.{b}.conv{j}" for b in range(len(_BLOCKS)) for j in (1, 2)]
    cin, pending = 3, None
    for layer, version in zip(layers, versions):
        if layer.kind in ("tag", "skip"):
            continue
        if layer.kind == "con":
            pending = _read_con(r, layer, cin)
            cin = layer.channels
        elif layer.kind == "affine":
            gamma, beta = _read_affine(r, cin)
            weight, bias = pending
            name = convs.pop(0)  # affine folded into the conv before it (dlib: con, then affine)
            state[f"{name}.weight"] = torch.from_numpy(weight * gamma[:, None, None, None])
            state[f"{name}.bias"] = torch.from_numpy(bias * gamma + beta)
        elif layer.kind == "relu":
            if r.expect_string(("relu_", "relu_2")) == "relu_2" and r.bool():
                raise r.error("a disabled relu layer")
        elif layer.kind in ("max_pool", "avg_pool"):
            _read_pool(r, layer)
        elif layer.kind == "add_prev":
            r.expect_string(("add_prev_",))
        else:
            state["fc.weight"] = torch.from_numpy(_read_fc(r, layer, cin).T.copy())
        for _ in range(3):  # setup called, gradient stale, output disabled
            r.bool()
        r.tensor("x_grad"), r.tensor("cached output")
        if layer is layers[0]:
            r.tensor("final gradient")
            if version == 3:
                r.int()  # sample expansion factor
        elif version == 2:
            r.tensor("parameter gradient")
    if r.pos != len(r.data):
        raise r.error(f"{len(r.data) - r.pos} bytes left over after the network")
    return state


def load_dlib_resnet(path: str | Path) -> DlibFaceResNet:
    """:class:`DlibFaceResNet` with the weights of dlib's ``.dat`` file, frozen, eval mode."""
    net = DlibFaceResNet()
    net.load_state_dict(read_dlib_resnet(path), strict=True)
    net.requires_grad_(False)
    return net.eval()
