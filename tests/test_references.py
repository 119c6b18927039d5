"""Every reference a clone can follow: format notes inside the repository, links that resolve, no outside names.

A comment that says "see spec §4.2" or "issue #10" is a dead end for someone who only has the repository. The
facts the code relies on live in `docs/formats/` with their public sources, and the code points there as
`(docs/formats/<file>.md §N)`. This test keeps it that way: it fails on names of documents outside the
repository, on a section number the cited format note does not have, and on a relative Markdown link (or an
anchor into a Markdown file) that does not resolve. It reads text files only and runs in well under a second.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ROOT / "docs" / "formats"
SCANNED = ("pipeline", "tests", "docs", "deploy", "README.md", "CONTRIBUTING.md")
TEXT_SUFFIXES = {".py", ".md", ".csv", ".toml", ".yaml", ".yml", ".json", ".txt", ".sql", ".cfg", ".ini", ""}
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}

# Names of documents that live outside the repository, and tracker numbers that mean nothing in a clone.
# Built from pieces so this file does not match itself.
OUTSIDE = re.compile(
    "|".join(
        (
            r"spec" + r"\s*§",  # "spec §4.2": an outside note's section
            r"specs" + r"/",  # "specs/...md": the outside notes' folder
            r"\.\./" + r"shared",  # a sibling folder of the checkout
            r"issue" + r"\s*#\d+",  # a tracker number
            r"(?:cost-and-usage-reports|bedrock-invocation-logs|bedrock-pricing)" + r"\.md",  # the notes themselves
        )
    )
)  # matched against lower-cased text: faster than re.IGNORECASE
FORMAT_REF = re.compile(r"docs/formats/([\w.-]+\.md)")
SECTION = re.compile(r"§\s*(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)
MD_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


# Files whose references are rewritten elsewhere right now; each entry says why and goes once that lands.
PENDING: set[str] = set()


def _files() -> list[Path]:
    """Text files of the scanned parts of the repository, this test excluded (it names the patterns)."""
    out: list[Path] = []
    for part in SCANNED:
        path = ROOT / part
        candidates = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        for f in candidates:
            if not f.is_file() or SKIPPED_DIRS.intersection(f.relative_to(ROOT).parts):
                continue
            if f.relative_to(ROOT).as_posix() in PENDING or f.resolve() == Path(__file__).resolve():
                continue
            if f.suffix.lower() in TEXT_SUFFIXES:
                out.append(f)
    return out


FILES = _files()


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


@cache
def _sections(note: str) -> set[str]:
    """Section numbers ("4", "4.10") a format note has as headings."""
    path = FORMATS / note
    return set(HEADING.findall(_text(path))) if path.is_file() else set()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())  # underscores stay, as in GitHub's anchors
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    body = FENCE.sub("", _text(path))
    return {_slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", body, re.MULTILINE)}


def _where(path: Path, text: str, pos: int) -> str:
    return f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, pos) + 1}"


def test_the_format_notes_exist() -> None:
    assert (FORMATS / "README.md").is_file()
    for note in ("billing-exports.md", "invocation-logs.md", "pricing-rules.md"):
        assert _sections(note), f"docs/formats/{note} has no numbered headings"


def test_no_reference_to_documents_outside_the_repository() -> None:
    found = []
    for path in FILES:
        text = _text(path)
        for m in OUTSIDE.finditer(text.lower()):
            before = text[m.start() - 1] if m.start() else " "
            if not (before.isalnum() or before in "_/-"):  # a word of its own, not part of a public repo's path
                found.append(f"{_where(path, text, m.start())}: {m.group(0)!r}")
    assert not found, (
        "references a clone cannot follow (put the fact in docs/formats/ with its public source and cite "
        "`docs/formats/<file>.md §N`; say the reason instead of a tracker number):\n" + "\n".join(found)
    )


def test_every_cited_section_exists() -> None:
    """`docs/formats/x.md §4.10` needs a heading "4.10" in x.md. A bare `§N` refers to the format note named last
    before it in the same file (a module cites the note once, then its sections); with none named, it dangles."""
    found = []
    for path in FILES:
        text = _text(path)
        own = path.name if path.parent == FORMATS else None
        marks = [(m.start(), m.group(1)) for m in FORMAT_REF.finditer(text)]
        for m in SECTION.finditer(text):
            before = [note for pos, note in marks if pos < m.start()]
            note = before[-1] if before else own
            if note is None:
                found.append(f"{_where(path, text, m.start())}: §{m.group(1)} names no docs/formats/ note")
            elif m.group(1) not in _sections(note):
                found.append(f"{_where(path, text, m.start())}: docs/formats/{note} has no section {m.group(1)}")
        for pos, note in marks:
            if not (FORMATS / note).is_file():
                found.append(f"{_where(path, text, pos)}: docs/formats/{note} does not exist")
    assert not found, "dangling format references:\n" + "\n".join(found)


@pytest.mark.parametrize("path", [f for f in FILES if f.suffix == ".md"], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_markdown_links_resolve(path: Path) -> None:
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), _text(path))
    text = re.sub(r"`[^`\n]*`", "", text)  # links shown as code are examples, not links
    broken = []
    for m in MD_LINK.finditer(text):
        target = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{_where(path, text, m.start())}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor.lower() not in _anchors(dest):
            broken.append(f"{_where(path, text, m.start())}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)
