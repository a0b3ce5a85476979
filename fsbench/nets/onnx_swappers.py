"""The interfaces of the public ONNX face swappers fsbench runs from your files, checked when a file is added.

Each graph's input names, per-sample shapes and element types are those its public integrations feed: insightface's
``model_zoo/inswapper.py`` and FaceFusion's face swapper (``facefusion/processors/modules/face_swapper/core.py``),
which feed float32 ``target`` crops and ``source`` embeddings by name and read the first output. The batch
dimension may be fixed (insightface's ``inswapper_128.onnx`` fixes it at 1) or free. The method cards in
``methods/onnx_swappers/`` cite the sources of these facts.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsbench.errors import UsageError

FLOAT = 1  # onnx.TensorProto.FLOAT


@dataclass(frozen=True)
class GraphInterface:
    """What a swap graph or an embedding converter takes and gives, the batch dimension left out."""

    label: str  # the file name the interface belongs to, for messages
    inputs: dict[str, tuple[int, ...]]
    output: tuple[int, ...]
    last_initialiser: tuple[int, ...] | None = None  # inswapper's emap: the source-embedding matrix

    def describe(self) -> str:
        shapes = ", ".join(f"{name} N×{'×'.join(map(str, shape))}" for name, shape in self.inputs.items())
        extra = (f"; last initialiser {'×'.join(map(str, self.last_initialiser))}" if self.last_initialiser
                 else "")
        return f"{self.label} takes float32 {shapes} and gives one N×{'×'.join(map(str, self.output))}{extra}"


def _swap_graph(label: str, size: int, emap: bool = False) -> GraphInterface:
    return GraphInterface(label, {"target": (3, size, size), "source": (512,)}, (3, size, size),
                          (512, 512) if emap else None)


INSWAPPER_128 = _swap_graph("inswapper_128.onnx", 128, emap=True)
SIMSWAP_256 = _swap_graph("simswap_256.onnx", 256)
GHOST_256 = _swap_graph("ghost_N_256.onnx", 256)
EMBEDDING_CONVERTER = GraphInterface("crossface_*.onnx", {"input": (512,)}, (512,))


def _shape(value_info: Any) -> list[int | str]:
    return [d.dim_value or d.dim_param or "?" for d in value_info.type.tensor_type.shape.dim]


def _problems(model: Any, interface: GraphInterface) -> list[str]:
    graph = model.graph
    initialisers = {i.name for i in graph.initializer}
    inputs = {i.name: i for i in graph.input if i.name not in initialisers}
    problems = []
    if set(inputs) != set(interface.inputs):
        problems.append(f"inputs {sorted(inputs)}")
    for name, shape in interface.inputs.items():
        if name in inputs and (_shape(inputs[name])[1:] != list(shape)
                               or inputs[name].type.tensor_type.elem_type != FLOAT):
            problems.append(f"input {name} {_shape(inputs[name])}")
    if len(graph.output) != 1:
        problems.append(f"{len(graph.output)} outputs")
    elif _shape(graph.output[0])[1:] not in (list(interface.output), []):  # some exports leave the output unshaped
        problems.append(f"output {_shape(graph.output[0])}")
    if interface.last_initialiser is not None:
        last = list(graph.initializer[-1].dims) if graph.initializer else None
        if last != list(interface.last_initialiser):
            problems.append(f"last initialiser {last}")
    return problems


def check_graph(path: str | Path, interface: GraphInterface) -> Any:
    """The parsed ONNX model at ``path``; ``ValueError`` naming the file, what it has and what ``interface`` wants
    when they differ. Parsing a protobuf runs no code from the file."""
    import onnx

    model = onnx.load(str(path))
    problems = _problems(model, interface)
    if problems:
        raise UsageError(f"{path}: {'; '.join(problems)}; {interface.describe()}")
    return model


def load_inswapper_128(path: str | Path) -> Any:
    return check_graph(path, INSWAPPER_128)


def load_simswap_256(path: str | Path) -> Any:
    return check_graph(path, SIMSWAP_256)


def load_ghost_256(path: str | Path) -> Any:
    return check_graph(path, GHOST_256)


def load_embedding_converter(path: str | Path) -> Any:
    return check_graph(path, EMBEDDING_CONVERTER)
