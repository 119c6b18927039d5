"""No function over 100 lines in `pipeline/` (the seeded sample world aside) or `benchmarks/`.

A function that long does several things at once (deciding a status and writing its sentence; reading, checking
and building a row), and a reader cannot see where one ends. Split it along the line it already has. The sample
world (`pipeline/sample/`) plans whole synthetic days in long scripted functions and is left out.
Lines are counted as Python reports them: from `def` to the last line of the body, decorators excluded.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("pipeline", "benchmarks")
EXEMPT = (ROOT / "pipeline" / "sample",)
MAX_LINES = 100


def _modules() -> list[Path]:
    return sorted(
        p
        for folder in CHECKED
        for p in (ROOT / folder).rglob("*.py")
        if not any(p.is_relative_to(exempt) for exempt in EXEMPT)
    )


def long_functions(source: str, max_lines: int = MAX_LINES) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function or method longer than `max_lines`, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > max_lines:
                found.append((node.name, node.lineno, length))
    return found


def _over_limit() -> list[tuple[str, str, int, int]]:
    return [
        (path.relative_to(ROOT).as_posix(), name, line, length)
        for path in _modules()
        for name, line, length in long_functions(path.read_text())
    ]


def test_no_function_is_over_100_lines() -> None:
    too_long = [f"{path}:{line} {name} is {length} lines" for path, name, line, length in _over_limit()]
    assert not too_long, (
        f"functions over {MAX_LINES} lines (split each along the line it already has: decide, then explain; "
        "read, then build):\n" + "\n".join(too_long)
    )
