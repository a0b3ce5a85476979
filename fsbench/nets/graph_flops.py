"""FLOPs of the networks that run outside torch, counted from their graph files: YuNet (ONNX, run by OpenCV), the
ShuffleNetV2 head-pose network (ONNX, run by onnxruntime) and MediaPipe's face landmarker (three TFLite models in
one ``.task`` bundle). The torch ports that onnxruntime runs count themselves
(:class:`fsbench.nets.onnx_graph.TorchExport`).

Counted as torch's ``FlopCounterMode`` counts the torch networks: 2 per multiply-add of convolutions and fully
connected layers; biases, activations, pooling and element-wise operations are not counted. So every stage of
``fsbench bench --metrics`` measures its FLOP bound the same way.
"""
from __future__ import annotations

import functools
import zipfile
from pathlib import Path

import numpy as np

# the landmarker's networks, each run once per face in IMAGE mode: face detector on the whole image, landmarks on
# the face's region, blendshapes on 146 of the landmarks
FACE_LANDMARKER_MODELS = ("face_detector.tflite", "face_landmarks_detector.tflite", "face_blendshapes.tflite")


def onnx_flops(path: str | Path, height: int, width: int) -> int:
    """FLOPs of one pass of an ONNX image network (one ``1×C×H×W`` input) at ``height × width``."""
    import onnx

    model = onnx.load(str(path))
    del model.graph.value_info[:]  # shapes recorded for the export size; infer them again for this one
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = height, width
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True).graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in (*inferred.value_info, *inferred.output, *inferred.input)}
    shapes.update({t.name: list(t.dims) for t in inferred.initializer})
    flops = 0
    for node in inferred.node:
        if node.op_type == "Conv":  # weight Cout × Cin/groups × kh × kw
            flops += 2 * int(np.prod(shapes[node.output[0]])) * int(np.prod(shapes[node.input[1]][1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            flops += 2 * int(np.prod(shapes[node.output[0]])) * shapes[node.input[0]][-1]
    return flops


def tflite_flops(data: bytes) -> int:
    """FLOPs of one pass of a TFLite model (its first subgraph, at the input shapes it was exported with)."""
    from mediapipe.tasks.metadata import schema_py_generated as schema  # the TFLite schema mediapipe ships

    model = schema.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    codes = [max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(model.OperatorCodesLength())]
    ops = schema.BuiltinOperator

    def shape(tensor: int) -> np.ndarray:
        dims = graph.Tensors(tensor).ShapeAsNumpy()  # 0, not an array, for a tensor without dimensions
        return np.asarray(dims if isinstance(dims, np.ndarray) else [], np.int64)

    flops = 0
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code, inputs = codes[op.OpcodeIndex()], op.InputsAsNumpy()
        out = int(np.prod(shape(op.Outputs(0))))
        if code == ops.CONV_2D:  # weight Cout × kh × kw × Cin
            flops += 2 * out * int(np.prod(shape(inputs[1])[1:]))
        elif code == ops.DEPTHWISE_CONV_2D:  # weight 1 × kh × kw × C
            flops += 2 * out * int(np.prod(shape(inputs[1])[1:3]))
        elif code == ops.FULLY_CONNECTED:  # weight out × in
            flops += 2 * out * int(shape(inputs[1])[1])
        elif code == ops.BATCH_MATMUL:
            flops += 2 * out * int(shape(inputs[0])[-1])
        elif code == ops.TRANSPOSE_CONV:  # inputs: output shape, weight Cout × kh × kw × Cin, input
            flops += 2 * int(np.prod(shape(inputs[2]))) * int(np.prod(shape(inputs[1])[:3]))
    return flops


@functools.cache
def yunet_flops(height: int, width: int) -> int:
    """YuNet's FLOPs on an image of ``height × width`` as ``cv2.FaceDetectorYN`` runs it (padded up to a multiple
    of 32 on each side)."""
    from fsbench import assets

    return onnx_flops(assets.path("yunet"), -(-height // 32) * 32, -(-width // 32) * 32)


@functools.cache
def hopenet_shufflenet_flops() -> int:
    """FLOPs of the ShuffleNetV2 head-pose network (``fr_pose.onnx``) on one 224×224 face."""
    from fsbench import assets

    return onnx_flops(assets.path("hopenet-shufflenet"), 224, 224)


@functools.cache
def face_landmarker_flops() -> int:
    """FLOPs of one MediaPipe face landmarker call on one face (its three networks once each)."""
    from fsbench import assets

    with zipfile.ZipFile(assets.path("mediapipe-face-landmarker")) as bundle:
        return sum(tflite_flops(bundle.read(name)) for name in FACE_LANDMARKER_MODELS)
