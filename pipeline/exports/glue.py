"""Register the warehouse in the AWS Glue Data Catalog, so Athena, Trino, Spark and Redshift query it in place.

Every table of the data contract (`schemas.TABLES`, so tables added later are included) becomes an external
Parquet table at `<warehouse>/<table>/`, with its columns and types mapped from the polars schema and **partition
projection** on `date`: Athena computes the partitions from the table properties (`projection.date.*` and
`storage.location.template`), so there is no crawler, no `MSCK REPAIR TABLE`, and a new day is visible as soon
as its file is written. The partition key `date` comes from the path (`date=YYYY-MM-DD`); the files also carry a
`date` column, which is left out of the column list because Athena rejects a partition key that is also a column.

Registration is idempotent: a table that does not exist is created, one that differs from the contract is updated
in place (`update_table`, so a column added to the contract is added), one that matches is left alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pipeline import aws, schemas

PARTITION_KEY = "date"
INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
MANAGED_BY = "bedrock-ledger"

_SIMPLE_TYPES: dict[Any, str] = {
    pl.String: "string",
    pl.Int8: "tinyint",
    pl.Int16: "smallint",
    pl.Int32: "int",
    pl.Int64: "bigint",
    pl.UInt8: "smallint",
    pl.UInt16: "int",
    pl.UInt32: "bigint",
    pl.UInt64: "bigint",
    pl.Float32: "float",
    pl.Float64: "double",
    pl.Boolean: "boolean",
    pl.Date: "date",
    pl.Binary: "binary",
}


class CatalogError(ValueError):
    """The warehouse cannot be registered as asked (a local warehouse, a type Glue has no name for)."""


@dataclass
class RegistrationResult:
    """What one registration run did, table by table."""

    database: str
    location: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    database_created: bool = False

    @property
    def tables(self) -> list[str]:
        return sorted([*self.created, *self.updated, *self.unchanged])


def hive_type(dtype: schemas.DType) -> str:
    """The Hive/Glue type name of a polars dtype as our Parquet files store it (maps as `map<string,string>`)."""
    if dtype == schemas.STR_MAP:
        return "map<string,string>"
    for simple, name in _SIMPLE_TYPES.items():
        if dtype == simple:
            return name
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    if isinstance(dtype, pl.Decimal):
        return f"decimal({dtype.precision},{dtype.scale})"
    if isinstance(dtype, pl.List | pl.Array):
        return f"array<{hive_type(dtype.inner)}>"
    if isinstance(dtype, pl.Struct):
        return "struct<" + ",".join(f"{f.name}:{hive_type(f.dtype)}" for f in dtype.fields) + ">"
    raise CatalogError(f"no Glue type for polars type {dtype}")


def table_location(location: str, table: str) -> str:
    """The S3 folder of a table (trailing slash, as Athena wants a folder)."""
    return f"{location.rstrip('/')}/{table}/"


def require_s3(location: str) -> str:
    """The location as an `s3://` URI, or a one-line `CatalogError` saying what to give instead."""
    if location.startswith("s3a://"):
        location = "s3://" + location.removeprefix("s3a://")
    if not location.startswith("s3://") or len(location) <= len("s3://"):
        raise CatalogError(
            f"catalog: the warehouse {location!r} is not on S3; Glue and Athena read s3:// only "
            "(set `warehouse: s3://bucket/prefix` in ledger.yaml or pass --location s3://bucket/prefix)"
        )
    return location.rstrip("/")


def glue_table_input(
    table: str, schema: Mapping[str, pl.DataType], location: str, start_date: dt.date
) -> dict[str, Any]:
    """The Glue `TableInput` of one table: columns without `date`, `date` as the projected partition key."""
    where = table_location(location, table)
    columns = [{"Name": name, "Type": hive_type(dtype)} for name, dtype in schema.items() if name != PARTITION_KEY]
    parameters = {
        "classification": "parquet",
        "EXTERNAL": "TRUE",
        "parquet.compression": "ZSTD",
        "projection.enabled": "true",
        f"projection.{PARTITION_KEY}.type": "date",
        f"projection.{PARTITION_KEY}.format": "yyyy-MM-dd",
        f"projection.{PARTITION_KEY}.range": f"{start_date.isoformat()},NOW",
        f"projection.{PARTITION_KEY}.interval": "1",
        f"projection.{PARTITION_KEY}.interval.unit": "DAYS",
        "storage.location.template": f"{where}{PARTITION_KEY}=${{{PARTITION_KEY}}}",
        "managed_by": MANAGED_BY,
    }
    return {
        "Name": table,
        "Description": f"bedrock-ledger table {table}: one Parquet file per UTC day under {where}date=YYYY-MM-DD/",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "PartitionKeys": [{"Name": PARTITION_KEY, "Type": "string"}],
        "StorageDescriptor": {
            "Columns": columns,
            "Location": where,
            "InputFormat": INPUT_FORMAT,
            "OutputFormat": OUTPUT_FORMAT,
            "Compressed": False,
            "SerdeInfo": {"SerializationLibrary": SERDE, "Parameters": {"serialization.format": "1"}},
        },
    }


def _same(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether the registered table already says what `wanted` says (columns, keys, location, our parameters)."""
    sd, want_sd = existing.get("StorageDescriptor") or {}, wanted["StorageDescriptor"]
    cols = [{"Name": c["Name"], "Type": c["Type"]} for c in sd.get("Columns") or []]
    keys = [{"Name": c["Name"], "Type": c["Type"]} for c in existing.get("PartitionKeys") or []]
    params = existing.get("Parameters") or {}
    return (
        cols == want_sd["Columns"]
        and keys == wanted["PartitionKeys"]
        and sd.get("Location") == want_sd["Location"]
        and (sd.get("SerdeInfo") or {}).get("SerializationLibrary") == SERDE
        and all(params.get(k) == v for k, v in wanted["Parameters"].items())
    )


def register_tables(
    database: str,
    location: str,
    start_date: dt.date,
    tables: Mapping[str, Mapping[str, pl.DataType]] | None = None,
    client: Any | None = None,
) -> RegistrationResult:
    """Create or update one Glue table per contract table in `database` (created if missing); idempotent.

    Parameters someone else set on a table (a comment, a Lake Formation tag) are kept; ours win where they clash.
    """
    location = require_s3(location)
    glue = client or aws.client("glue")
    result = RegistrationResult(database=database, location=location)
    try:
        glue.get_database(Name=database)
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(DatabaseInput={"Name": database, "Description": f"bedrock-ledger warehouse at {location}"})
        result.database_created = True
    for table, schema in (tables if tables is not None else schemas.TABLES).items():
        wanted = glue_table_input(table, schema, location, start_date)
        try:
            existing = glue.get_table(DatabaseName=database, Name=table)["Table"]
        except glue.exceptions.EntityNotFoundException:
            glue.create_table(DatabaseName=database, TableInput=wanted)
            result.created.append(table)
            continue
        if _same(existing, wanted):
            result.unchanged.append(table)
            continue
        update = {**wanted, "Parameters": {**(existing.get("Parameters") or {}), **wanted["Parameters"]}}
        glue.update_table(DatabaseName=database, TableInput=update)
        result.updated.append(table)
    return result
