"""One word, one definition: the shared vocabulary lives in `pipeline/vocabulary.py` and nowhere else.

A copy of a list of statuses, routings or line-item types drifts: one copy of the usage line-item types once lacked
`FlatRateSubscription`, so Provisioned Throughput commitments reconciled as adjustments in one place and as usage in
another. These tests read the source of every module under `pipeline/` and fail on a second definition, and on a
status column tested against a word no status list has (a typo there filters nothing, silently).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline import vocabulary

PIPELINE = Path(vocabulary.__file__).resolve().parent
LISTS = (
    "STATUSES",
    "ERROR_STATUSES",
    "USAGE_LINE_TYPES",
    "TOKEN_KINDS",
    "SERVICE_TIERS",
    "BILLED_TIERS",
    "USAGE_KINDS",
    "PRICE_ORIGINS",
    "ROUTINGS",
    "PRICING_ROUTINGS",
    "RECONCILIATION_STATUSES",
    "BUDGET_STATUSES",
    "BUDGET_ALERT_STATUSES",
    "COMPLETENESS_STATUSES",
    "GUARDRAIL_POLICIES",
    "SPEND_KINDS",
    "USAGE_SOURCES",
    "ALLOCATED_REASONS",
    "UNALLOCATED_REASONS",
    "BATCH_OWNER_REASONS",
    "BATCH_JOB_STATUSES",
    "BATCH_RECONCILIATION_STATUSES",
)
WORDS = {name: frozenset(getattr(vocabulary, name)) for name in LISTS}
STATUS_FAMILIES = {
    "invocations": vocabulary.STATUSES,
    "cost_reconciliation": vocabulary.RECONCILIATION_STATUSES,
    "budget_status": vocabulary.BUDGET_STATUSES,
    "log_completeness": vocabulary.COMPLETENESS_STATUSES,
    "batch_jobs": vocabulary.BATCH_JOB_STATUSES,
}
STATUS_WORDS = frozenset(word for family in STATUS_FAMILIES.values() for word in family)
STATUS_KEYS = {"status", "expected_status"}
HELPERS = {"Frame", "as_lazy", "is_local", "_is_local"}
ALLOWED = {("config.py", frozenset({"SERVICE_TIERS"}))}
"""Restatements kept on purpose: `pricing.default_tier` is a pydantic `Literal` of the service tiers but
latency-optimized (asked per call), and the configuration module imports no polars, which the vocabulary does."""


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
                for line, words in _string_collections(tree)
                if _copies(words) and (path.name, frozenset(_copies(words))) not in ALLOWED]  # fmt: skip
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


def _is_status(node: ast.AST) -> bool:
    """`pl.col("status")`, `status`, `x.status` or `row["status"]`: an expression holding a status word."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "col":
        return len(node.args) == 1 and isinstance(node.args[0], ast.Constant) and node.args[0].value in STATUS_KEYS
    if isinstance(node, ast.Name | ast.Attribute):
        return (node.id if isinstance(node, ast.Name) else node.attr) in STATUS_KEYS
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value in STATUS_KEYS
    return False


def _strings(nodes: list[ast.expr]) -> list[ast.Constant]:
    out = []
    for node in nodes:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node)
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            out.extend(_strings(node.elts))
    return out


def _branches(node: ast.expr) -> list[ast.expr]:
    """The values a returned expression can take: both sides of every `a if c else b`, else itself."""
    if isinstance(node, ast.IfExp):
        return _branches(node.body) + _branches(node.orelse)
    return [node]


