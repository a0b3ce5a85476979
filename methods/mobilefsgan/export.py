"""Fast inference for the MobileFSGAN generator: BatchNorm folding, channels-last, ONNX export and onnxruntime.

Folding is exact algebra in eval mode (outputs change only by float rounding):
* BN → 1×1 conv (attribute and decoder blocks): the BN scale goes into the conv's input channels, its shift into
  the conv bias.
* BN → bilinear ×2 (align_corners) → reflection pad → 3×3 conv (Upsample): interpolation weights sum to one and
  reflection copies pixels, so a per-channel affine map commutes with both and folds into the conv.
* BN → zero-padded 4×4 stride-2 conv (Downsample): the scale folds into the weights; the shift's contribution is
  the conv of a constant image with zero padding, a fixed map per input size, added as a bias map.
* Affine-free BN + AdaIN modulation (identity blocks): per sample ``x·(γ/σ) + (β − μγ/σ)``, one multiply-add.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fsbench.nets.onnx_graph import OnnxGraph, open_graph
from methods.mobilefsgan import generator as g


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) with bn(x) = scale·x + shift in eval mode."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    shift = -bn.running_mean * scale
    if bn.affine:
        shift = shift * bn.weight + bn.bias
        scale = scale * bn.weight
    return scale, shift


def _fold_into_conv(conv: nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor) -> nn.Conv2d:
    """conv(scale·x + shift) for a conv without zero padding, as one conv."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      bias=True)
    w = conv.weight.detach()
    fused.weight.data = w * scale.view(1, -1, 1, 1)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
    fused.bias.data = bias + (w * shift.view(1, -1, 1, 1)).sum((1, 2, 3))
    return fused


class FoldedBlock(nn.Module):
    """AttributeEncoderBlock with its BN folded into the 1×1 conv."""

    def __init__(self, block: g.AttributeEncoderBlock) -> None:
        super().__init__()
        self.conv1x1 = _fold_into_conv(block.conv1x1, *_bn_affine(block.normalize))
        self.conv3x3 = block.conv3x3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3x3(F.leaky_relu(self.conv1x1(x), 0.01))


