"""FF++ and LFW data-set parsing (layout, pairs, splits, errors)."""
from __future__ import annotations

import json

import pytest

from fsbench import assets
from fsbench.data.check import DataRootError
from fsbench.data.ffpp import FFPPDataset
from fsbench.data.lfw import LFWDataset, PairsFileError, pairs_from_db, parse_pairs


def _ffpp_layout(root, originals=("000", "001", "002"), manipulated=("000_001", "001_000", "002_000")):
    videos = root / "original_sequences" / "youtube" / "c23" / "videos"
    videos.mkdir(parents=True)
    for v in originals:
        (videos / f"{v}.mp4").write_bytes(b"")
    fake = root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos"
    fake.mkdir(parents=True)
    for m in manipulated:
        (fake / f"{m}.mp4").write_bytes(b"")
    return root


def test_ffpp_pairs_from_manipulated_names(tmp_path):
    data = FFPPDataset(_ffpp_layout(tmp_path))
    assert data.pairs == [("000", "001"), ("001", "000"), ("002", "000")]
    assert data.video("001").name == "001.mp4"
    assert data.describe()["compression"] == "c23"


def test_ffpp_pairs_from_splits_give_both_directions(tmp_path):
    root = _ffpp_layout(tmp_path)
    (tmp_path / "test.json").write_text(json.dumps([["000", "002"]]))
    data = FFPPDataset(root, splits=tmp_path / "test.json")
    assert data.pairs == [("000", "002"), ("002", "000")]


def test_ffpp_errors_name_the_problem(tmp_path):
    with pytest.raises(DataRootError, match="original_sequences/youtube/c40/videos"):
        FFPPDataset(_ffpp_layout(tmp_path), compression="c40")
    with pytest.raises(ValueError, match="compression must be one of"):
        FFPPDataset(tmp_path, compression="c99")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        FFPPDataset(tmp_path, splits=bad)


def _pairs_txt(path, same, diff):
    lines = ["1 %d" % len(same)] + [" ".join(map(str, s)) for s in same] + [" ".join(map(str, d)) for d in diff]
    path.write_text("\n".join(lines) + "\n")


def test_lfw_pairs_file_parsed(tmp_path):
    _pairs_txt(tmp_path / "pairs.txt", [("Ann", 1, 2)], [("Ann", 1, "Bob", 3)])
    pairs = parse_pairs(tmp_path / "pairs.txt")
    assert [(p.same, p.first, p.second) for p in pairs] == [
        (True, "Ann/Ann_0001", "Ann/Ann_0002"), (False, "Ann/Ann_0001", "Bob/Bob_0003")]


def test_lfw_malformed_pairs_file_names_the_line(tmp_path):
    _pairs_txt(tmp_path / "pairs.txt", [("Ann", 1, "x")], [("Ann", 1, "Bob", 3)])
    with pytest.raises(PairsFileError, match=r"pairs.txt:2"):
        parse_pairs(tmp_path / "pairs.txt")
    (tmp_path / "pairs.txt").write_text("10 300\nAnn 1 2\n")
    with pytest.raises(PairsFileError, match="header says 10 folds"):
        parse_pairs(tmp_path / "pairs.txt")


def test_lfw_pairs_rebuilt_from_embedded_database(tmp_path):
    root = tmp_path / "lfw"
    root.mkdir()
    with pytest.raises(DataRootError, match=r"7701 of the 7701 images the view-2 pairs refer to are missing"):
        LFWDataset(root)  # an empty folder is not LFW
    for pair in pairs_from_db(assets.path("lfw-pairs-db")):  # LFW's layout, with empty files
        for key in (pair.first, pair.second):
            (root / f"{key}.jpg").parent.mkdir(exist_ok=True)
            (root / f"{key}.jpg").touch()
    data = LFWDataset(root)
    assert len(data.pairs) == 6000 and sum(p.same for p in data.pairs) == 3000
    assert {p.fold for p in data.pairs} == set(range(10))
    first = data.pairs[0]  # the first line of LFW's pairs.txt: "Abel_Pacheco 1 4"
    assert (first.same, first.first, first.second) == (True, "Abel_Pacheco/Abel_Pacheco_0001",
                                                        "Abel_Pacheco/Abel_Pacheco_0004")
    assert data.pairs_source.startswith("xbob.db.lfw")