def _status_words(tree: ast.AST, local_status: set[str]) -> list[tuple[int, str]]:
    """Every string a status is compared with (`==`, `!=`, `in`, `.is_in`), set to (`{"status": ...}`,
    `pl.lit(...)` in a `when/then` chain aliased `status`) or returned by a `_classify` as its status, with its
    line. `local_status` are names bound to something other than a status column (such a name is skipped)."""
    found: list[ast.Constant] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_status(s) and not (isinstance(s, ast.Name) and s.id in local_status) for s in sides):
                found += _strings(sides)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "is_in" and _is_status(node.func.value):
                found += _strings(node.args)
            elif node.func.attr == "alias" and {c.value for c in _strings(node.args[:1])} & STATUS_KEYS:
                for inner in ast.walk(node.func.value):
                    if (
                        isinstance(inner, ast.Call)
                        and isinstance(inner.func, ast.Attribute)
                        and inner.func.attr == "lit"
                    ):
                        found += _strings(inner.args)
        elif isinstance(node, ast.FunctionDef) and "classify" in node.name:  # returns (status, explanation)
            for ret in ast.walk(node):  # or the status alone, a word or `"a" if ... else "b"`
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple) and ret.value.elts:
                    found += _strings(ret.value.elts[:1])
                elif isinstance(ret, ast.Return) and ret.value is not None:
                    found += _strings(_branches(ret.value))
        elif isinstance(node, ast.Dict):
            found += [v for k, v in zip(node.keys, node.values, strict=True)
                      if isinstance(k, ast.Constant) and k.value in STATUS_KEYS and v in _strings([v])]  # fmt: skip
    return [(c.lineno, c.value) for c in found]


def _rebound_status_names(tree: ast.AST) -> set[str]:
    """Names such as `status = pl.col("x_AllocationStatus")`: a status of something the vocabulary does not own."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and not _is_status(node.value):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name) and t.id in STATUS_KEYS}
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PIPELINE)))
def test_status_words_are_vocabulary_words(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    unknown = [f"line {line}: {word!r}" for line, word in _status_words(tree, _rebound_status_names(tree))
               if word not in STATUS_WORDS]  # fmt: skip
    assert not unknown, (
        f"{path.name} tests or sets a status to a word no status list in pipeline.vocabulary has (a typo, or a new "
        "status: add it to its list there)\n" + "\n".join(unknown)
    )


def test_the_status_check_sees_bare_words() -> None:
    """The check above reads every way the code compares or sets a status, so a typo cannot hide in one of them."""
    source = """
status.filter(pl.col("status") == "over_budet")
recon.filter(pl.col("status").is_in(["matched", "idle_capacty"]))
if status == "metrics_misisng": pass
row = {"expected_status": "under_loged"}
def _classify(r):
    return "price_mismach", "why"
def _classify_status(r):
    return "unmaped_billing" if r else "mached"
pl.when(x).then(pl.lit("no_dta")).otherwise(pl.lit("ok")).alias("status")
"""
    words = [w for _, w in _status_words(ast.parse(source), set())]
    assert {w for w in words if w not in STATUS_WORDS} == {
        "over_budet",
        "idle_capacty",
        "metrics_misisng",
        "under_loged",
        "no_dta",
        "price_mismach",
        "unmaped_billing",
        "mached",
    }


def test_a_copy_of_a_routing_or_status_list_is_found() -> None:
    copies = [
        ("in_region", "geo", "global"),
        ("in_region", "geo", "global", "application_profile"),
        ("complete", "logs_missing", "logging_disabled", "metrics_missing", "delivery_late"),
        ("no_data", "no_budget", "over_budget", "warning", "forecast_over", "ok", "exhausted"),
        tuple(vocabulary.RECONCILIATION_STATUSES),
    ]
    for words in copies:
        assert _copies(frozenset(words)), words


def test_the_vocabulary_is_consistent() -> None:
    assert set(vocabulary.ERROR_STATUSES) < set(vocabulary.STATUSES)
    assert "guardrail_intervened" not in vocabulary.ERROR_STATUSES
    assert set(vocabulary.TOKEN_KINDS) < set(vocabulary.USAGE_KINDS)
    assert "FlatRateSubscription" in vocabulary.USAGE_LINE_TYPES
    assert "bill" in vocabulary.PRICE_ORIGINS  # a call priced from the bill's list rate says so
    assert set(vocabulary.PRICING_ROUTINGS) < set(vocabulary.ROUTINGS)
    assert set(vocabulary.BUDGET_ALERT_STATUSES) < set(vocabulary.BUDGET_STATUSES)
    assert "forecast_over" not in vocabulary.BUDGET_ALERT_STATUSES  # it has its own check and alert
    for name in LISTS:
        words = getattr(vocabulary, name)
        assert isinstance(words, tuple) and len(set(words)) == len(words), f"{name} repeats a word"
