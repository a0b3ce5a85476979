"""FLOPs of the networks outside torch (fsbench.nets.graph_flops) equal torch's count of the same layers."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fsbench.nets.graph_flops import face_landmarker_flops, onnx_flops, tflite_flops, yunet_flops


def _torch_flops(module: nn.Module, x: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)
    return counter.get_total_flops()


def test_onnx_count_equals_torch_count_at_any_input_size(tmp_path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.zeros((8, 3, 3, 3), np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [numpy_helper.from_array(weight, "w")])
    path = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    conv = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
    for h, w in ((32, 32), (48, 80)):
        assert onnx_flops(path, h, w) == _torch_flops(conv, torch.zeros(1, 3, h, w)) > 0


def test_tflite_count_equals_torch_count() -> None:
    """A TFLite model built with the schema mediapipe ships: convolution, depthwise convolution, fully connected."""
    import flatbuffers
    from mediapipe.tasks.metadata import schema_py_generated as schema

    shapes = [[1, 16, 16, 3], [8, 3, 3, 3], [1, 8, 8, 8], [1, 3, 3, 8], [1, 8, 8, 8], [10, 512], [1, 10]]
    model = schema.ModelT()
    model.version, model.buffers = 3, [schema.BufferT()]
    ops = schema.BuiltinOperator
    model.operatorCodes = []
    for code in (ops.CONV_2D, ops.DEPTHWISE_CONV_2D, ops.FULLY_CONNECTED):
        entry = schema.OperatorCodeT()
        entry.builtinCode = entry.deprecatedBuiltinCode = code
        model.operatorCodes.append(entry)
    graph = schema.SubGraphT()
    graph.tensors = []
    for shape in shapes:
        tensor = schema.TensorT()
        tensor.shape = shape
        graph.tensors.append(tensor)
    graph.inputs, graph.outputs = [0], [6]
    graph.operators = []
    for code_index, (inputs, output) in enumerate((([0, 1], 2), ([2, 3], 4), ([4, 5], 6))):
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = code_index, inputs, [output]
        graph.operators.append(op)
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")

    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False),
                        nn.Flatten(), nn.Linear(512, 10, bias=False))
    assert tflite_flops(bytes(builder.Output())) == _torch_flops(net, torch.zeros(1, 3, 16, 16))


def test_embedded_networks_are_counted() -> None:
    # YuNet is all convolutions on a 32-padded input: its count scales with the padded pixels
    assert yunet_flops(640, 640) == 4 * yunet_flops(320, 320) > 0
    assert yunet_flops(300, 400) == yunet_flops(320, 416)
    assert face_landmarker_flops() > 0
