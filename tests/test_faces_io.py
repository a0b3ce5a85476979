"""Image and video reading: every supported kind of file, and a typed error naming the file for every bad one."""
from __future__ import annotations

import struct
import zlib
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fsbench import assets
from fsbench.faces.errors import FaceError, ImageReadError, VideoReadError
from fsbench.faces.io import BACKGROUND, evenly_spaced, read_frames, read_image, video_frame_count


def _pattern(h: int = 48, w: int = 64) -> np.ndarray:
    """Smooth colour gradients (so that JPEG keeps them nearly exactly)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 90)], -1).astype(np.uint8)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width``×``height`` but whose pixel data is a few bytes: decoding it would fail."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def _expect_error(error: type[FaceError], path: Path, fragment: str, read=read_image) -> None:
    with pytest.raises(error) as info:
        read(path)
    message = str(info.value)
    assert str(path) in message, message
    assert fragment in message, message


# --- images that read ---------------------------------------------------------------------------------------------

def test_astronaut_matches_opencv_decode_in_rgb():
    path = assets.path("media/skimage/astronaut.png")
    img = read_image(path)
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


@pytest.mark.parametrize("fmt, suffix, options, tolerance", [
    ("PNG", "png", {}, 0), ("WEBP", "webp", {"lossless": True}, 0), ("JPEG", "jpg", {"quality": 95}, 3)])
def test_formats_round_trip(tmp_path, fmt, suffix, options, tolerance):
    pattern = _pattern()
    pattern[:, :32] = (255, 0, 0)  # a red left half: would come back blue if channels were BGR
    path = tmp_path / f"img.{suffix}"
    Image.fromarray(pattern).save(path, fmt, **options)
    img = read_image(path)
    assert img.shape == pattern.shape and img.dtype == np.uint8
    assert np.abs(img.astype(int) - pattern).mean() <= tolerance
    assert img[:, 4:28, 0].min() > 200 and img[:, 4:28, 2].max() < 50


def test_grayscale_becomes_three_equal_channels(tmp_path):
    grey = _pattern()[..., 0]
    Image.fromarray(grey).save(tmp_path / "grey.png")
    img = read_image(tmp_path / "grey.png")
    assert img.shape == (*grey.shape, 3)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], grey)


def test_real_black_and_white_photo_has_three_channels():
    img = read_image(assets.path("media/pyfeat/BWPictureHuman.jpg"))
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8


def test_16bit_grey_is_scaled(tmp_path):
    values = np.array([[0, 128 * 257, 65535, 1000]], np.uint16).repeat(16, 0).repeat(4, 1)
    Image.fromarray(values).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode == "I;16"
    img = read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(img[0, ::4, 0], [0, 128, 255, 4])  # 1000 · 255/65535 = 3.9
    assert (img[..., 0] == img[..., 2]).all()


def test_16bit_rgb_is_scaled(tmp_path):
    rgb16 = _pattern().astype(np.uint16) * 257 + 100
    cv2.imwrite(str(tmp_path / "rgb16.png"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    img = read_image(tmp_path / "rgb16.png")
    assert np.abs(img.astype(int) - rgb16 / 257.0).max() <= 1


def test_rgba_is_composited_on_grey(tmp_path):
    rgba = np.zeros((16, 48, 4), np.uint8)
    rgba[..., :3] = (200, 10, 50)
    rgba[:, :16, 3], rgba[:, 16:32, 3], rgba[:, 32:, 3] = 255, 0, 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    img = read_image(tmp_path / "rgba.png")
    np.testing.assert_array_equal(img[0, 0], (200, 10, 50))
    np.testing.assert_array_equal(img[0, 20], BACKGROUND)
    expected = np.round(np.array([200, 10, 50]) * 128 / 255 + np.array(BACKGROUND) * 127 / 255)
    np.testing.assert_array_equal(img[0, 40], expected)


def test_grey_with_alpha_and_palette_transparency(tmp_path):
    la = np.zeros((16, 16, 2), np.uint8)
    la[..., 0], la[:, 8:, 1] = 30, 255
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    img = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(img[0, 0], BACKGROUND)
    np.testing.assert_array_equal(img[0, 12], (30, 30, 30))

    pal = Image.new("P", (16, 16), 0)
    pal.putpalette([0, 255, 0, 255, 0, 0] + [0] * 762)
    pal.paste(1, (8, 0, 16, 16))
    pal.save(tmp_path / "pal.png", transparency=0)
    img = read_image(tmp_path / "pal.png")
    np.testing.assert_array_equal(img[0, 0], BACKGROUND)
    np.testing.assert_array_equal(img[0, 12], (255, 0, 0))


@pytest.mark.parametrize("name", ["media/pyfeat/Image_with_alpha.png", "media/face_recognition/32bit.png"])
def test_real_rgba_files(name):
    path = assets.path(name)
    with Image.open(path) as im:
        assert im.mode == "RGBA"
    img = read_image(path)
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    img = read_image(tmp_path / "rotated.jpg")
    assert img.shape == (40, 20, 3)
    assert img[5, 10, 0] > 200 and img[5, 10, 2] < 60  # the stored left (red) half is now on top
    assert img[35, 10, 2] > 200 and img[35, 10, 0] < 60


# --- images that do not read ----------------------------------------------------------------------------------------

def test_missing_empty_and_directory(tmp_path):
    _expect_error(ImageReadError, tmp_path / "missing.jpg", "does not exist")
    (tmp_path / "empty.png").write_bytes(b"")
    _expect_error(ImageReadError, tmp_path / "empty.png", "empty")
    (tmp_path / "folder.jpg").mkdir()
    _expect_error(ImageReadError, tmp_path / "folder.jpg", "not a regular file")


def _encoded(fmt: str) -> bytes:
    buffer = BytesIO()
    Image.fromarray(_pattern()).save(buffer, fmt)
    return buffer.getvalue()


def _blank_png_data(png: bytes) -> bytes:
    """Keep the signature, header and end chunk; zero the compressed pixel data."""
    start = png.find(b"IDAT") + 4
    return png[:start] + bytes(len(png) - start - 12) + png[-12:]


@pytest.mark.parametrize("name, make, fragment", [
    ("text.png", lambda: b"hello, not an image\n" * 10, "not an image"),
    ("noise.jpg", lambda: np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes(), "not an image"),
    ("truncated.jpg", lambda: _encoded("JPEG")[: len(_encoded("JPEG")) // 2], "truncated"),
    ("truncated.png", lambda: _encoded("PNG")[: len(_encoded("PNG")) // 2], "truncated"),
    ("broken_header.jpg", lambda: _encoded("JPEG")[:300] + bytes(2000), "corrupt"),
    ("broken_data.png", lambda: _blank_png_data(_encoded("PNG")), "corrupt"),
])
def test_corrupt_files(tmp_path, name, make, fragment):
    path = tmp_path / name
    path.write_bytes(make())
    _expect_error(ImageReadError, path, fragment)


@pytest.mark.parametrize("width, height", [(10_000, 9_000), (20_000, 20_000)])
def test_huge_image_is_refused_before_decoding(tmp_path, width, height):
    # the pixel data is bogus, so a decode attempt would report corruption instead of the size
    path = _png_header_only(tmp_path / f"huge_{width}.png", width, height)
    _expect_error(ImageReadError, path, "80 MP limit")


@pytest.mark.parametrize("shape", [(8, 8), (100, 10)])
def test_tiny_image_is_refused(tmp_path, shape):
    Image.fromarray(_pattern(*shape)).save(tmp_path / "tiny.png")
    _expect_error(ImageReadError, tmp_path / "tiny.png", "at least 16 px")


def test_float_image_is_refused(tmp_path):
    Image.fromarray(np.ones((20, 20), np.float32)).save(tmp_path / "float.tif")
    _expect_error(ImageReadError, tmp_path / "float.tif", "float")


# --- videos ----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def numbered_video(tmp_path_factory) -> Path:
    """12 flat frames, frame i with red = 20·i (MJPEG keeps flat colours nearly exact)."""
    path = tmp_path_factory.mktemp("video") / "numbered.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for i in range(12):
        writer.write(np.full((48, 64, 3), (0, 0, 20 * i), np.uint8))  # BGR
    writer.release()
    return path


def test_read_frames_returns_the_asked_frames_in_rgb_and_order(numbered_video):
    assert video_frame_count(numbered_video) == 12
    frames = read_frames(numbered_video, [3, 0, 11, 3])
    assert [f.shape for f in frames] == [(48, 64, 3)] * 4
    assert [int(round(f[..., 0].mean())) for f in frames] == pytest.approx([60, 0, 220, 60], abs=3)
    assert max(float(f[..., 1:].mean()) for f in frames) < 3
    assert read_frames(numbered_video, []) == []
    with pytest.raises(ValueError):
        read_frames(numbered_video, [-1])


def test_frame_beyond_the_end(numbered_video):
    _expect_error(VideoReadError, numbered_video, "only 12 frames", read=lambda p: read_frames(p, [0, 12]))


def test_real_video_whose_metadata_overstates_its_length():
    path = assets.path("media/pyfeat/no_face.mp4")
    claimed = int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))
    n = video_frame_count(path)
    assert n < claimed  # 95 decodable frames, 98 in the container
    last = read_frames(path, [n - 1])[0]
    assert last.shape == (540, 960, 3) and last.dtype == np.uint8
    _expect_error(VideoReadError, path, f"only {n} frames", read=lambda p: read_frames(p, [n]))


def test_real_video_frame_count():
    assert video_frame_count(assets.path("media/pyfeat/single_face.mp4")) == 72


@pytest.mark.parametrize("name, make, fragment", [
    ("noise.mp4", lambda src: np.random.default_rng(2).integers(0, 256, 5000, dtype=np.uint8).tobytes(), "cannot open"),
    ("text.mp4", lambda src: b"not a video\n" * 100, "cannot open"),
    ("truncated.mp4", lambda src: src[: len(src) // 3], "cannot open"),
])
def test_videos_that_do_not_open(tmp_path, name, make, fragment):
    path = tmp_path / name
    path.write_bytes(make(assets.path("media/pyfeat/single_face.mp4").read_bytes()))
    _expect_error(VideoReadError, path, fragment, read=video_frame_count)
    _expect_error(VideoReadError, path, fragment, read=lambda p: read_frames(p, [0]))


def test_video_that_opens_but_does_not_decode(tmp_path, numbered_video):
    data = numbered_video.read_bytes()
    start = data.find(b"movi") + 4  # keep the AVI headers, blank every frame
    path = tmp_path / "blank_frames.avi"
    path.write_bytes(data[:start] + bytes(len(data) - start - 200) + data[-200:])
    _expect_error(VideoReadError, path, "no frame could be decoded (codec 'MJPG')", read=video_frame_count)
    _expect_error(VideoReadError, path, "no frame could be decoded", read=lambda p: read_frames(p, [0]))


def test_missing_and_empty_videos(tmp_path):
    _expect_error(VideoReadError, tmp_path / "missing.mp4", "does not exist", read=video_frame_count)
    (tmp_path / "empty.mp4").write_bytes(b"")
    _expect_error(VideoReadError, tmp_path / "empty.mp4", "empty", read=lambda p: read_frames(p, [0]))


# --- frame sampling ----------------------------------------------------------------------------------------------------

def test_evenly_spaced_formula():
    assert evenly_spaced(300, 10) == [15, 45, 75, 105, 135, 165, 195, 225, 255, 285]
    assert evenly_spaced(10, 10) == list(range(10))
    assert evenly_spaced(4, 10) == [0, 1, 2, 3]
    assert evenly_spaced(1, 1) == [0]


@pytest.mark.parametrize("n", [10, 11, 95, 169, 299, 1001])
def test_evenly_spaced_properties(n):
    idx = evenly_spaced(n, 10)
    assert len(idx) == 10 and idx == sorted(set(idx))
    assert 0 <= idx[0] and idx[-1] < n
    gaps = np.diff(idx)
    assert gaps.max() - gaps.min() <= 1  # as even as integers allow
    assert abs(idx[0] - (n - 1 - idx[-1])) <= 1  # symmetric about the middle


@pytest.mark.parametrize("n, k", [(0, 10), (10, 0), (-5, 3)])
def test_evenly_spaced_rejects_nonsense(n, k):
    with pytest.raises(ValueError):
        evenly_spaced(n, k)
