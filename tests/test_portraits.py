"""The portraits data set and protocol: manifest against the files, identity-disjoint splits (by file and by face),
placeholder removal, pair determinism, and the small-gallery rule."""
from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest

from fsbench.data import portraits
from fsbench.portraits_build import (SAME_PERSON_DLIB, SAME_PERSON_SFACE, SAME_PHOTO_DLIB, near_duplicates)
from fsbench.metrics.definitions import small_gallery_reason
from fsbench.protocols.stills import Portraits, derangement


@pytest.fixture(scope="module")
def manifest():
    return portraits.load_manifest()


def test_split_sizes_and_test_faces(manifest):
    test = manifest.items("test")
    assert len(manifest.identities("test")) == len(test) >= 300
    assert all(p.source == "radar" and p.face_px >= portraits.TEST_MIN_PX for p in test)
    assert len(manifest.identities("validation")) >= 32
    assert len(manifest.identities("train")) >= 500
    assert {p.source for p in manifest.items("train")} == {"radar", "nba"}


def test_splits_are_identity_and_file_disjoint(manifest):
    split_of: dict[str, set[str]] = {}
    for p in manifest.all_items:
        split_of.setdefault(p.identity, set()).add(p.split)
    assert all(len(s) == 1 for s in split_of.values())
    assert len({p.sha256 for p in manifest.all_items}) == len(manifest.all_items)


def test_manifest_matches_the_files(manifest):
    """Every kept and dropped file is what the manifest says, and every source file is accounted for."""
    for source, asset in portraits.SOURCES.items():
        from fsbench import assets

        folder = assets.path(asset)
        listed = {p.file: p.sha256 for p in manifest.all_items if p.source == source}
        listed_dropped = {d["file"]: d["sha256"] for d in manifest.dropped if d["source"] == source}
        assert not listed.keys() & listed_dropped.keys()
        on_disk = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.iterdir()}
        assert on_disk == {**listed, **listed_dropped}
        counts = manifest.counts[source]
        assert counts["files"] == len(on_disk) and counts["kept"] == len(listed)
        assert sum(counts["dropped"].values()) == len(listed_dropped)


def test_placeholder_is_dropped_everywhere(manifest):
    placeholders = [d for d in manifest.dropped if d["reason"] == "placeholder"]
    assert len(placeholders) == 77 and len({d["sha256"] for d in placeholders}) == 1
    assert placeholders[0]["sha256"] not in {p.sha256 for p in manifest.all_items}
    first_copies = {p.sha256 for p in manifest.all_items} | {d["sha256"] for d in manifest.dropped
                                                          if d["reason"] != "duplicate-file"}
    assert all(d["sha256"] in first_copies for d in manifest.dropped if d["reason"] == "duplicate-file")


@pytest.mark.slow
def test_no_person_in_two_splits_by_face(manifest):
    """Recomputes both recognisers' embeddings of every kept portrait: no pair across splits is one person."""
    from fsbench import registry
    from fsbench.portraits_build import eval_crops
    from fsbench.faces import io
    from fsbench.scoring import backend_features

    items = manifest.all_items
    crops, _ = eval_crops([(p.id, io.read_image(p.path())) for p in items])
    assert len(crops) == len(items)
    feats = {name: backend_features(registry.metrics.get(name)(), [crops[p.id] for p in items], "ffhq-256")
             for name in ("dlib", "sface")}
    same_photo, same_person = near_duplicates(feats["dlib"], feats["sface"])
    assert not same_photo
    assert [(items[i].id, items[j].id) for i, j in same_person if items[i].split != items[j].split] == []


def _near(v: np.ndarray, distance: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at the given L2 distance from unit vector ``v``."""
    u = rng.normal(size=v.shape)
    u -= (u @ v) * v
    u /= np.linalg.norm(u)
    cos = 1 - distance ** 2 / 2
    return cos * v + np.sqrt(1 - cos ** 2) * u


def test_near_duplicates_rule():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 64))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    dlib, sface = list(base), list(base)
    dlib.append(_near(base[0], 0.05, rng)), sface.append(_near(base[0], 0.05, rng))  # 4: row 0's photograph
    dlib.append(_near(base[1], 0.3, rng)), sface.append(_near(base[1], 0.7, rng))  # 5: row 1 again (cos 0.755)
    dlib.append(_near(base[2], 0.3, rng)), sface.append(_near(base[2], 1.0, rng))  # 6: only dlib says row 2
    same_photo, same_person = near_duplicates(np.array(dlib, np.float32), np.array(sface, np.float32))
    assert same_photo == {4: 0}
    assert same_person == [(1, 5)]
    assert SAME_PHOTO_DLIB < 0.3 < SAME_PERSON_DLIB and 1 - 0.7 ** 2 / 2 > SAME_PERSON_SFACE > 1 - 1.0 / 2


def test_manifest_errors_name_the_file(tmp_path, manifest):
    raw = json.loads(manifest.path.read_text())
    test_item = next(i for i in raw["items"] if i["split"] == "test")
    train_item = next(i for i in raw["items"] if i["split"] == "train")
    cases = [
        (lambda d: d["items"].append({**train_item, "id": "x", "sha256": "f" * 64, "split": "test"}), "several splits"),
        (lambda d: test_item.update(face_px=100), "under 128"),
        (lambda d: d["items"].append(dict(d["items"][0])), "duplicate"),
        (lambda d: d["dropped"].append({"reason": "ugly"}), "reason must be"),
        (lambda d: d.update(version=99), "version"),
    ]
    for edit, message in cases:
        data = json.loads(json.dumps(raw))
        test_item = next(i for i in data["items"] if i["split"] == "test")
        edit(data)
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(data))
        with pytest.raises(portraits.ManifestError, match=message) as err:
            portraits.load_manifest(path)
        assert str(path) in str(err.value)


def test_pairs_are_a_fixed_derangement(manifest):
    a, b = Portraits().build(None, seed=0), Portraits().build(None, seed=7)
    assert [(p.source.id, p.target.id) for p in a.pairs] == [(p.source.id, p.target.id) for p in b.pairs]
    assert len(a.pairs) == len(manifest.items("test"))
    assert all(p.source.identity != p.target.identity for p in a.pairs)
    assert Counter(p.source.id for p in a.pairs) == Counter(p.target.id for p in a.pairs)  # each once as source
    assert len({g.identity for g in a.gallery}) >= 300


def test_derangement_has_no_fixed_point():
    for n in (2, 3, 10, 321):
        order = derangement(n, seed=n)
        assert sorted(order) == list(range(n)) and all(order[i] != i for i in range(n))
    assert derangement(50, 1) == derangement(50, 1) != derangement(50, 2)


def test_small_gallery_rule():
    assert small_gallery_reason("id_top5_identity", 3).startswith("gallery of 3 identities")
    assert small_gallery_reason("id_top5_frame", 9) is not None
    assert small_gallery_reason("id_top5_frame", 10) is None
    assert small_gallery_reason("id_top1_frame", 2) is None
    assert small_gallery_reason("id_top1_frame", 1) is not None
    assert small_gallery_reason("id_cosine", 1) is None
