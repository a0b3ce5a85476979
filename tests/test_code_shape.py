"""No function in fsbench is over ``MAX_LINES`` lines, counted from its ``def`` line to its last line.

Nested functions and methods count on their own as well as inside the function that holds them.
"""
from __future__ import annotations

import ast
from pathlib import Path

import fsbench

MAX_LINES = 60
ROOT = Path(fsbench.__file__).parent
def function_lengths(source: str) -> dict[str, int]:
    """Qualified name (``Class.method``, ``outer.inner``) -> lines from ``def`` to the function's last line."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lengths[name] = child.end_lineno - child.lineno + 1
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return lengths


def _all_lengths() -> dict[str, int]:
    return {f"{path.relative_to(ROOT.parent).as_posix()}:{name}": n
            for path in sorted(ROOT.rglob("*.py")) for name, n in function_lengths(path.read_text()).items()}


def test_the_count_sees_nested_and_long_functions() -> None:
    body = "".join(f"    x{k} = {k}\n" for k in range(61))
    source = f"class A:\n    def short(self):\n        def inner():\n            pass\n\n\ndef long():\n{body}"
    assert function_lengths(source) == {"A.short": 3, "A.short.inner": 2, "long": 62}


def test_no_function_over_the_limit() -> None:
    lengths = _all_lengths()
    assert "fsbench/runner.py:run" in lengths  # the walk does reach the package's modules
    over = sorted(f"{name} ({n} lines)" for name, n in lengths.items() if n > MAX_LINES)
    assert over == [], f"functions over {MAX_LINES} lines; split them: {', '.join(over)}"
