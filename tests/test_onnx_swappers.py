"""The public ONNX swappers (methods/onnx_swappers) on small synthetic graphs with the public files' interfaces:
input and output names, per-sample shapes, float32, inswapper's fixed batch of 1 and its emap last initialiser.

The synthetic swap graphs add a term of the source embedding to the target (scaled by ``mix``), after undoing the
declared input normalisation where the declaration says the output is in [0, 1]; with ``mix=0`` a swap must give
back the target crop, which checks the normalisation both ways.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fsbench import assets, registry
from fsbench.cli import main
from methods.onnx_swappers import method as onnx_method
from methods.onnx_swappers.declarations import PUBLISHED_SHA256, SWAPPERS, Swapper

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(0)


def _save(path: Path, nodes: list, inputs: list, output: Any, initialisers: list[np.ndarray | tuple]) -> Path:
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), name) for name, v in initialisers]
    graph = helper.make_graph(nodes, path.stem, inputs, [output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _tensor(name: str, shape: list) -> Any:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def recogniser(path: Path, fc: np.ndarray | None = None) -> Path:
    """A stand-in for w600k_r50.onnx: N×3×112×112 → N×512 (16 px average pooling, then the linear map ``fc``,
    147×512, default random)."""
    nodes = [helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("MatMul", ["flat", "fc"], ["683"])]
    return _save(path, nodes, [_tensor("input.1", ["None", 3, 112, 112])], _tensor("683", ["None", 512]),
                 [("fc", RNG.normal(size=(147, 512)) if fc is None else fc)])


def colour_recogniser(path: Path) -> Path:
    """A recogniser whose output is known in closed form: the mean of each input channel in its first three
    dimensions, zeros in the rest. insightface feeds it ``(x − 127.5) / 127.5`` on 0..255 pixels, so a crop of one
    colour ``c`` (RGB in [0, 1]) gives ``2c − 1`` there."""
    fc = np.zeros((3, 49, 512))
    for channel in range(3):
        fc[channel, :, channel] = 1 / 49
    return recogniser(path, fc.reshape(147, 512))


def converter(path: Path, w: np.ndarray | None = None) -> Path:
    """A stand-in for FaceFusion's crossface_*.onnx: ``input`` N×512 → N×512, ``input @ w`` (default random)."""
    nodes = [helper.make_node("MatMul", ["input", "w"], ["output"])]
    return _save(path, nodes, [_tensor("input", ["batch", 512])], _tensor("output", ["batch", 512]),
                 [("w", RNG.normal(size=(512, 512)) / 20 if w is None else w)])


