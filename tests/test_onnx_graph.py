"""fsbench.nets.onnx_graph: a torch network run by onnxruntime, fed in chunks of the size it asks for."""
from __future__ import annotations

import numpy as np
import torch

from fsbench.nets.onnx_graph import TorchExport


def test_chunks_cover_every_row_and_equal_the_network() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten())
    graph = TorchExport(net, (3, 8, 8), chunk=3)
    calls: list[int] = []
    runtime_run = graph.runtime.run

    class Counting:
        def run(self, names, feeds):
            calls.append(len(feeds["x"]))
            return runtime_run(names, feeds)

    graph.runtime = Counting()
    x = torch.rand(7, 3, 8, 8)
    out = graph({"x": x.numpy()})
    assert calls == [3, 3, 1]
    np.testing.assert_allclose(out, net(x).detach().numpy(), atol=1e-6)
    assert graph({"x": x[:0].numpy()}).shape == (0, 4)
