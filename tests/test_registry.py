from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
from pathlib import Path

import pytest

from fsbench import registry
from fsbench.registry import Registry, UnknownNameError


def test_lazy_target_alias_and_close_matches():
    reg: Registry = Registry("thing")
    reg.register("json-dumps", "json:dumps", aliases=("dumps",))
    import json

    assert reg.get("dumps") is json.dumps
    assert reg.names() == ["json-dumps"]
    with pytest.raises(UnknownNameError, match="Did you mean: json-dumps"):
        reg.get("json-dump")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("dumps", "json:loads")


def test_decorator_registration():
    reg: Registry = Registry("thing")

    @reg.register("f")
    def f():
        return 1

    assert reg.get("f") is f


def test_builtin_methods_come_from_entry_points():
    names = registry.methods.names()
    assert {"copy-target", "paste-source"} <= set(names)
    assert registry.methods._entries["copy-target"].origin.startswith("entry point")
    with pytest.raises(UnknownNameError, match="paste-source"):
        registry.methods.get("paste-sauce")


def test_protocols_and_datasets_listed():
    assert {"mini-stills", "mini-video", "ffpp", "lfw", "folder"} <= set(registry.protocols.names())
    assert {"mini", "ffpp", "lfw", "folder"} <= set(registry.datasets.names())


def _tweaked_copy(src, dst):
    """``src`` re-saved with its metadata and one weight changed: another checkpoint of the same method."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), framework="pt") as f:
        metadata = f.metadata()
    state = load_file(str(src))
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = state[key] + 1e-3
    save_file(state, str(dst), metadata=metadata)
    return dst


def _shipped(cls: type) -> Path:
    return Path(sys.modules[cls.__module__].__file__).parent / "weights" / cls.card.checkpoint


@pytest.mark.parametrize("name", ["faceshifter", "mobilefsgan"])
def test_a_weights_file_other_than_the_shipped_one_is_named_by_its_sha256(name, tmp_path):
    cls = registry.methods.get(name)
    shipped = _shipped(cls)
    same = registry.create_method(name, "cpu", Path(shutil.copy(shipped, tmp_path / "copy.safetensors")))
    assert same.card.name == name and same.card.checkpoint_sha256 == cls.card.checkpoint_sha256
    other = _tweaked_copy(shipped, tmp_path / "other.safetensors")
    sha = hashlib.sha256(other.read_bytes()).hexdigest()
    method = registry.create_method(name, "cpu", other)
    assert method.card.name == f"{name}@{sha[:12]}"
    assert (method.card.checkpoint, method.card.checkpoint_sha256) == (str(other.resolve()), sha)
    assert cls.card.name == name  # the class's card is untouched


@pytest.mark.parametrize("name", ["faceshifter", "mobilefsgan"])
def test_a_weights_file_is_hashed_once_and_its_metadata_read_once_for_the_network_and_once_for_the_card(
        name, tmp_path, monkeypatch):
    from safetensors import safe_open

    from fsbench import weights

    other = _tweaked_copy(_shipped(registry.methods.get(name)), tmp_path / "other.safetensors")
    hashed, opened = [], []
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: hashed.append(self) or read_bytes(self))
    monkeypatch.setattr(weights, "safe_open", lambda path, **kw: opened.append(path) or safe_open(path, **kw))
    registry.create_method(name, "cpu", other)
    assert hashed.count(other) == 1 and opened.count(str(other)) == 2


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["FSBENCH_TEST_MARKER"]),))


def test_a_pickled_weights_file_is_refused_without_running_it(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("FSBENCH_TEST_MARKER", str(marker))
    weights = tmp_path / "weights.pt"
    weights.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(ValueError, match="weights.pt: not a readable safetensors file"):
        registry.create_method("faceshifter", "cpu", weights)
    assert not marker.exists()
