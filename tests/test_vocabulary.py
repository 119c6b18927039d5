"""One word, one definition: the shared vocabulary lives in `pipeline/vocabulary.py` and nowhere else.

A copy of a list of statuses or line-item types drifts: one copy of the usage line-item types once lacked
`FlatRateSubscription`, so Provisioned Throughput commitments reconciled as adjustments in one place and as usage in
another. These tests read the source of every module under `pipeline/` and fail on a second definition.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline import vocabulary

PIPELINE = Path(vocabulary.__file__).resolve().parent
WORDS = {
    name: frozenset(getattr(vocabulary, name))
    for name in (
        "STATUSES",
        "ERROR_STATUSES",
        "USAGE_LINE_TYPES",
        "TOKEN_KINDS",
        "USAGE_KINDS",
        "GUARDRAIL_POLICIES",
        "SPEND_KINDS",
        "USAGE_SOURCES",
        "ALLOCATED_REASONS",
        "UNALLOCATED_REASONS",
    )
}
HELPERS = {"Frame", "as_lazy", "is_local", "_is_local"}


def _modules() -> list[Path]:
    return sorted(p for p in PIPELINE.rglob("*.py") if p != PIPELINE / "vocabulary.py")


def _string_collections(tree: ast.AST) -> list[tuple[int, frozenset[str]]]:
    """Every tuple, list or set literal made only of strings, with its line."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) >= 2:
            values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(values) == len(node.elts):
                found.append((node.lineno, frozenset(values)))
    return found


def _copies(words: frozenset[str]) -> list[str]:
    """Which vocabulary lists `words` restates: the same set, or one word more or less (a copy that drifted)."""
    out = []
    for name, vocab in WORDS.items():
        if len(vocab) < 3:
            continue
        if words == vocab or (len(words) >= 3 and len(words ^ vocab) == 1):
            out.append(name)
    return out


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PIPELINE)))
def test_no_module_restates_the_vocabulary(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    restated = [f"line {line}: {sorted(words)} restates {', '.join(_copies(words))}"
                for line, words in _string_collections(tree) if _copies(words)]  # fmt: skip
    assert not restated, f"{path.name}: import these from pipeline.vocabulary instead\n" + "\n".join(restated)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PIPELINE)))
def test_no_module_redefines_the_frame_and_path_helpers(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    defined = set()
    for node in tree.body:  # module level only
        if isinstance(node, ast.FunctionDef) and node.name in HELPERS:
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined |= {t.id for t in targets if isinstance(t, ast.Name) and t.id in HELPERS}
    assert not defined, f"{path.name} defines {sorted(defined)}: import them from pipeline.vocabulary"


def test_the_vocabulary_is_consistent() -> None:
    assert set(vocabulary.ERROR_STATUSES) < set(vocabulary.STATUSES)
    assert "guardrail_intervened" not in vocabulary.ERROR_STATUSES
    assert set(vocabulary.TOKEN_KINDS) < set(vocabulary.USAGE_KINDS)
    assert "FlatRateSubscription" in vocabulary.USAGE_LINE_TYPES