class FoldedUpsample(nn.Module):
    def __init__(self, up: g.Upsample) -> None:
        super().__init__()
        self.conv = _fold_into_conv(up.conv, *_bn_affine(up.normalize))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
        return F.leaky_relu(self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect")), 0.01)


class FoldedDownsample(nn.Module):
    """BN → zero-padded conv: scale in the weights, the shift's effect as a bias map cached per input size."""

    def __init__(self, down: g.Downsample) -> None:
        super().__init__()
        scale, shift = _bn_affine(down.normalize)
        self.conv = nn.Conv2d(down.conv.in_channels, down.conv.out_channels, 4, 2, 1, bias=False)
        self.conv.weight.data = down.conv.weight.detach() * scale.view(1, -1, 1, 1)
        self.register_buffer("shift", shift.view(1, -1, 1, 1))
        self.source = down.conv.weight.detach()
        self._bias: dict[tuple[int, int], torch.Tensor] = {}

    def bias_map(self, h: int, w: int) -> torch.Tensor:
        if (h, w) not in self._bias:
            const = self.shift.expand(1, -1, h, w)
            self._bias[(h, w)] = F.conv2d(const, self.source.to(const), stride=2, padding=1)
        return self._bias[(h, w)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias_map(x.shape[-2], x.shape[-1]).to(x.dtype)
        return F.leaky_relu(self.conv(x) + bias, 0.01)


class FoldedIdentityBlock(nn.Module):
    """Affine-free BN with running statistics and the AdaIN modulation as one per-sample multiply-add."""

    def __init__(self, block: g.IdentityEncoderBlock) -> None:
        super().__init__()
        bn = block.normalize
        inv = torch.rsqrt(bn.running_var + bn.eps)
        self.register_buffer("inv", inv)
        self.register_buffer("mean", bn.running_mean.clone())
        self.fc_mean, self.fc_var = block.fc_mean, block.fc_var
        self.conv1x1, self.conv3x3 = block.conv1x1, block.conv3x3

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        gamma = self.fc_var(embedding) * self.inv
        beta = self.fc_mean(embedding) - self.mean * gamma
        x = F.leaky_relu(x * gamma[:, :, None, None] + beta[:, :, None, None], 0.01)
        return self.conv3x3(F.leaky_relu(self.conv1x1(x), 0.01))


class FoldedDecoderBlock(nn.Module):
    def __init__(self, block: g.DecoderBlock) -> None:
        super().__init__()
        self.conv_attention = block.conv_attention
        self.basic_block = FoldedBlock(block.basic_block)

    def forward(self, x: torch.Tensor, attribute: torch.Tensor) -> torch.Tensor:
        m = self.conv_attention(x)
        return self.basic_block(attribute + m * (x - attribute))


_REPLACE = {g.AttributeEncoderBlock: FoldedBlock, g.Upsample: FoldedUpsample, g.Downsample: FoldedDownsample,
            g.IdentityEncoderBlock: FoldedIdentityBlock, g.DecoderBlock: FoldedDecoderBlock}


def fold(generator: g.EncoderDecoder) -> g.EncoderDecoder:
    """An eval-mode copy of ``generator`` with every BatchNorm folded away (same forward signature)."""
    net = copy.deepcopy(generator).eval()

    def visit(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            replacement = _REPLACE.get(type(child))
            if replacement is not None:
                setattr(parent, name, replacement(child))
            else:
                visit(child)

    with torch.no_grad():
        visit(net)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class _Full(nn.Module):
    """The full-size head only (what a swap returns)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, target: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return self.net(target, embedding)[0]


_EXPORTER_NOTICES = ((DeprecationWarning, "You are using the legacy TorchScript-based ONNX export"),
                     (DeprecationWarning, "The feature will be removed"),
                     (UserWarning, "Constant folding - Only steps=1"))  # see export_onnx


def export_onnx(generator: g.EncoderDecoder, path: Path, size: int, batch: int = 1, heads: bool = False) -> Path:
    """The folded generator as ONNX (opset 17): inputs ``target`` (B×3×size×size, [-1, 1]) and ``embedding``;
    output ``image`` (the full-size head) or, with ``heads``, ``image``, ``image_half``, ``image_quarter``.
    The batch axis is dynamic; the spatial size is fixed (the Downsample bias maps are per size)."""
    net = fold(generator)
    module: nn.Module = net if heads else _Full(net)
    dim = net.identity_encoder.b256_down.fc_mean.in_features
    inputs = (torch.zeros(batch, 3, size, size), torch.zeros(batch, dim))
    outputs = ["image", "image_half", "image_quarter"] if heads else ["image"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter (dynamo=False): the torch.export-based one needs onnxscript, which fsbench does not
        # depend on, so torch's notices that the TorchScript one is deprecated do not apply. Its symbolic for the
        # bilinear upsampling reverses a constant with a step -1 Slice, which its constant folding skips ("Only
        # steps=1 can be constant folded"); onnxruntime folds it when it loads the graph, and the tests check the
        # export against PyTorch.
        for category, message in _EXPORTER_NOTICES:
            warnings.filterwarnings("ignore", message=message, category=category)
        torch.onnx.export(module, inputs, str(path), input_names=["target", "embedding"], output_names=outputs,
                          dynamic_axes={n: {0: "batch"} for n in ["target", "embedding", *outputs]},
                          opset_version=17, dynamo=False)
    return path



class OnnxGenerator:
    """An exported generator run by onnxruntime (:class:`fsbench.nets.onnx_graph.OnnxGraph`, as many threads as
    torch): ``__call__(target, embedding) -> image`` (torch in/out; ``image`` is the export's first output)."""

    def __init__(self, path: Path) -> None:
        self.graph = OnnxGraph(open_graph(path))

    def __call__(self, target: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.graph({"target": target.detach().cpu().numpy(),
                                            "embedding": embedding.detach().cpu().numpy()}))
