"""dlib's face recognition ResNet ported to torch (fsbench.nets.dlib_resnet; the backend runs its onnxruntime export)
against dlib-bin, and its file parser.

Equality is checked on dlib's own chips of real faces (cropped as the runner crops them): cosine to dlib-bin's
``compute_face_descriptor`` ≥ 0.99999 on every face and max |Δ| ≤ 1e-5 per descriptor value (the engine
folds dlib's affine layers into the convolutions and sums in another order, so equality is to float rounding;
measured max |Δ| is about 5e-7 on descriptors of norm about 0.4–0.5 per value).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fsbench import assets
from fsbench.faces.dlib_chip import face_chip
from fsbench.metrics.identity import DlibResNet, _to_template
from fsbench.nets.dlib_resnet import read_dlib_resnet
from fsbench.protocols.stills import MiniStills
from fsbench.faces.crops import EVAL_SIZE, EVAL_TEMPLATE, CropStore, to_tensor

MIN_COSINE, MAX_ABS = 0.99999, 1e-5


@pytest.fixture(scope="module")
def backend() -> DlibResNet:
    return DlibResNet()


@pytest.fixture(scope="module")
def dlib_bin():
    import dlib

    return dlib.face_recognition_model_v1(str(assets.path("dlib-resnet")))


def _eval_crops(items) -> torch.Tensor:
    store = CropStore(EVAL_TEMPLATE, EVAL_SIZE)
    store.prepare(items, progress=False)
    return to_tensor([store.eval_crop(i) for i in items if i.id in store.crops])


def _check_equal(backend: DlibResNet, dlib_bin, crops: torch.Tensor) -> None:
    chips = backend.chips(crops, EVAL_TEMPLATE)
    reference = torch.tensor(np.array(dlib_bin.compute_face_descriptor(list(chips))), dtype=torch.float32)
    ours = backend.descriptors(crops, EVAL_TEMPLATE)
    cos = torch.nn.functional.cosine_similarity(ours.double(), reference.double(), dim=1)
    delta = (ours - reference).abs().max().item()
    print(f"{len(crops)} faces: min cosine to dlib-bin {cos.min().item():.12f}, max |Δ| {delta:.2e}")
    assert ours.shape == reference.shape == (len(crops), 128)
    assert cos.min().item() >= MIN_COSINE and delta <= MAX_ABS


def test_engine_equals_dlib_bin_on_test_stills(backend: DlibResNet, dlib_bin) -> None:
    _check_equal(backend, dlib_bin, _eval_crops(MiniStills().build(None, 0).gallery))


@pytest.mark.slow
def test_engine_equals_dlib_bin_on_test_video_frames(backend: DlibResNet, dlib_bin) -> None:
    from fsbench.protocols.video import MiniVideo

    _check_equal(backend, dlib_bin, _eval_crops(MiniVideo().build(None, 0).gallery))


def _check_chips(backend: DlibResNet, crops: torch.Tensor) -> None:
    """fsbench's chips equal dlib-bin's ``get_face_chip`` from the same landmarks, to the bit."""
    import dlib

    chips = backend.chips(crops, EVAL_TEMPLATE)
    images = (_to_template(crops, EVAL_TEMPLATE, backend.CROP_TEMPLATE, backend.CROP_SIZE).clamp(0, 1) * 255)
    images = images.round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    box = dlib.rectangle(*backend.FACE_BOX)
    predictor = dlib.shape_predictor(str(assets.path("dlib-5")))
    want = np.stack([dlib.get_face_chip(im, predictor(im, box), size=backend.CHIP_SIZE,
                                        padding=backend.CHIP_PADDING) for im in images])
    assert chips.shape == want.shape and chips.dtype == np.uint8
    assert np.array_equal(chips, want)


def test_chips_equal_dlib_bin_on_test_stills(backend: DlibResNet) -> None:
    _check_chips(backend, _eval_crops(MiniStills().build(None, 0).gallery))


@pytest.mark.slow
def test_chips_equal_dlib_bin_on_test_video_frames(backend: DlibResNet) -> None:
    from fsbench.protocols.video import MiniVideo

    _check_chips(backend, _eval_crops(MiniVideo().build(None, 0).gallery))


def test_chip_of_a_rotated_face_near_the_border_and_refusal_of_a_huge_one() -> None:
    """Off-centre, rotated landmarks (chip pixels outside the image are 0, as dlib's) and a face whose chip
    would need dlib's image pyramid (refused)."""
    import dlib

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    points = np.array([(40, 10), (28, 14), (2, 20), (14, 18), (24, 40)])  # tilted, at the top-left corner
    shape = dlib.full_object_detection(dlib.rectangle(0, 0, 60, 60), [dlib.point(*p) for p in points])
    ours = face_chip(image, points)
    assert np.array_equal(ours, dlib.get_face_chip(image, shape, size=150, padding=0.25))
    assert (ours == 0).all(axis=2).any()  # part of the chip lies outside the image
    with pytest.raises(ValueError, match="image pyramid"):
        face_chip(np.zeros((900, 900, 3), np.uint8), points * 10)


def test_batch_of_one_and_empty(backend: DlibResNet) -> None:
    crops = _eval_crops(MiniStills().build(None, 0).gallery[:3])
    whole = backend.features(crops, EVAL_TEMPLATE)
    singles = torch.cat([backend.features(crops[i:i + 1], EVAL_TEMPLATE) for i in range(len(crops))])
    torch.testing.assert_close(singles, whole, atol=1e-6, rtol=0)
    assert backend.features(crops[:0], EVAL_TEMPLATE).shape == (0, 128)


# ---------------------------------------------------------------- the parser


@pytest.fixture(scope="module")
def dat_bytes() -> bytes:
    return assets.path("dlib-resnet").read_bytes()


def _corrupt(tmp_path, data: bytes):
    path = tmp_path / "model.dat"
    path.write_bytes(data)
    return path


def _find_after(data: bytes, marker: bytes) -> int:
    """Offset just after the first occurrence of a serialised string ``marker`` (length byte pair + text)."""
    at = data.index(bytes([1, len(marker)]) + marker)
    return at + 2 + len(marker)


@pytest.mark.parametrize("case, message", [
    ("empty", "truncated"),
    ("truncated", "truncated"),
    ("leftover", "1 bytes left over"),
    ("loss version", "loss layer version is 7"),
    ("loss tag", "expected 'loss_metric_' or 'loss_metric_2'"),
    ("input size", "input size is not 150×150"),
    ("stem filters", "con (filters, nr, nc, strides, paddings) (33, 7, 7, 2, 2, 0, 0)"),
    ("bool", "bad bool byte"),
])
def test_parser_rejects_bad_files(tmp_path, dat_bytes: bytes, case: str, message: str) -> None:
    data = bytearray(dat_bytes)
    if case == "empty":
        data = bytearray()
    elif case == "truncated":
        data = data[:len(data) // 2]
    elif case == "leftover":
        data += b"\0"
    elif case == "loss version":
        data[1] = 7  # the loss layer's version integer: control byte 0x01, then its one byte
    elif case == "loss tag":
        data[_find_after(data, b"loss_metric_2") - 1] = ord("9")
    elif case == "input size":
        at = _find_after(data, b"input_rgb_image_sized")
        for _ in range(6):  # three floats, each mantissa and exponent
            at += 1 + (data[at] & 0x0F)
        data[at + 1] = 151  # rows: control byte 0x01, then 150
    elif case == "stem filters":
        at = _find_after(data, b"con_4")  # the stem: the first con in forward order
        at += 2  # the params tensor: version 2 …
        for _ in range(4):  # … and its four dims
            at += 1 + (data[at] & 0x0F)
        at += 4 * 32 * (3 * 7 * 7 + 1)  # its floats
        data[at + 1] = 33  # num_filters
    elif case == "bool":
        data[_find_after(data, b"relu_")] = ord("x")  # the first relu's "setup called" flag
    path = _corrupt(tmp_path, bytes(data))
    with pytest.raises(ValueError, match=str(path).replace("\\", "\\\\")) as err:
        read_dlib_resnet(path)
    assert message in str(err.value)


def test_parser_reads_the_whole_file(dat_bytes: bytes) -> None:
    state = read_dlib_resnet(assets.path("dlib-resnet"))
    assert state["input_mean"].flatten().tolist() == pytest.approx([122.782, 117.001, 104.298], abs=1e-4)
    assert state["stem.weight"].shape == (32, 3, 7, 7) and state["fc.weight"].shape == (128, 256)
