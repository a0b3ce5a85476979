"""`fsbench swap` on the embedded media: an image pair, a video, --face on a group photo, and wrong inputs."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fsbench import assets, cli, registry
from fsbench.faces.detect import detect_faces
from fsbench.faces.io import read_frames, read_image, video_frame_count
from fsbench.swap import FaceSwapper, _swap_video


def _media(name: str) -> str:
    return str(assets.path(f"media/{name}"))


@pytest.fixture(scope="module")
def obama() -> str:
    return _media("face_recognition/obama.jpg")


@pytest.fixture(scope="module")
def astronaut() -> str:
    return _media("skimage/astronaut.png")


def _swap(capsys, *args: str) -> tuple[int, str, str]:
    rc = cli.main(["swap", "--quiet", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_copy_target_returns_the_photo_nearly_unchanged(tmp_path, capsys, obama, astronaut):
    out = tmp_path / "out.png"
    rc, stdout, _ = _swap(capsys, "--method", "copy-target", "--source", obama, "--target", astronaut,
                          "--out", str(out))
    assert rc == 0 and str(out) in stdout
    diff = np.abs(read_image(out).astype(int) - read_image(astronaut).astype(int))
    # only the align + paste round trip (bicubic both ways) touches the face: 0.7 on average there, max 9
    assert diff.mean() < 0.1 and diff.max() <= 12


def test_paste_source_changes_the_face_and_nothing_far_from_it(tmp_path, capsys, obama, astronaut):
    out = tmp_path / "out.png"
    rc, _, _ = _swap(capsys, "--method", "paste-source", "--source", obama, "--target", astronaut, "--out", str(out))
    assert rc == 0
    before, after = read_image(astronaut).astype(int), read_image(out).astype(int)
    x, y, w, h = detect_faces(read_image(astronaut))[0].box.astype(int)
    diff = np.abs(after - before).mean(2)
    assert diff[y + h // 4:y + 3 * h // 4, x + w // 4:x + 3 * w // 4].mean() > 10  # the face is another's
    far = np.ones(diff.shape, bool)
    far[max(0, y - h):y + 2 * h, max(0, x - w):x + 2 * w] = False
    assert diff[far].max() == 0  # paste-back leaves every pixel outside the crop's reach as it was


def test_video_every_frame_swapped_with_one_identity(tmp_path, capsys, obama):
    video, out = _media("pyfeat/single_face.mp4"), tmp_path / "out.mp4"
    rc, stdout, _ = _swap(capsys, "--method", "paste-source", "--source", obama, "--target", video,
                          "--out", str(out))
    assert rc == 0 and "72 frames written" in stdout and "0 of them unchanged (face #0 not found)" in stdout
    assert video_frame_count(out) == 72
    first_in, first_out = read_frames(video, [0])[0], read_frames(out, [0])[0]
    assert first_out.shape == first_in.shape
    x, y, w, h = detect_faces(first_in)[0].box.astype(int)
    assert np.abs(first_out[y:y + h, x:x + w].astype(int) - first_in[y:y + h, x:x + w]).mean() > 10

    rc, stdout, _ = _swap(capsys, "--method", "copy-target", "--source", obama, "--target", video,
                          "--out", str(tmp_path / "short.avi"), "--limit-frames", "5")
    assert rc == 0 and "5 frames written" in stdout and video_frame_count(tmp_path / "short.avi") == 5


def test_video_frames_without_a_face_are_written_unchanged_and_counted(tmp_path, obama, astronaut):
    face = cv2.resize(read_image(astronaut), (256, 256), interpolation=cv2.INTER_AREA)
    grey = np.full_like(face, 128)
    target = tmp_path / "mixed.avi"
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    for frame in (face, grey, face, grey, grey):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    swapper = FaceSwapper(registry.methods.get("paste-source")(), read_image(obama), "obama.jpg")
    report = _swap_video(swapper, target, tmp_path / "out.avi", 0, 10.0, 5, None, False)
    assert (report.frames, report.unchanged) == (5, 3)
    decoded_in, decoded_out = read_frames(target, range(5)), read_frames(tmp_path / "out.avi", range(5))
    for i in (1, 3, 4):  # the grey frames: only the MJPG re-encoding differs
        assert np.abs(decoded_out[i].astype(int) - decoded_in[i]).mean() < 2


@pytest.mark.parametrize("index", [0, 2])
def test_face_picks_one_face_of_a_group_photo(tmp_path, capsys, obama, index):
    group, out = _media("pyfeat/multi_face.jpg"), tmp_path / f"face{index}.jpg"
    rc, _, _ = _swap(capsys, "--method", "paste-source", "--source", obama, "--target", group, "--out", str(out),
                     "--face", str(index))
    assert rc == 0
    before = read_image(group)
    diff = np.abs(read_image(out).astype(int) - before).max(2)
    changed = [diff[int(y):int(y + h), int(x):int(x + w)].mean() for x, y, w, h in
               (f.box for f in detect_faces(before))]
    assert len(changed) == 5 and int(np.argmax(changed)) == index  # largest-first, as detect_faces ranks them
    assert sorted(changed)[-2] < changed[index] / 4


def test_wrong_inputs_are_one_line_naming_the_file(tmp_path, capsys, obama, astronaut):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    fake_video = tmp_path / "clip.mp4"
    fake_video.write_text("not a video")
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((200, 200, 3), 128, np.uint8))
    video = _media("pyfeat/single_face.mp4")
    ok = {"--method": "copy-target", "--source": obama, "--target": astronaut, "--out": str(tmp_path / "o.png")}
    cases = [
        ({"--source": str(tmp_path / "missing.jpg")}, ["missing.jpg", "does not exist"]),
        ({"--source": str(text)}, ["notes.jpg", "not an image"]),
        ({"--source": str(grey)}, ["grey.png", "no face"]),
        ({"--target": str(grey)}, ["grey.png", "no face"]),
        ({"--target": str(fake_video), "--out": str(tmp_path / "o.mp4")}, ["clip.mp4", "cannot open"]),
        ({"--method": "pastesource"}, ["pastesource", "paste-source"]),
        ({"--out": str(tmp_path / "o.txt")}, ["o.txt", "unsupported output suffix"]),
        ({"--out": str(tmp_path / "nowhere" / "o.png")}, ["nowhere", "does not exist"]),
        ({"--target": video}, ["o.png", "is a video"]),
        ({"--out": str(tmp_path / "o.mp4")}, ["o.mp4", "is an image"]),
        ({"--target": _media("pyfeat/multi_face.jpg"), "--face": "9"}, ["multi_face.jpg", "only 5 face(s)"]),
        ({"--face": "-1"}, ["--face", "must be 0 or more"]),
        ({"--target": video, "--out": str(tmp_path / "o.mp4"), "--limit-frames": "0"},
         ["--limit-frames", "must be 1 or more"]),
    ]
    for change, expected in cases:
        args = [x for kv in {**ok, **change}.items() for x in kv]
        rc, _, err = _swap(capsys, *args)
        assert rc == 2, (change, err)
        assert err.count("\n") == 1 and err.startswith(("fsbench: error: ", "fsbench swap: error: ")), err
        assert all(e in err for e in expected), (expected, err)


def test_a_face_never_found_in_a_video_is_an_error_and_writes_nothing(tmp_path, capsys, obama):
    out = tmp_path / "o.mp4"
    rc, _, err = _swap(capsys, "--method", "copy-target", "--source", obama, "--target",
                       _media("pyfeat/single_face.mp4"), "--out", str(out), "--face", "3", "--limit-frames", "2")
    assert rc == 2 and err.count("\n") == 1, err
    assert "face #3 was not found in any of its 2 frames (at most 1 face(s) in a frame" in err
    assert "nothing written" in err
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_video_swap_leaves_no_partial_file(tmp_path, obama):
    """Ctrl-C mid-video: the output is written under a temporary name, removed on the way out."""
    class Interrupted(FaceSwapper):
        calls = 0

        def __call__(self, frame, face_index=0, name=""):
            Interrupted.calls += 1
            if Interrupted.calls == 3:
                raise KeyboardInterrupt
            return super().__call__(frame, face_index, name)

    swapper = Interrupted(registry.methods.get("copy-target")(), read_image(obama), "obama.jpg")
    with pytest.raises(KeyboardInterrupt):
        _swap_video(swapper, Path(_media("pyfeat/single_face.mp4")), tmp_path / "out.mp4", 0, 25.0, 72, None, False)
    assert list(tmp_path.iterdir()) == []


def test_a_small_source_face_warns_that_the_identity_will_be_weak(tmp_path, capsys, obama, astronaut):
    image = read_image(obama)
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), cv2.cvtColor(cv2.resize(image, (image.shape[1] // 6, image.shape[0] // 6),
                                                    interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR))
    for source, warned in ((str(small), True), (obama, False)):
        rc, _, err = _swap(capsys, "--method", "copy-target", "--source", source, "--target", astronaut,
                           "--out", str(tmp_path / "out.png"))
        assert rc == 0
        assert ("identity will be weak" in err and "upscaled ×3.6" in err) == warned, err
