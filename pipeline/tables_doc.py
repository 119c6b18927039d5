"""`docs/tables.md`'s column reference, generated from the data contract (`pipeline.schemas`).

The contract lives in code (`schemas.TABLES`, with one description per column in `schemas.DESCRIPTIONS`); the page
people read is made from it, so the two cannot drift: `tests/test_tables_doc.py` fails when the page is stale, and
`uv run python -m pipeline.tables_doc` writes it again. The hand-written part above the marker is kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline import schemas
from pipeline.defs.contract import type_name

MARKER = "<!-- generated from pipeline/schemas.py by `uv run python -m pipeline.tables_doc`; do not edit below -->"
PAGE = Path(__file__).resolve().parents[1] / "docs" / "tables.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_reference() -> str:
    """Every contract table with its columns, types and descriptions, as Markdown."""
    descriptions = getattr(schemas, "DESCRIPTIONS", {})
    parts = [MARKER, "", "## Column reference", ""]
    parts.append(" · ".join(f"[{t}](#{t})" for t in schemas.TABLES))
    for table, columns in schemas.TABLES.items():
        described = descriptions.get(table, {})
        parts += ["", f"### {table}", "", "| column | type | what it holds |", "|---|---|---|"]
        parts += [f"| `{c}` | `{type_name(d)}` | {_cell(described.get(c, ''))} |" for c, d in columns.items()]
    return "\n".join(parts) + "\n"


def render_page(current: str) -> str:
    """`current` with everything from the marker on replaced by the generated reference."""
    head = current.split(MARKER, 1)[0].rstrip("\n")
    return f"{head}\n\n{render_reference()}"


def main() -> int:
    """Write the page; `--check` exits 1 when it is stale instead."""
    current = PAGE.read_text() if PAGE.exists() else "# Tables (the data contract)\n"
    fresh = render_page(current)
    if "--check" in sys.argv[1:]:
        if fresh != current:
            print(f"{PAGE.name} is stale: run `uv run python -m pipeline.tables_doc`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
