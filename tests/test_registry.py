from __future__ import annotations

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
