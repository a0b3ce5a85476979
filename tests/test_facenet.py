"""FaceNet (Inception-ResNet-v1, Keras HDF5 read with h5py): strict loading and a reference embedding."""
from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import torch

from fsbench import assets
from fsbench.faces.align import align_face
from fsbench.faces.detect import detect_face
from fsbench.faces.io import read_image
from fsbench.metrics.identity import FaceNet as FaceNetBackend
from fsbench.nets.facenet import load_facenet

# The L2-normalised embedding of skimage's astronaut, detected and aligned by fsbench (YuNet, facenet-160 at 160),
# computed once with this port and confirmed with Keras 2.15 / TensorFlow-CPU 2.15.1 running the same .h5 on the
# same crop (max |difference| 2.5e-7, cosine 1.0). Rounded to 5 decimals.
ASTRONAUT = np.array([
    -0.17165, -0.09955, 0.04894, 0.00656, 0.02031, 0.04106, 0.19766, 0.01193, -0.09524, 0.02415,
    0.01699, -0.05891, -0.10599, 0.10235, -0.00655, 0.10491, 0.09668, -0.09003, -0.08514, -0.08942,
    -0.06195, -0.06043, -0.15953, 0.05537, -0.05789, 0.09671, 0.14393, -0.01659, -0.12303, 0.12192,
    0.10559, 0.10928, 0.01719, 0.08835, -0.00462, -0.06522, -0.05421, 0.08992, 0.00454, 0.02124,
    -0.00670, -0.12151, -0.00943, -0.05516, -0.02915, -0.16191, 0.00722, -0.00636, -0.07278, -0.12194,
    0.13796, -0.08666, 0.06067, -0.06594, 0.07371, -0.07354, 0.11662, -0.07247, -0.01131, -0.13716,
    -0.18606, 0.10682, 0.02821, 0.03362, -0.00422, -0.13790, -0.01141, 0.09715, -0.04576, 0.13180,
    0.11299, -0.06206, 0.04604, 0.08402, -0.05754, 0.13066, -0.02495, 0.00855, 0.01154, 0.01281,
    0.04068, 0.02633, -0.23817, -0.10820, 0.00333, 0.17124, 0.11066, 0.09256, -0.10067, 0.11196,
    0.05584, -0.04303, 0.10457, 0.04525, 0.01511, -0.01413, 0.16293, 0.15967, 0.13868, 0.11471,
    -0.07242, -0.10759, -0.04708, -0.05288, 0.02824, -0.12225, -0.12183, -0.02988, -0.01420, 0.08496,
    -0.12664, -0.00168, 0.09154, -0.06908, -0.13115, -0.11240, 0.00116, 0.01904, -0.01512, -0.01423,
    -0.01768, 0.06655, -0.01426, 0.00940, 0.04214, 0.15895, -0.02414, -0.00838,
], dtype=np.float32)
# Tolerance: Keras and the port agree to 1e-6; the slack covers other OpenCV builds moving YuNet's points or the
# bicubic warp by a fraction of a pixel. A wrong layer, scale or padding moves the embedding far more (cosine < 0.9).
ATOL, MIN_COSINE = 5e-3, 0.999


@pytest.fixture(scope="module")
def facenet():
    return FaceNetBackend()


@pytest.fixture
def h5_copy(tmp_path):
    path = tmp_path / "facenet.h5"
    shutil.copy(assets.path("facenet"), path)
    return path


def test_reference_embedding_astronaut(facenet):
    image = read_image(assets.path("media/skimage/astronaut.png"))
    crop, _ = align_face(image, detect_face(image).landmarks, "facenet-160")
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
    emb = facenet.features(x, "facenet-160")[0].numpy()
    assert np.abs(emb - ASTRONAUT).max() <= ATOL
    assert float(emb @ ASTRONAUT / np.linalg.norm(ASTRONAUT)) >= MIN_COSINE


def test_embed_is_differentiable_and_frozen(facenet):
    x = torch.rand(2, 3, 128, 128, requires_grad=True)  # another size: re-aligned to facenet-160 inside
    emb = facenet.embed(x, "ffhq-256")
    assert emb.shape == (2, 128) and torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    emb[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in facenet.net.parameters())
    facenet.net.train()
    assert not facenet.net.training


def test_not_hdf5_is_a_clear_error(tmp_path):
    path = tmp_path / "facenet.h5"
    path.write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match="facenet.h5: not a Keras HDF5 model"):
        load_facenet(path)


def test_other_keras_model_is_a_clear_error(tmp_path):
    path = tmp_path / "other.h5"
    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "Conv2D", "name": "conv", "config": {"strides": [1, 1], "padding": "same"}}]}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.create_dataset("model_weights/conv/conv/kernel:0", data=np.zeros((3, 3, 3, 8), np.float32))
    with pytest.raises(ValueError, match="other.h5: no Conv2D layer 'Conv2d_1a_3x3'"):
        load_facenet(path)


def test_wrong_shape_is_a_clear_error(h5_copy):
    with h5py.File(h5_copy, "a") as f:
        group = f["model_weights/Block17_3_Conv2d_1x1/Block17_3_Conv2d_1x1"]
        del group["bias:0"]
        group.create_dataset("bias:0", data=np.zeros(895, np.float32))
    with pytest.raises(ValueError, match=r"facenet.h5: weight 'Block17_3_Conv2d_1x1/bias' has shape \(895,\)"):
        load_facenet(h5_copy)


def test_missing_tensor_is_a_clear_error(h5_copy):
    with h5py.File(h5_copy, "a") as f:
        del f["model_weights/Bottleneck_BatchNorm/Bottleneck_BatchNorm/moving_variance:0"]
    with pytest.raises(ValueError, match="facenet.h5: weight 'Bottleneck_BatchNorm/moving_variance' is missing"):
        load_facenet(h5_copy)


def test_unused_tensor_is_a_clear_error(h5_copy):
    with h5py.File(h5_copy, "a") as f:
        f.create_dataset("model_weights/Logits/Logits/kernel:0", data=np.zeros((128, 10), np.float32))
    with pytest.raises(ValueError, match="facenet.h5: 1 weight tensors not used"):
        load_facenet(h5_copy)


def test_missing_block_scale_is_a_clear_error(h5_copy):
    with h5py.File(h5_copy, "a") as f:
        config = json.loads(f.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Lambda":
                layer["config"]["arguments"] = {}
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ValueError, match="facenet.h5: no Lambda with a 'scale' argument after 'Block35_1_Conv2d_1x1'"):
        load_facenet(h5_copy)
