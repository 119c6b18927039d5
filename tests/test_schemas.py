"""The data contract's words: every column of every table has a one-line description, shown in the UI."""

from __future__ import annotations

from pipeline import schemas


def test_every_column_has_a_one_line_description() -> None:
    assert set(schemas.DESCRIPTIONS) == set(schemas.TABLES)
    for table, columns in schemas.TABLES.items():
        words = schemas.DESCRIPTIONS[table]
        assert list(words) == list(columns), table
        for column, text in words.items():
            assert text.strip(), f"{table}.{column} has no description (schemas._SHARED or _PER_TABLE)"
            assert "\n" not in text and len(text) <= 160, f"{table}.{column}: one line, please"


def test_table_specific_words_name_real_columns() -> None:
    for table, words in schemas._PER_TABLE.items():
        assert table in schemas.TABLES, table
        unknown = set(words) - set(schemas.TABLES[table])
        assert not unknown, (table, unknown)


def test_the_ui_column_schema_carries_the_descriptions() -> None:
    from pipeline.defs.contract import column_schema

    table_schema = column_schema("priced_invocations")
    assert table_schema is not None
    by_name = {c.name: c.description for c in table_schema.columns}
    assert by_name["total_cost_usd"] == schemas.DESCRIPTIONS["priced_invocations"]["total_cost_usd"]
    assert all(by_name.values())
