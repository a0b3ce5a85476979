"""Prepacked convolutions (fsbench.nets.prepack) compute what the modules they replace compute."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from fsbench.nets.prepack import PrepackedConv, available, prepack_convolutions

pytestmark = pytest.mark.skipif(not available(torch.device("cpu")), reason="no oneDNN in this torch build")

LAYERS = [nn.Conv2d(8, 16, 3, 1, 1), nn.Conv2d(8, 16, 4, 2, 1, bias=False), nn.Conv2d(8, 8, 3, 1, 1, groups=8),
          nn.Conv2d(8, 4, 1), nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layer", LAYERS, ids=lambda m: repr(m))
def test_prepacked_equals_the_module(layer: nn.Module, dtype: torch.dtype) -> None:
    if dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("no native bf16 on this CPU")
    torch.manual_seed(0)
    layer = layer.to(dtype)
    x = torch.randn(2, 8, 12, 12, dtype=dtype)
    with torch.no_grad():
        want = layer(x).float()
        for fmt in (torch.contiguous_format, torch.channels_last):
            got = PrepackedConv(layer)(x.contiguous(memory_format=fmt)).float()
            assert got.shape == want.shape
            # fp32: float rounding; bf16: the two kernels may round their bf16 outputs differently (one ulp)
            tol = 1e-5 if dtype == torch.float32 else 2 ** -7 * want.abs().max().item()
            assert (got - want).abs().max().item() <= tol


def test_prepack_replaces_zero_padded_convolutions_in_place() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Sequential(nn.ConvTranspose2d(4, 4, 2, 2)),
                        nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")).train()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        want = net(x)
        packed = prepack_convolutions(net)
        assert packed is net and not packed.training
        assert isinstance(net[0], PrepackedConv) and isinstance(net[2][0], PrepackedConv)
        assert isinstance(net[3], nn.Conv2d)  # reflect padding: left as it is
        assert torch.allclose(packed(x), want, atol=1e-5)
