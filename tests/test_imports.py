"""No import circle between the plugin API, the runner, scoring and the metrics.

The graph counts every ``import`` in a module, the ones inside functions too: a circle closed by a lazy import
works only as long as nobody moves that import to the top, so it is a circle all the same.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import fsbench

PACKAGE = Path(fsbench.__file__).parent
LAYER = ("fsbench.api", "fsbench.runner", "fsbench.scoring", "fsbench.timing", "fsbench.faces.crops",
         "fsbench.metrics")  # fsbench.metrics covers the package and its modules


def _modules() -> dict[str, Path]:
    return {".".join(f.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): f
            for f in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """fsbench module -> the fsbench modules it imports anywhere in its body (a package's parents included)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        with_parents = {".".join(n.split(".")[:k]) for n in names for k in range(2, n.count(".") + 2)}
        graph[name] = {n for n in with_parents if n in modules and n != name and not name.startswith(n + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _in_layer(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in LAYER)


def test_the_graph_sees_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_circle_through_api_runner_scoring_or_metrics() -> None:
    graph = import_graph()
    assert {"fsbench.api", "fsbench.runner", "fsbench.scoring", "fsbench.metrics.speed"} <= set(graph)
    assert "fsbench.scoring" in graph["fsbench.metrics.speed"]  # the graph does see imports inside functions
    assert [c for c in cycles(graph) if any(_in_layer(m) for m in c)] == []


def test_each_module_imports_first_in_a_fresh_interpreter() -> None:
    """Whichever of them a program imports first, it loads; and the plugin API does not pull the runner in."""
    code = ("import importlib, sys\n"
            f"for name in {list(LAYER[:-1]) + ['fsbench.metrics.speed']!r}:\n"
            "    for m in [m for m in sys.modules if m.startswith('fsbench')]: del sys.modules[m]\n"
            "    importlib.import_module(name)\n"
            "    if name == 'fsbench.api':\n"
            "        assert 'fsbench.runner' not in sys.modules and 'fsbench.metrics.speed' not in sys.modules\n"
            "        assert 'fsbench.train' not in sys.modules  # the training toolkit is not the plugin contract\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
