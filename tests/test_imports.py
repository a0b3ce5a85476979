"""No import circle anywhere in fsbench and the bundled methods, and the lower layers never import upward.

The graph counts every ``import`` in a module, the ones inside functions too: a circle closed by a lazy import
works only as long as nobody moves that import to the top, so it is a circle all the same.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import fsbench
import methods

PACKAGES = (Path(fsbench.__file__).parent, Path(methods.__file__).parent)
LAYER = ("fsbench.api", "fsbench.runner", "fsbench.scoring", "fsbench.timing", "fsbench.faces.crops",
         "fsbench.metrics")  # fsbench.metrics covers the package and its modules


def _modules() -> dict[str, Path]:
    return {".".join(f.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__"): f
            for package in PACKAGES for f in package.rglob("*.py")}


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


def test_the_graph_sees_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_circle() -> None:
    graph = import_graph()
    assert {"fsbench.api", "fsbench.runner", "fsbench.scoring", "fsbench.bench", "methods.faceshifter.train"} <= set(graph)
    assert "fsbench.scoring" in graph["fsbench.bench"]  # the graph does see imports inside functions
    assert cycles(graph) == []


# the building blocks: networks, faces, metric backends, data sets, protocols; they may register themselves
LOWER = ("fsbench.nets", "fsbench.faces", "fsbench.metrics", "fsbench.data", "fsbench.protocols")
# what is built from them: scoring, runs, results, commands, training, studies
UPPER = ("fsbench.scoring", "fsbench.runner", "fsbench.swapcache", "fsbench.results", "fsbench.leaderboard",
         "fsbench.samples", "fsbench.cli", "fsbench.bench", "fsbench.study", "fsbench.train", "fsbench.swap",
         "fsbench.export", "fsbench.separation", "fsbench.portraits_build", "fsbench.api")


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_lower_layers_never_import_upward() -> None:
    graph = import_graph()
    upward = {m: sorted(d for d in deps if _within(d, UPPER)) for m, deps in graph.items() if _within(m, LOWER)}
    assert {m: d for m, d in upward.items() if d} == {}


def test_each_module_imports_first_in_a_fresh_interpreter() -> None:
    """Whichever of them a program imports first, it loads; and the plugin API does not pull the runner in."""
    code = ("import importlib, sys\n"
            f"for name in {list(LAYER[:-1]) + ['fsbench.bench']!r}:\n"
            "    for m in [m for m in sys.modules if m.startswith('fsbench')]: del sys.modules[m]\n"
            "    importlib.import_module(name)\n"
            "    if name == 'fsbench.api':\n"
            "        assert 'fsbench.runner' not in sys.modules and 'fsbench.bench' not in sys.modules\n"
            "        assert 'fsbench.train' not in sys.modules  # the training toolkit is not the plugin contract\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
