"""One onnxruntime graph, opened on the device a network runs on and fed in the batches its file accepts: the runner
of the ONNX networks fsbench does not port to torch (insightface recognisers, the public swappers' graphs)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


def open_graph(model: Path | bytes, cuda: bool = False) -> Any:
    """An onnxruntime InferenceSession of a graph file or serialised graph, on CUDA when ``cuda`` and onnxruntime has
    it, with as many threads as torch."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # errors only: inswapper's emap is an initialiser no node reads
    return ort.InferenceSession(str(model) if isinstance(model, Path) else model, options, providers=providers)


class OnnxGraph:
    """An opened graph (:func:`open_graph`), fed in chunks its batch dimension accepts."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.input_names = [i.name for i in runtime.get_inputs()]
        batch = runtime.get_inputs()[0].shape[0]
        self.fixed_batch: int | None = batch if isinstance(batch, int) and batch > 0 else None
        self.output_name = runtime.get_outputs()[0].name

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The first output for every row of ``feeds`` (float32 arrays of equal length); a fixed batch dimension
        gets chunks of its size, the last one padded with zeros."""
        count = len(next(iter(feeds.values())))
        step = self.fixed_batch or max(count, 1)
        outs = []
        for start in range(0, count, step):
            chunk = {k: np.ascontiguousarray(v[start:start + step], np.float32) for k, v in feeds.items()}
            rows = len(next(iter(chunk.values())))
            if self.fixed_batch:
                chunk = {k: np.concatenate([v, np.zeros((step - rows, *v.shape[1:]), np.float32)])
                         for k, v in chunk.items()}
            outs.append(self.runtime.run([self.output_name], chunk)[0][:rows])
        return np.concatenate(outs) if outs else np.zeros((0,), np.float32)
