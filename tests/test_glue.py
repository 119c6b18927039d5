"""The Glue Data Catalog registration against moto's Glue over HTTP: tables, columns, partition projection read
back; a second run changes nothing; a column added to the contract reaches the table; the CLI verb and the
optional asset; a local warehouse is refused in one line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import boto3
import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline import schemas
from pipeline.cli import app
from pipeline.exports.glue import CatalogError, hive_type, register_tables
from tests.helpers import run_day, write_config

START = dt.date(2026, 1, 1)


def _glue(endpoint: str):
    return boto3.client("glue", endpoint_url=endpoint, region_name="us-east-1")


def test_hive_types_of_the_contract() -> None:
    assert hive_type(pl.String) == "string"
    assert hive_type(pl.Int64) == "bigint"
    assert hive_type(pl.Float64) == "double"
    assert hive_type(pl.Boolean) == "boolean"
    assert hive_type(pl.Date) == "date"
    assert hive_type(schemas.UTC_US) == "timestamp"
    assert hive_type(schemas.STR_MAP) == "map<string,string>"
    assert hive_type(pl.List(pl.String)) == "array<string>"
    assert hive_type(pl.Struct({"user": pl.String, "cost": pl.Float64})) == "struct<user:string,cost:double>"
    for table, schema in schemas.TABLES.items():  # every column of every table has a Glue type
        for name, dtype in schema.items():
            assert hive_type(dtype), (table, name)


def test_register_round_trip_on_moto(aws: str) -> None:
    glue = _glue(aws)
    first = register_tables("ledger_rt", "s3://lake/bedrock/", START)
    assert first.database_created and sorted(first.created) == sorted(schemas.TABLES)
    listed = {t["Name"] for t in glue.get_tables(DatabaseName="ledger_rt")["TableList"]}
    assert listed == set(schemas.TABLES)

    table = glue.get_table(DatabaseName="ledger_rt", Name="invocations")["Table"]
    sd = table["StorageDescriptor"]
    assert sd["Location"] == "s3://lake/bedrock/invocations/"
    cols = {c["Name"]: c["Type"] for c in sd["Columns"]}
    assert list(cols) == [c for c in schemas.INVOCATIONS if c != "date"]  # the partition key is not a column
    assert cols["request_metadata"] == "map<string,string>"
    assert cols["timestamp"] == "timestamp" and cols["input_tokens"] == "bigint"
    assert table["PartitionKeys"] == [{"Name": "date", "Type": "string"}]
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    params = table["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.date.type"] == "date"
    assert params["projection.date.format"] == "yyyy-MM-dd"
    assert params["projection.date.range"] == "2026-01-01,NOW"
    assert params["storage.location.template"] == "s3://lake/bedrock/invocations/date=${date}"
    assert table["TableType"] == "EXTERNAL_TABLE"
    focus = glue.get_table(DatabaseName="ledger_rt", Name="focus_chargeback")["Table"]
    assert {c["Name"]: c["Type"] for c in focus["StorageDescriptor"]["Columns"]}["Tags"] == "map<string,string>"

    # Someone adds their own parameter; a second run changes nothing and keeps it.
    table_input = {k: table[k] for k in ("Name", "StorageDescriptor", "PartitionKeys", "TableType", "Parameters")}
    table_input["Parameters"] = {**params, "owner_team": "finops"}
    glue.update_table(DatabaseName="ledger_rt", TableInput=table_input)
    second = register_tables("ledger_rt", "s3://lake/bedrock", START)
    assert not second.database_created and not second.created and not second.updated
    assert sorted(second.unchanged) == sorted(schemas.TABLES)
    assert len(glue.get_tables(DatabaseName="ledger_rt")["TableList"]) == len(schemas.TABLES)

    # A column added to the contract is added to the table (update in place, no duplicate).
    grown = {**schemas.TABLES, "invocations": {**schemas.INVOCATIONS, "new_metric": pl.Float64}}
    third = register_tables("ledger_rt", "s3://lake/bedrock", START, tables=grown)
    assert third.updated == ["invocations"]
    after = glue.get_table(DatabaseName="ledger_rt", Name="invocations")["Table"]
    assert after["StorageDescriptor"]["Columns"][-1] == {"Name": "new_metric", "Type": "double"}
    assert after["Parameters"]["owner_team"] == "finops"
    assert after["Parameters"]["projection.enabled"] == "true"


def test_local_warehouse_is_refused_in_one_line() -> None:
    with pytest.raises(CatalogError) as err:
        register_tables("x", "./warehouse", START, client=object())
    assert "\n" not in str(err.value) and "--location" in str(err.value)


@pytest.mark.slow
def test_cli_catalog_registers_and_says_so(aws: str, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, warehouse="s3://lake/wh")
    runner = CliRunner()
    result = runner.invoke(app, ["catalog", "--database", "ledger_cli", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert f"{len(schemas.TABLES)} created" in result.output
    again = runner.invoke(app, ["catalog", "--database", "ledger_cli", "--config", str(cfg)])
    assert f"0 created, 0 updated, {len(schemas.TABLES)} unchanged" in again.output
    table = _glue(aws).get_table(DatabaseName="ledger_cli", Name="chargeback")["Table"]
    assert table["StorageDescriptor"]["Location"] == "s3://lake/wh/chargeback/"

    (tmp_path / "local").mkdir()
    local = write_config(tmp_path / "local")
    refused = runner.invoke(app, ["catalog", "--database", "ledger_cli", "--config", str(local)])
    assert refused.exit_code == 2
    assert len(refused.output.strip().splitlines()) == 1 and "s3://" in refused.output
    moved = runner.invoke(
        app, ["catalog", "--database", "ledger_cli2", "--config", str(local), "--location", "s3://lake/copy"]
    )
    assert moved.exit_code == 0, moved.output


def test_glue_catalog_asset_when_configured(aws: str, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, glue={"database": "ledger_asset", "location": "s3://lake/assetwh"})
    result = run_day(cfg, "2026-11-01", selection=["glue_catalog"])
    assert result.success
    mats = result.asset_materializations_for_node("glue_catalog")
    assert mats[0].metadata["tables_created"].value == len(schemas.TABLES)
    names = {t["Name"] for t in _glue(aws).get_tables(DatabaseName="ledger_asset")["TableList"]}
    assert names == set(schemas.TABLES)