def swap_graph(path: Path, spec: Swapper, batch: int | str, mix: float, emap: np.ndarray | None = None) -> Path:
    """``output`` = target (un-normalised when the output is in [0, 1]) + mix · (source @ w) on every pixel."""
    size = spec.size
    mean = np.asarray(spec.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(spec.std, np.float32).reshape(1, 3, 1, 1)
    unit = spec.output == "unit"
    nodes = [helper.make_node("Mul", ["target", "std" if unit else "one"], ["scaled"]),
             helper.make_node("Add", ["scaled", "mean" if unit else "zero"], ["base"]),
             helper.make_node("MatMul", ["source", "w"], ["shift"]),
             helper.make_node("Reshape", ["shift", "shape"], ["shift4"]),
             helper.make_node("Add", ["base", "shift4"], ["output"])]
    inits = [("std", std), ("mean", mean), ("one", np.ones(1)), ("zero", np.zeros(1)),
             ("w", RNG.normal(size=(512, 3)) * mix), ("shape", np.array([-1, 3, 1, 1]))]
    if emap is not None:
        inits.append(("emap", emap))
    path = _save(path, nodes, [_tensor("target", [batch, 3, size, size]), _tensor("source", [batch, 512])],
                 _tensor("output", [batch, 3, size, size]), inits)
    model = onnx.load(str(path))  # Reshape wants int64 shapes
    shape = next(i for i in model.graph.initializer if i.name == "shape")
    shape.CopyFrom(numpy_helper.from_array(np.array([-1, 3, 1, 1], np.int64), "shape"))
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Every swapper's files as synthetic graphs, added to a reference index of this module's own."""
    folder = tmp_path_factory.mktemp("onnx")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assets, "_reference_index", lambda: folder / "reference.json")
        files = {"arcface-w600k-r50": recogniser(folder / "w600k_r50.onnx"),
                 "crossface-simswap": converter(folder / "crossface_simswap.onnx"),
                 "crossface-ghost": converter(folder / "crossface_ghost.onnx"),
                 "inswapper": swap_graph(folder / "inswapper_128.onnx", SWAPPERS["inswapper"], 1, 0.05,
                                         emap=RNG.normal(size=(512, 512))),
                 "simswap-256": swap_graph(folder / "simswap_256.onnx", SWAPPERS["simswap-256"], "N", 0.05)}
        for n in (1, 2, 3):
            files[f"ghost-{n}-256"] = swap_graph(folder / f"ghost_{n}_256.onnx", SWAPPERS[f"ghost-{n}-256"], "N", 0.05)
        for name, path in files.items():
            assets.add(name, path)
        for name, cls in (("inswapper", onnx_method.Inswapper), ("simswap-256", onnx_method.SimSwap256),
                          ("ghost-1-256", onnx_method.Ghost1)):
            if name not in registry.methods:  # an install from before the entry points (see test_entry_points)
                registry.methods.register(name, cls)
        yield folder


def _crops(count: int, size: int, seed: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((count, 3, size, size), np.float32))


def test_entry_points_list_every_swapper_as_needing_your_file(capsys):
    registered = registry.methods.names()
    if "inswapper" not in registered or registry.methods._entries["inswapper"].origin == "builtin":
        pytest.skip("fsbench is installed without this checkout's entry points (reinstall it)")
    assert main(["list", "methods"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    for name in ("inswapper", "simswap-256", "ghost-1-256"):
        assert "[needs your file]" in lines[name]
    assert "[needs your file]" not in lines["classic"]


def test_a_wrong_file_is_refused_in_one_line(synthetic, capsys, monkeypatch):
    monkeypatch.setattr(assets, "_reference_index", lambda: synthetic / "other.json")
    code = main(["assets", "add", "inswapper", str(synthetic / "simswap_256.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "simswap_256.onnx: not inswapper_128.onnx" in err and "last initialiser" in err
    code = main(["assets", "add", "crossface-ghost", str(synthetic / "w600k_r50.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "inputs ['input.1']" in err


COLOUR = np.array([0.2, 0.65, 0.9], np.float32)  # a source crop of one colour: 2c − 1 = (−0.6, 0.3, 0.8)
SHIFT = np.roll(np.eye(512), 1, axis=1)  # x @ SHIFT moves each entry one dimension on


@pytest.fixture
def known(synthetic, tmp_path, monkeypatch):
    """The synthetic files with the colour recogniser, an emap that shifts by one dimension and converters
    that triple their input, in an index of the test's own: every source embedding is known in closed form."""
    (tmp_path / "reference.json").write_text((synthetic / "reference.json").read_text())
    monkeypatch.setattr(assets, "_reference_index", lambda: tmp_path / "reference.json")
    assets.add("arcface-w600k-r50", colour_recogniser(tmp_path / "w600k_r50.onnx"))
    assets.add("inswapper", swap_graph(tmp_path / "inswapper_128.onnx", SWAPPERS["inswapper"], 1, 0.05, emap=SHIFT))
    for name in ("crossface-simswap", "crossface-ghost"):
        assets.add(name, converter(tmp_path / f"{name.replace('-', '_')}.onnx", 3 * np.eye(512)))


def _one_colour(count: int, size: int) -> torch.Tensor:
    return torch.from_numpy(COLOUR).view(1, 3, 1, 1).expand(count, 3, size, size).contiguous()


def test_inswapper_embedding_is_the_normalised_emap_product(known):
    """``unit(unit(raw) @ emap)``: the normalised colour, shifted one dimension on by the emap."""
    raw = 2 * COLOUR - 1
    expected = np.zeros(512, np.float32)
    expected[1:4] = raw / np.linalg.norm(raw)
    got = onnx_method.Inswapper().embed_identity(_one_colour(2, 128)).numpy()
    np.testing.assert_allclose(got, np.stack([expected] * 2), atol=1e-5)


@pytest.mark.parametrize("name, normalised", [("simswap-256", True), ("ghost-1-256", False)])
def test_converted_embeddings(known, name, normalised):
    """SimSwap's converted embedding is L2-normalised, GHOST's is the converter's output as it is: three times
    the normalised colour."""
    method = onnx_method.SimSwap256() if name == "simswap-256" else onnx_method.Ghost1()
    expected = np.zeros(512, np.float32)
    expected[:3] = 3 * (2 * COLOUR - 1)
    expected = expected / np.linalg.norm(expected) if normalised else expected
    got = method.embed_identity(_one_colour(2, 256)).numpy()
    np.testing.assert_allclose(got, np.stack([expected] * 2), atol=1e-5)


@pytest.mark.parametrize("name", ["inswapper", "simswap-256", "ghost-1-256"])
def test_normalisation_round_trip(synthetic, tmp_path, name, monkeypatch):
    """With no source term, a swap gives the target back: the input normalisation and its inverse agree."""
    spec = SWAPPERS[name]
    (tmp_path / "reference.json").write_text((synthetic / "reference.json").read_text())
    monkeypatch.setattr(assets, "_reference_index", lambda: tmp_path / "reference.json")
    assets.add(spec.swap_file, swap_graph(tmp_path / f"{spec.upstream}.onnx", spec, 1 if name == "inswapper" else "N",
                                          0.0, emap=RNG.normal(size=(512, 512)) if spec.embedding == "emap" else None))
    method = registry.create_method(name)
    target = _crops(2, spec.size, seed=2)
    torch.testing.assert_close(method.swap(_crops(2, spec.size), target), target, atol=1e-5, rtol=0)


def test_channel_order_round_trip(synthetic, monkeypatch):
    """A BGR declaration feeds the crop with its channels reversed and reads the output likewise: a graph that
    returns its input gives the target back."""
    spec = replace(SWAPPERS["simswap-256"], channels="BGR", mean=(0.1, 0.5, 0.9), std=(0.2, 0.3, 0.4),
                   output="normalised")
    monkeypatch.setattr(onnx_method.SimSwap256, "spec", spec)
    method = onnx_method.SimSwap256()
    fed = {}
    method.swapper = lambda feeds: fed.setdefault("target", feeds["target"])
    target = _crops(1, 256, seed=3)
    out = method.swap_embedded(torch.zeros(1, 512), target)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    np.testing.assert_allclose(fed["target"], ((target.flip(1) - mean) / std).numpy(), atol=1e-6)
    torch.testing.assert_close(out, target, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["inswapper", "simswap-256"])
def test_batching_equals_one_by_one(synthetic, name):
    """inswapper's file fixes the batch at 1 (run crop by crop); simswap's here is free (one call)."""
    method = registry.create_method(name)
    assert method.swapper.fixed_batch == (1 if name == "inswapper" else None)
    source, target = _crops(3, method.card.input_size), _crops(3, method.card.input_size, seed=4)
    together = method.swap(source, target)
    singles = torch.cat([method.swap(source[i:i + 1], target[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, singles, atol=1e-5, rtol=0)
    assert not torch.allclose(together[0], target[0], atol=1e-3)  # the source term reaches the swap


def test_each_source_is_embedded_once(synthetic, monkeypatch):
    method = registry.create_method("inswapper")
    calls = []
    embed = method.embed_identity
    monkeypatch.setattr(method, "embed_identity", lambda s: calls.append(len(s)) or embed(s))
    source = _crops(2, 128)
    method.swap(source[[0, 1, 0, 1]], _crops(4, 128, seed=5))
    method.swap(source[[1, 0]], _crops(2, 128, seed=6))
    assert calls == [2]


def test_card_records_every_file_and_flags_unpublished_hashes(synthetic, capsys, monkeypatch):
    monkeypatch.setattr(onnx_method, "_WARNED", set())
    method = registry.create_method("inswapper")
    card = method.card
    files = card.notes["user_files"]
    assert set(files) == {"inswapper", "arcface-w600k-r50"}
    for name, entry in files.items():
        assert entry["sha256"] == assets.sha256(name) and entry["published"] is None
    assert card.notes["unpublished_hashes"] == ["inswapper_128.onnx", "w600k_r50.onnx"]
    assert card.name == f"inswapper@{card.checkpoint_sha256[:12]}"
    assert card.checkpoint_sha256 == onnx_method.files_digest({n: e["sha256"] for n, e in files.items()})
    assert "is not a file whose sha256 is published" in capsys.readouterr().err
    assert "e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af" in PUBLISHED_SHA256["inswapper"]
    monkeypatch.setitem(PUBLISHED_SHA256, "inswapper", {assets.sha256("inswapper"): "a publisher's list"})
    card = registry.create_method("inswapper").card
    assert card.notes["user_files"]["inswapper"]["published"] == "a publisher's list"
    assert card.notes["unpublished_hashes"] == ["w600k_r50.onnx"]


def test_run_bench_and_swap_end_to_end(synthetic, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["run", "--method", "inswapper", "--protocol", "mini-stills", "--limit", "2", "--quiet",
                 "--out", str(out)]) == 0
    [path] = out.glob("inswapper@*__mini-stills-*.json")
    result = json.loads(path.read_text())
    files = result["method"]["notes"]["user_files"]
    assert files["inswapper"]["sha256"] == assets.sha256("inswapper")
    assert result["method"]["notes"]["unpublished_hashes"] and result["counts"]["pairs_scored"] == 2
    from fsbench.leaderboard import Board, _user_files

    lines = _user_files(Board("mini-stills", 1, {}, rows=[(path, result)]))
    assert any(assets.sha256("inswapper") in line and "a hash no publisher lists" in line for line in lines)
    assert main(["bench", "--method", "inswapper", "--runs", "1", "--warmup", "0", "--batch-sizes", "1", "3"]) == 0
    parameters = sum(int(np.prod(i.dims)) for i in onnx.load(str(synthetic / "inswapper_128.onnx")).graph.initializer)
    assert f"parameters        {parameters:,}" in capsys.readouterr().out
    photo = tmp_path / "swapped.png"
    source, target = assets.path("media/face_recognition/obama.jpg"), assets.path("media/skimage/astronaut.png")
    assert main(["swap", "--method", "inswapper", "--source", str(source), "--target", str(target),
                 "--out", str(photo), "--quiet"]) == 0
    assert photo.is_file() and "written" in capsys.readouterr().out


@pytest.mark.slow
def test_refresh_names_results_after_the_files(synthetic, tmp_path, monkeypatch):
    """`leaderboard refresh --methods inswapper` on mini-stills: the results, samples and bench files carry the
    loaded files' name, and the page lists the files with their sha256."""
    import fsbench.protocols
    from fsbench import leaderboard

    monkeypatch.setattr(fsbench.protocols, "EMBEDDED", ("mini-stills",))
    root = tmp_path / "leaderboards"
    (root / "results").mkdir(parents=True)
    assert leaderboard.refresh(root=root, runs=tmp_path / "runs", methods=["inswapper"], progress=False) == []
    name = registry.create_method("inswapper").card.name
    version = registry.protocols.get("mini-stills").version
    assert (root / "results" / f"{name}__mini-stills-v{version}__seed0.json").is_file()
    assert (root / "results" / "bench" / f"{name}.json").is_file()
    page = (root / "mini-stills.md").read_text()
    assert f"- {name}: inswapper_128.onnx sha256 `{assets.sha256('inswapper')}`" in page
