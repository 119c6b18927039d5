"""`docs/tables.md` is generated from the data contract and must be current."""

from pipeline import schemas, tables_doc


def test_tables_page_is_current() -> None:
    current = tables_doc.PAGE.read_text()
    assert tables_doc.MARKER in current, "docs/tables.md lost its generated part"
    assert tables_doc.render_page(current) == current, (
        "docs/tables.md is stale: run `uv run python -m pipeline.tables_doc`"
    )


def test_every_table_and_column_is_on_the_page() -> None:
    page = tables_doc.PAGE.read_text()
    for table, columns in schemas.TABLES.items():
        assert f"### {table}" in page
        for column in columns:
            assert f"| `{column}` |" in page, f"{table}.{column}"
