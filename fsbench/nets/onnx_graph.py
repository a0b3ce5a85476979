"""One onnxruntime graph, opened on the device a network runs on and fed in the batches its file accepts: the runner
of the ONNX networks fsbench does not port to torch (insightface recognisers, the public swappers' graphs) and of the
torch ports that onnxruntime runs faster on a CPU than torch does (dlib's ResNet; WHENet's EfficientNet-B0 and
MobileNetV2, whose depthwise convolutions torch runs slowly), as :class:`TorchExport`."""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch


def open_graph(model: Path | bytes, cuda: bool = False, spin: bool = True) -> Any:
    """An onnxruntime InferenceSession of a graph file or serialised graph, on CUDA when ``cuda`` and onnxruntime has
    it, with as many threads as torch. ``spin=False``: its threads sleep between calls, for a graph that takes turns
    with other networks (spinning threads hold the cores the next network needs)."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # errors only: inswapper's emap is an initialiser no node reads
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model) if isinstance(model, Path) else model, options, providers=providers)


class OnnxGraph:
    """An opened graph (:func:`open_graph`), fed in chunks its batch dimension accepts, or of ``chunk`` rows where
    the graph takes any batch and a network runs faster in small ones. A backend hands it a whole runner batch, made
    ready by torch first: torch's threads spin a while after each operation, and between two chunks they would take
    the cores onnxruntime needs."""

    def __init__(self, runtime: Any, chunk: int | None = None) -> None:
        self.runtime, self.chunk = runtime, chunk
        self.input_names = [i.name for i in runtime.get_inputs()]
        batch = runtime.get_inputs()[0].shape[0]
        self.fixed_batch: int | None = batch if isinstance(batch, int) and batch > 0 else None
        output = runtime.get_outputs()[0]
        self.output_name = output.name
        # the shape of no rows: the declared dimensions after the batch (0 where the graph leaves one free)
        self.empty_shape = (0, *(d if isinstance(d, int) else 0 for d in output.shape[1:]))

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The first output for every row of ``feeds`` (float32 arrays of equal length); a fixed batch dimension
        gets chunks of its size, the last one padded with zeros, any other ``chunk`` rows at a time (all at once
        without one)."""
        count = len(next(iter(feeds.values())))
        step = self.fixed_batch or self.chunk or max(count, 1)
        outs = []
        for start in range(0, count, step):
            chunk = {k: np.ascontiguousarray(v[start:start + step], np.float32) for k, v in feeds.items()}
            rows = len(next(iter(chunk.values())))
            if self.fixed_batch:
                chunk = {k: np.concatenate([v, np.zeros((step - rows, *v.shape[1:]), np.float32)])
                         for k, v in chunk.items()}
            outs.append(self.runtime.run([self.output_name], chunk)[0][:rows])
        return np.concatenate(outs) if outs else np.zeros(self.empty_shape, np.float32)


class TorchExport(OnnxGraph):
    """A torch network of one input and one output run by onnxruntime: its export for any batch of ``input_shape``
    (C, H, W) inputs (other sizes the network reads are traced as constants), opened without spinning threads (it
    takes turns with other networks) and fed ``chunk`` rows a call; ``model`` is the serialised export and ``net``
    the network itself, whose FLOPs :meth:`flops` counts."""

    def __init__(self, net: torch.nn.Module, input_shape: tuple[int, int, int], cuda: bool = False,
                 chunk: int | None = None) -> None:
        self.net, self.input_shape = net.eval(), input_shape
        buffer = io.BytesIO()
        with warnings.catch_warnings():  # the legacy exporter's notice, and the sizes it traces as constants
            warnings.simplefilter("ignore")
            torch.onnx.export(self.net, torch.zeros(1, *input_shape), buffer, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
        self.model = buffer.getvalue()
        super().__init__(open_graph(self.model, cuda, spin=False), chunk)

    def flops(self) -> int:
        """FLOPs of one input, as torch counts them on the network."""
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            self.net(torch.zeros(1, *self.input_shape))
        return counter.get_total_flops()
