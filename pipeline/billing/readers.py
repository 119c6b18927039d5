"""Find and read the Bedrock rows of an AWS billing export: legacy CUR, CUR 2.0 or FOCUS, local or on S3.

Layouts and column names follow docs/formats/billing-exports.md (§1 legacy CUR, §2 CUR 2.0, §3 FOCUS):

- legacy CUR, CSV: `<report>/<yyyymmdd-yyyymmdd>/[<assemblyId>/]<report>-<n>.csv.gz` and a manifest
  `<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json` naming the current assembly's files
- legacy CUR, Athena: `<report>/<report>/year=2026/month=5/<report>-00001.snappy.parquet` (month unpadded)
- CUR 2.0 and FOCUS: `<export>/data/BILLING_PERIOD=2026-05/[<execution folder>/]<export>-00001.snappy.parquet`

A month of a large account's CUR is gigabytes, so nothing is loaded whole: the billing period is chosen from
the path (other months are never opened), only the needed columns are read, and Parquet files are scanned with
a pyarrow filter on the usage date and product code (row groups outside the day are skipped by statistics)
batch by batch, keeping only the Bedrock rows of the requested days. Every row read comes out in one
canonical shape (`RAW_SCHEMA`) whatever the format, and remembers the file it came from.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import posixpath
import re
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Any, Literal

import fsspec
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
from isal import igzip
from pyarrow.fs import FSSpecHandler, PyFileSystem

from pipeline.aws import storage_options_for
from pipeline.billing import validate
from pipeline.config import BillingSource
from pipeline.schemas import STR_MAP, DType

Format = Literal["cur", "cur2", "focus"]
FORMATS: tuple[Format, ...] = ("cur", "cur2", "focus")

# The Bedrock filter of AWS's CUDOS dashboard (§4.1). `!= 'AWS Marketplace'` rather than `= 'AWS'`
# so that the AISPL billing entity (India) is not silently dropped.
BEDROCK_PRODUCT_CODES = (
    "AmazonBedrock",
    "AmazonBedrockService",
    "AmazonBedrockAgentCore",
    "AmazonBedrockFoundationModels",
)
MARKETPLACE_ENTITY = "AWS Marketplace"
MARKETPLACE_SUFFIX = "(Amazon Bedrock Edition)"
"""The documented mark of a Bedrock model sold through AWS Marketplace: its product name ends in it
(docs/formats/billing-exports.md §4.1: `Claude 3 Haiku (Amazon Bedrock Edition)`). Any other Marketplace product is
not Bedrock spend, whatever its name says (a "… Bedrock Security Scanner" listing): such rows are left out and
listed (`marketplace_rows_excluded`)."""
EXCLUDED_SCHEMA: dict[str, DType] = {
    "source_uri": pl.String,
    "product_code": pl.String,
    "product_name": pl.String,
    "usage_type": pl.String,
    "unblended_cost_usd": pl.Float64,
}
PRINCIPAL_TAG_PREFIX = "iamPrincipal/"

RAW_SCHEMA: dict[str, DType] = {
    "usage_start": pl.Datetime("us", "UTC"),
    "usage_end": pl.Datetime("us", "UTC"),  # null where the export has none: the row is then taken as daily
    "billing_period_start": pl.Datetime("us", "UTC"),
    "billing_period": pl.String,
    "account_id": pl.String,
    "billing_entity": pl.String,
    "product_code": pl.String,
    "product_name": pl.String,
    "product_region": pl.String,
    "usage_type": pl.String,
    "operation": pl.String,
    "resource_id": pl.String,
    "line_item_type": pl.String,
    "usage_amount": pl.Float64,
    "pricing_unit": pl.String,
    "rate": pl.Float64,
    "unblended_cost": pl.Float64,
    "net_cost": pl.Float64,
    "currency": pl.String,
    "description": pl.String,
    "tags": STR_MAP,
    "source_format": pl.String,
    "source_uri": pl.String,
    "list_cost": pl.Float64,  # FOCUS ListCost (0 on Marketplace rows, §3.4)
    "discounts": pl.Float64,  # FOCUS x_Discounts summed (negative amounts)
    "invoice_id": pl.String,  # bill_invoice_id / InvoiceId: set once the month is invoiced (§4.11)
    "iam_principal": pl.String,
    "invoicing_entity": pl.String,  # bill_invoicing_entity / InvoiceIssuerName: who invoices the row
    "public_rate": pl.Float64,  # CUR pricing_public_on_demand_rate / FOCUS ListUnitPrice: the list rate per unit
}
_FLOAT_COLUMNS = ("usage_amount", "rate", "unblended_cost", "net_cost", "list_cost")
_TIME_COLUMNS = ("usage_start", "usage_end", "billing_period_start")

# Canonical column -> candidate source columns, first present wins (several present: coalesced per row).
# Legacy CUR CSV headers (`lineItem/UsageType`) are first turned into the Parquet names by AWS's rule.
# `name[key]` reads a key of a CUR 2.0 map column.
_CUR_COLUMNS: dict[str, tuple[str, ...]] = {
    "usage_start": ("line_item_usage_start_date",),
    "usage_end": ("line_item_usage_end_date",),
    "billing_period_start": ("bill_billing_period_start_date",),
    "account_id": ("line_item_usage_account_id",),
    "billing_entity": ("bill_billing_entity",),
    "product_code": ("line_item_product_code",),
    "product_name": ("product_product_name",),
    "product_region": ("product_region_code", "product_region"),
    "usage_type": ("line_item_usage_type",),
    "operation": ("line_item_operation",),
    "resource_id": ("line_item_resource_id",),
    "line_item_type": ("line_item_line_item_type",),
    "usage_amount": ("line_item_usage_amount",),
    "pricing_unit": ("pricing_unit",),
    "rate": ("line_item_unblended_rate",),
    "unblended_cost": ("line_item_unblended_cost",),
    "net_cost": ("line_item_net_unblended_cost",),
    "currency": ("line_item_currency_code",),
    "description": ("line_item_line_item_description",),
    "invoice_id": ("bill_invoice_id",),
    "invoicing_entity": ("bill_invoicing_entity",),
    "public_rate": ("pricing_public_on_demand_rate",),
}
_CUR2_COLUMNS: dict[str, tuple[str, ...]] = {
    **_CUR_COLUMNS,
    "product_name": ("product[product_name]",),
    "product_region": ("product_region_code", "product[region]"),
    # Only with INCLUDE_IAM_PRINCIPAL_DATA (§2.1, §4.10); absent otherwise, then null.
    "iam_principal": ("line_item_iam_principal",),
}
_FOCUS_COLUMNS: dict[str, tuple[str, ...]] = {
    "usage_start": ("ChargePeriodStart",),
    "usage_end": ("ChargePeriodEnd",),
    "billing_period_start": ("BillingPeriodStart",),
    "account_id": ("SubAccountId",),
    "product_code": ("x_ServiceCode",),
    "product_name": ("ServiceName",),
    "product_region": ("RegionId",),
    "usage_type": ("SkuMeter", "x_UsageType"),  # 1.2 / 1.0 (§3.2)
    "operation": ("x_Operation",),
    "resource_id": ("ResourceId",),
    "line_item_type": ("ChargeCategory",),
    "charge_class": ("ChargeClass",),
    # PricingQuantity is in PricingUnit, the unit the token scale is read from (§3.3).
    "usage_amount": ("PricingQuantity", "ConsumedQuantity"),
    "pricing_unit": ("PricingUnit", "ConsumedUnit"),
    "rate": ("ContractedUnitPrice", "ListUnitPrice"),
    "unblended_cost": ("BilledCost",),
    "net_cost": ("EffectiveCost",),
    "currency": ("BillingCurrency",),
    "description": ("ChargeDescription",),
    "list_cost": ("ListCost",),
    "invoice_id": ("InvoiceId",),  # FOCUS 1.2 only; 1.0 has none (§3.2)
    "invoicing_entity": ("InvoiceIssuerName",),
    "public_rate": ("ListUnitPrice",),
}
_COLUMNS: dict[Format, dict[str, tuple[str, ...]]] = {
    "cur": _CUR_COLUMNS,
    "cur2": _CUR2_COLUMNS,
    "focus": _FOCUS_COLUMNS,
}
_REQUIRED_CUR = (
    "usage_start",
    "account_id",
    "billing_entity",
    "product_code",
    "product_name",
    "usage_type",
    "line_item_type",
    "usage_amount",
    "pricing_unit",
    "unblended_cost",
)
_REQUIRED: dict[Format, tuple[str, ...]] = {
    "cur": _REQUIRED_CUR,
    "cur2": _REQUIRED_CUR,
    "focus": tuple(c for c in _REQUIRED_CUR if c != "billing_entity"),
}

_FORMAT_NAMES = {"cur": "legacy CUR", "cur2": "CUR 2.0", "focus": "FOCUS"}

# CSV headers of the legacy CUR columns, to name them the way the user's file does in error messages.
_CSV_HEADERS = {
    "line_item_usage_start_date": "lineItem/UsageStartDate",
    "line_item_usage_end_date": "lineItem/UsageEndDate",
    "line_item_usage_account_id": "lineItem/UsageAccountId",
    "bill_billing_entity": "bill/BillingEntity",
    "line_item_product_code": "lineItem/ProductCode",
    "product_product_name": "product/ProductName",
    "line_item_usage_type": "lineItem/UsageType",
    "line_item_line_item_type": "lineItem/LineItemType",
    "line_item_usage_amount": "lineItem/UsageAmount",
    "pricing_unit": "pricing/unit",
    "line_item_unblended_cost": "lineItem/UnblendedCost",
}

_TS_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%m/%d/%y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
)

_DATA_EXPORT = re.compile(r"/data/billing_period=(?P<period>\d{4}-\d{2})/(?P<rest>.+)$", re.IGNORECASE)
_ATHENA = re.compile(r"/year=(?P<year>\d{4})/month=(?P<month>\d{1,2})/(?P<rest>.+)$")
_RANGE = re.compile(r"/(?P<start>\d{8})-(?P<end>\d{8})/(?P<rest>.+)$")
_CSV_SUFFIXES = (".csv.gz", ".csv.zip", ".csv")


def _layout_start(root: str) -> int:
    """Where AWS's part of a listed path begins: at the configured folder's own name, so a root that *is* the
    export's `data/` folder still reads, while folders above it (`s3://lake/data/…`, `…/year=2026/…`, named by the
    user) never look like an export's layout."""
    return len(posixpath.dirname(root.rstrip("/")))


# CSV is parsed in small blocks (larger ones make pyarrow buffer several in parallel); polars then works on
# frames of about this many rows, so its per-frame overhead is paid rarely.
_CSV_ROWS_PER_FRAME = 64 * 1024


class BillingFormatError(ValueError):
    """A billing export that cannot be read as asked; the message names the file and, if known, the column."""


@dataclass(frozen=True)
class ExportFile:
    """One data file chosen for reading."""

    path: str  # path for the filesystem
    uri: str  # what rows carry as `source_uri`
    format: Format
    layout: Literal["csv", "parquet"]
    billing_period: str  # YYYY-MM


@dataclass
class BillingRead:
    """Rows in `RAW_SCHEMA`, the files read, and per file which source column fed each canonical column."""

    rows: pl.DataFrame
    format: Format
    files: list[ExportFile] = field(default_factory=list)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    quarantined: pl.DataFrame = field(default_factory=lambda: validate.empty_quarantine())
    """Rows kept out of `rows` because a number is NaN, infinite or absurd (`billing.validate`)."""
    marketplace_excluded: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=EXCLUDED_SCHEMA))
    """Marketplace rows that mention Bedrock but are not a Bedrock model (`EXCLUDED_SCHEMA`)."""

    def column_name(self, source_uri: str, canonical: str) -> str:
        """The export's own name of a column (for messages a user can grep for)."""
        return self.columns.get(source_uri, {}).get(canonical, canonical)


def athena_column_name(name: str) -> str:
    """AWS's rule from CSV header to Parquet/Athena column name (§1.2).

    `lineItem/UsageType` -> `line_item_usage_type`,
    `resourceTags/user:CostCenter` -> `resource_tags_user_cost_center`.
    """
    s = re.sub(r"([A-Z])", r"_\1", name).lower()
    s = re.sub(r"[^a-z0-9]", "_", s)
    return re.sub(r"_+", "_", s).strip("_")


def billing_periods(start: dt.date, end: dt.date) -> list[str]:
    """The `YYYY-MM` billing periods that hold the days `start` (inclusive) to `end` (exclusive)."""
    out: list[str] = []
    day = start
    while day < end:
        p = f"{day.year:04d}-{day.month:02d}"
        if p not in out:
            out.append(p)
        day = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return out


# ----------------------------------------------------------------------------------------------------------
# Discovery


def _filesystem(uri: str, storage_options: dict[str, Any] | None) -> tuple[fsspec.AbstractFileSystem, str]:
    opts = storage_options if storage_options is not None else storage_options_for(uri)
    return fsspec.core.url_to_fs(uri, **opts)


def _is_local_filesystem(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _uri(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return path if _is_local_filesystem(fs) else fs.unstrip_protocol(path)


def _list(fs: fsspec.AbstractFileSystem, root: str, uri: str) -> list[str]:
    try:
        paths = sorted(fs.find(root))
    except (FileNotFoundError, OSError) as exc:
        raise BillingFormatError(f"{uri}: cannot list the billing export: {exc}") from exc
    if not paths:
        raise BillingFormatError(f"{uri}: no files found (is this the export's folder?)")
    return paths


def _is_data_file(path: str) -> bool:
    name = posixpath.basename(path).lower()
    return name.endswith(".parquet") or name.endswith(_CSV_SUFFIXES)


def _parquet_names(fs: fsspec.AbstractFileSystem, path: str, uri: str) -> list[str]:
    try:
        return list(ds.dataset(path, format="parquet", filesystem=_arrow_fs(fs)).schema.names)
    except (pa.ArrowException, OSError) as exc:
        raise BillingFormatError(f"{uri}: cannot read the Parquet schema: {exc}") from exc


def _data_export_kind(names: list[str]) -> Format | None:
    if "line_item_usage_type" in names:
        return "cur2"
    if "ChargeCategory" in names or "SkuMeter" in names or "x_UsageType" in names:
        return "focus"
    return None


def _data_export_files(
    fs: fsspec.AbstractFileSystem, paths: list[str], periods: set[str], fmt: Format | None, uri: str, pos: int = 0
) -> tuple[Format, list[ExportFile]]:
    """CUR 2.0 / FOCUS: the format; per export and period, the overwrite files or the newest execution folder.

    The format comes from one file's columns per export (the layout is the same for both).
    """
    by_export: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for p in paths:
        m = _DATA_EXPORT.search(p, pos)
        if not m or not _is_data_file(p):
            continue
        root = p[: m.start()]
        by_export.setdefault((root, m.group("period")), []).append((p, m.group("rest")))
    if not by_export:
        raise BillingFormatError(f"{uri}: no Parquet files under data/BILLING_PERIOD=YYYY-MM/")
    # One sample file per export, from a requested period when it has one: other months stay unopened.
    sample: dict[str, str] = {}
    for (root, _), files in sorted(by_export.items(), key=lambda kv: (kv[0][0], kv[0][1] not in periods)):
        sample.setdefault(root, files[0][0])
    roots = sorted(sample)
    for first in sample.values():
        if first.lower().endswith(_CSV_SUFFIXES):
            raise BillingFormatError(
                f"{_uri(fs, first)}: CSV Data Exports are not supported; set the export's format to Parquet"
            )
    kinds: dict[str, Format | None] = {}
    if fmt is None or len(roots) > 1:  # only then does the format need a file's columns
        kinds = {r: _data_export_kind(_parquet_names(fs, f, _uri(fs, f))) for r, f in sample.items()}
    if fmt is None:
        found = {k for k in kinds.values() if k}
        if len(found) > 1:
            raise BillingFormatError(f"{uri}: holds both CUR 2.0 and FOCUS exports; set `format` or a narrower uri")
        if not found:
            raise BillingFormatError(
                f"{roots[0]}: a Data Exports layout whose files have neither `line_item_usage_type` "
                "(CUR 2.0) nor `ChargeCategory` (FOCUS)"
            )
        fmt = found.pop()
    elif len(roots) > 1:
        roots = [r for r in roots if kinds[r] in (fmt, None)]

    out: list[ExportFile] = []
    for (root, period), files in sorted(by_export.items()):
        if root not in roots or period not in periods:
            continue
        executions = sorted({rest.split("/", 1)[0] for _, rest in files if "/" in rest})
        if executions:  # "create new" mode: every refresh adds a folder; summing them double-counts (§2.1)
            newest = executions[-1]
            chosen = [p for p, rest in files if rest.startswith(newest + "/")]
        else:
            chosen = [p for p, _ in files]
        out += [ExportFile(p, _uri(fs, p), fmt, "parquet", period) for p in chosen]
    return fmt, out


def _legacy_csv_files(
    fs: fsspec.AbstractFileSystem, paths: list[str], periods: set[str], pos: int = 0
) -> list[ExportFile]:
    """Legacy CUR CSV: per report and period, the files the period's top-level manifest lists (§1.1)."""
    by_range: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for p in paths:
        m = _RANGE.search(p, pos)
        if not m:
            continue
        range_dir = p[: m.start()] + f"/{m.group('start')}-{m.group('end')}"
        by_range.setdefault((range_dir, m.group("start")), []).append((p, m.group("rest")))
    out: list[ExportFile] = []
    for (range_dir, start), files in sorted(by_range.items()):
        period = f"{start[:4]}-{start[4:6]}"
        if not any(rest.lower().endswith(_CSV_SUFFIXES) for _, rest in files):
            continue
        if period not in periods:
            continue
        manifests = [p for p, rest in files if "/" not in rest and rest.endswith("-Manifest.json")]
        if manifests:
            chosen = _manifest_keys(fs, manifests[0], range_dir)
        else:
            direct = [p for p, rest in files if "/" not in rest and rest.lower().endswith(_CSV_SUFFIXES)]
            assemblies = sorted({rest.split("/", 1)[0] for _, rest in files if "/" in rest})
            if direct:
                chosen = direct
            elif len(assemblies) == 1:
                chosen = [p for p, rest in files if rest.lower().endswith(_CSV_SUFFIXES)]
            else:
                raise BillingFormatError(
                    f"{_uri(fs, range_dir)}: {len(assemblies)} report assemblies and no top-level "
                    "<report>-Manifest.json to say which is current; reading them all would double-count"
                )
        out += [ExportFile(p, _uri(fs, p), "cur", "csv", period) for p in chosen]
    return out


def _manifest_keys(fs: fsspec.AbstractFileSystem, manifest: str, range_dir: str) -> list[str]:
    """The report files of a legacy CUR manifest (`reportKeys`, bucket-relative), resolved under `range_dir`.

    Keys are re-rooted at the billing-period folder so a local copy of an export reads the same as the bucket.
    """
    try:
        with fs.open(manifest, "rb") as f:
            doc = json.load(f)
        keys = doc["reportKeys"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BillingFormatError(f"{_uri(fs, manifest)}: not a readable CUR manifest (reportKeys): {exc}") from exc
    marker = f"/{posixpath.basename(range_dir)}/"
    out = []
    for key in keys:
        # Confined to the export: a key is re-rooted under the billing-period folder it was found in, and one that
        # does not name that folder, or climbs out of it (`..`), is an error. The manifest's `bucket` field is never
        # used: a manifest must not send the reader to another bucket or prefix.
        idx = key.find(marker) if isinstance(key, str) else -1
        rel = posixpath.normpath(key[idx + len(marker) :]) if idx >= 0 else ""
        if idx < 0 or rel.startswith(("..", "/")) or rel == ".":
            raise BillingFormatError(
                f"{_uri(fs, manifest)}: reportKeys entry {str(key)[:200]!r} is outside the export's folder "
                f"{_uri(fs, range_dir)}; refusing to read it"
            )
        out.append(range_dir + "/" + rel)
    return out


def _athena_files(fs: fsspec.AbstractFileSystem, paths: list[str], periods: set[str], pos: int = 0) -> list[ExportFile]:
    out: list[ExportFile] = []
    for p in paths:
        m = _ATHENA.search(p, pos)
        if not m or not p.lower().endswith(".parquet"):
            continue
        period = f"{int(m.group('year')):04d}-{int(m.group('month')):02d}"
        if period in periods:
            out.append(ExportFile(p, _uri(fs, p), "cur", "parquet", period))
    return out


def discover(
    source: BillingSource, periods: list[str] | None, storage_options: dict[str, Any] | None = None
) -> tuple[Format, list[ExportFile], fsspec.AbstractFileSystem]:
    """The export's format and the data files of `periods` (all periods when None), chosen by path alone."""
    fs, root = _filesystem(source.uri, storage_options)
    paths = _list(fs, root, source.uri)
    pos = _layout_start(root)
    wanted = set(periods) if periods is not None else {m for p in paths for m in _periods_in_path(p, pos)}
    fmt: Format | None = None if source.format == "auto" else source.format
    has_data_export = any(_DATA_EXPORT.search(p, pos) for p in paths)
    has_legacy = any(_ATHENA.search(p, pos) or _RANGE.search(p, pos) for p in paths)
    if fmt is None and has_data_export and has_legacy:
        raise BillingFormatError(f"{source.uri}: holds both legacy CUR and Data Exports layouts; set `format`")
    if fmt in ("cur2", "focus") or (fmt is None and has_data_export):
        fmt, files = _data_export_files(fs, paths, wanted, fmt, source.uri, pos)
        return fmt, files, fs
    if fmt == "cur" and not has_legacy:
        raise BillingFormatError(
            f"{source.uri}: no legacy CUR layout found (yyyymmdd-yyyymmdd/ report folders or year=/month= "
            "Parquet partitions)"
        )
    if fmt == "cur" or (fmt is None and has_legacy):
        return "cur", _legacy_csv_files(fs, paths, wanted, pos) + _athena_files(fs, paths, wanted, pos), fs
    raise BillingFormatError(
        f"{source.uri}: no billing export layout found (expected data/BILLING_PERIOD=YYYY-MM/ for CUR 2.0 "
        "and FOCUS, year=/month= or yyyymmdd-yyyymmdd/ folders for legacy CUR)"
    )


def _periods_in_path(path: str, pos: int = 0) -> list[str]:
    if m := _DATA_EXPORT.search(path, pos):
        return [m.group("period")]
    if m := _ATHENA.search(path, pos):
        return [f"{int(m.group('year')):04d}-{int(m.group('month')):02d}"]
    if m := _RANGE.search(path, pos):
        return [f"{m.group('start')[:4]}-{m.group('start')[4:6]}"]
    return []


def detect_format(uri: str, storage_options: dict[str, Any] | None = None) -> Format:
    """Which export lives at `uri`: from its folder layout, and for Data Exports from one file's columns."""
    fmt, _, _ = discover(BillingSource(uri=uri, format="auto"), None, storage_options)
    return fmt


# ----------------------------------------------------------------------------------------------------------
# Reading


def _arrow_fs(fs: fsspec.AbstractFileSystem) -> Any:
    return None if _is_local_filesystem(fs) else PyFileSystem(FSSpecHandler(fs))


@dataclass(frozen=True)
class _Resolved:
    """Where each canonical column comes from in one file."""

    sources: dict[str, list[str]]  # canonical -> source columns present (CSV: raw header names)
    display: dict[str, str]  # canonical -> the name to show in messages
    tag_columns: dict[str, str]  # tag key -> source column (legacy CUR flat tag columns)
    tag_map: str | None  # CUR 2.0 / FOCUS map column holding tags
    tag_map_prefix: str | None  # keep only keys with this prefix (CUR 2.0 `tags` column), stripped
    needed: list[str]  # source columns to read
    principal_tag_map: str | None = None  # CUR 2.0 `tags` column: its `iamPrincipal/…` keys are kept as they are
    discounts: str | None = None  # FOCUS `x_Discounts` (map of discount name -> amount), when present


def _resolve(fmt: Format, names: list[str], uri: str, normalize: bool) -> _Resolved:
    """Match the export's columns to the canonical ones; missing required columns are an error naming both."""
    by_norm: dict[str, list[str]] = {}
    for n in names:
        by_norm.setdefault(athena_column_name(n) if normalize else n, []).append(n)
    sources: dict[str, list[str]] = {}
    display: dict[str, str] = {}
    for canonical, candidates in _COLUMNS[fmt].items():
        found: list[str] = []
        for cand in candidates:
            base = cand.split("[", 1)[0]
            if base in by_norm:
                found += [cand] if "[" in cand else by_norm[base]
        if found:
            sources[canonical] = found
            display[canonical] = found[0]
        elif canonical in _REQUIRED[fmt]:
            want = " or ".join(repr(c) for c in candidates)
            if normalize:
                want += " (CSV header " + " or ".join(repr(_CSV_HEADERS.get(c, c)) for c in candidates) + ")"
            raise BillingFormatError(f"{uri}: missing required column {want} ({_FORMAT_NAMES[fmt]})")
    tag_columns: dict[str, str] = {}
    tag_map = tag_prefix = None
    if fmt == "cur":
        for norm, raws in by_norm.items():
            if norm.startswith("resource_tags_") and norm != "resource_tags":
                tag_columns[norm.removeprefix("resource_tags_")] = raws[0]
    elif fmt == "cur2":
        if "resource_tags" in by_norm:
            tag_map = "resource_tags"
        elif "tags" in by_norm:
            tag_map, tag_prefix = "tags", "resourceTags/"
    elif "Tags" in by_norm:
        tag_map = "Tags"
    discounts = "x_Discounts" if fmt == "focus" and "x_Discounts" in by_norm else None
    principal_tag_map = "tags" if fmt == "cur2" and "tags" in by_norm else None
    needed = sorted(
        {c.split("[", 1)[0] for cs in sources.values() for c in cs}
        | set(tag_columns.values())
        | ({tag_map} if tag_map else set())
        | ({principal_tag_map} if principal_tag_map else set())
        | ({discounts} if discounts else set())
    )
    return _Resolved(sources, display, tag_columns, tag_map, tag_prefix, needed, principal_tag_map, discounts)


def _map_lookup(column: str, key: str) -> pl.Expr:
    return (
        pl.col(column)
        .list.eval(pl.element().filter(pl.element().struct.field("key") == key).struct.field("value"))
        .list.first()
    )


def _source_expr(src: str) -> pl.Expr:
    if "[" in src:
        col, key = src[:-1].split("[", 1)
        return _map_lookup(col, key)
    return pl.col(src)


def _as_string(e: pl.Expr) -> pl.Expr:
    s = e.cast(pl.String).str.strip_chars()
    return pl.when(s.str.len_bytes() == 0).then(None).otherwise(s)


def _as_utc(e: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        e = e.dt.replace_time_zone("UTC") if dtype.time_zone is None else e.dt.convert_time_zone("UTC")
        return e.cast(pl.Datetime("us", "UTC"))
    if dtype == pl.Date:
        return e.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    s = _as_string(e).str.strip_suffix("Z")
    parsed = pl.coalesce([s.str.strptime(pl.Datetime("us"), f, strict=False) for f in _TS_FORMATS])
    return parsed.dt.replace_time_zone("UTC")


def _maps_as_lists(batch: pl.DataFrame) -> pl.DataFrame:
    """Parquet MAP columns as lists of key/value structs: polars 2 reads them as its `Map` type, older
    versions as lists; one shape keeps lookups and the `tags` output the same either way."""
    maps = [name for name, dtype in batch.schema.items() if type(dtype).__name__ == "Map"]
    if not maps:
        return batch
    kv = pl.List(pl.Struct({"key": pl.String, "value": pl.String}))
    return batch.with_columns(pl.col(maps).cast(kv))


def _parse_string_map(text: str | None) -> list[dict[str, str | None]] | None:
    """A map column that arrived as text: JSON (`{"product_name": "Amazon Bedrock"}`) or Hive/Athena's
    `{product_name=Amazon Bedrock, region=us-east-1}`. UNVERIFIED which one a given tool writes: both are read;
    anything else is an empty map (the lookups then find nothing and the row shows as unmapped, not an error)."""
    if text is None:
        return None
    text = text.strip()
    try:
        doc = json.loads(text)
        if isinstance(doc, dict):
            return [{"key": str(k), "value": None if v is None else str(v)} for k, v in doc.items()]
    except ValueError:
        pass
    if text.startswith("{") and text.endswith("}"):
        pairs = [p.split("=", 1) for p in text[1:-1].split(", ") if "=" in p]
        return [{"key": k.strip(), "value": v.strip()} for k, v in pairs]
    return []


def _string_maps_as_lists(batch: pl.DataFrame, r: _Resolved) -> pl.DataFrame:
    """Map columns (`product`, the tag map) stored as strings, turned into key/value lists like real maps, so a
    `product` column written as text reads instead of failing with a type error."""
    names = {s.split("[", 1)[0] for srcs in r.sources.values() for s in srcs if "[" in s}
    if r.tag_map:
        names.add(r.tag_map)
    text_maps = [n for n in names if batch.schema.get(n) == pl.String]
    if not text_maps:
        return batch
    kv = pl.List(pl.Struct({"key": pl.String, "value": pl.String}))
    return batch.with_columns(
        pl.col(n).map_elements(_parse_string_map, return_dtype=kv, skip_nulls=True) for n in text_maps
    )


def _prefilter(r: _Resolved, fmt: Format) -> pl.Expr:
    """A cheap first cut on the raw product code (and billing entity) columns, before any parsing.

    CSV has no pushdown, so this keeps the costly steps (timestamp parsing, map lookups) to rows that may be
    Bedrock: product code Bedrock, or Marketplace (FOCUS: an empty service code), refined later by name.
    """
    code = pl.col(r.sources["product_code"][0]).cast(pl.String)
    bedrock = code.is_in(BEDROCK_PRODUCT_CODES).fill_null(False)
    if fmt == "focus":
        return bedrock | code.is_null() | (code == "")
    return bedrock | (pl.col(r.sources["billing_entity"][0]).cast(pl.String) == MARKETPLACE_ENTITY).fill_null(False)


def _canonical(batch: pl.DataFrame, r: _Resolved, fmt: Format, uri: str, period: str) -> pl.DataFrame:
    """One batch in canonical columns; money and amounts stay raw strings/numbers until after the filter."""
    batch = _string_maps_as_lists(_maps_as_lists(batch.filter(_prefilter(r, fmt))), r)
    schema = batch.schema
    exprs: list[pl.Expr] = []
    for canonical, srcs in r.sources.items():
        parts = [_source_expr(s) for s in srcs]
        first_dtype = schema.get(srcs[0].split("[", 1)[0])
        if canonical in _TIME_COLUMNS:
            e = pl.coalesce([_as_utc(p, schema[s.split("[", 1)[0]]) for p, s in zip(parts, srcs, strict=True)])
            raw = pl.coalesce([_as_string(p) for p in parts])
            exprs += [e.alias(canonical), raw.alias(f"_raw_{canonical}")]
        elif canonical in _FLOAT_COLUMNS and first_dtype is not None and first_dtype.is_numeric():
            exprs.append(pl.coalesce([p.cast(pl.Float64) for p in parts]).alias(canonical))
        else:
            exprs.append(pl.coalesce([_as_string(p) for p in parts]).alias(canonical))
    for canonical in _COLUMNS[fmt]:
        if canonical not in r.sources:
            dtype = RAW_SCHEMA.get(canonical, pl.String)
            exprs.append(pl.lit(None, dtype=dtype).alias(canonical))
    if r.tag_map and schema.get(r.tag_map) == pl.String:
        batch = batch.with_columns(pl.col(r.tag_map).map_elements(_json_tags, return_dtype=STR_MAP))
    tags = _tags_expr(r)
    if r.principal_tag_map:
        tags = pl.concat_list(tags, _principal_tags_expr(r.principal_tag_map))
    exprs.append(tags.alias("tags"))
    exprs.append(_discounts_expr(r, schema).alias("discounts"))
    if validate.ROW_COLUMN in schema:
        exprs.append(pl.col(validate.ROW_COLUMN))
    out = batch.select(exprs)
    if fmt == "focus":
        out = _focus_fixups(out)
    return out.with_columns(
        pl.lit(period).alias("billing_period"),
        pl.lit(fmt).alias("source_format"),
        pl.lit(uri).alias("source_uri"),
    )


@lru_cache(maxsize=65536)
def _json_tags_cached(text: str) -> tuple[tuple[str, str], ...]:
    try:
        doc = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(doc, dict):
        return ()
    return tuple((str(k), "" if v is None else str(v)) for k, v in doc.items())


def _json_tags(text: str | None) -> list[dict[str, str]]:
    """FOCUS `Tags` written as a JSON object string (FOCUS 1.0 sample data) as key/value entries.

    A value that is not a JSON object (`NULL`, garbage) gives no tags rather than failing the whole bill: tags
    are attribution hints, and the row's cost must still be counted.
    """
    if not text:
        return []
    return [{"key": k, "value": v} for k, v in _json_tags_cached(text)]


def _discounts_expr(r: _Resolved, schema: Any) -> pl.Expr:
    """The sum of a FOCUS row's `x_Discounts` amounts (map<string,double>), null when the column is absent."""
    if not r.discounts:
        return pl.lit(None, dtype=pl.Float64)
    dtype = schema.get(r.discounts)
    if dtype == pl.String:  # a JSON string, as CSV renderings write it
        col = pl.col(r.discounts).map_elements(
            lambda t: sum(float(v) for _, v in _json_tags_cached(t) if _is_number(v)) if t else None,
            return_dtype=pl.Float64,
        )
        return col
    return pl.col(r.discounts).list.eval(pl.element().struct.field("value").cast(pl.Float64)).list.sum()


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _focus_fixups(df: pl.DataFrame) -> pl.DataFrame:
    """FOCUS has no billing entity: Marketplace rows are those with an empty `x_ServiceCode` (§3.4).

    A `ChargeClass` of `Correction` (a fix to an already invoiced period) becomes line type `Correction`, so
    it stays out of the usage match like any other adjustment.
    """
    entity = pl.when(pl.col("product_code").is_null()).then(pl.lit(MARKETPLACE_ENTITY)).otherwise(pl.lit("AWS"))
    cols = [entity.alias("billing_entity")]
    if "charge_class" in df.columns:
        cols.append(
            pl.when(pl.col("charge_class") == "Correction")
            .then(pl.lit("Correction"))
            .otherwise(pl.col("line_item_type"))
            .alias("line_item_type")
        )
    return df.with_columns(cols).drop("charge_class", strict=False)


def _normalize_key(e: pl.Expr) -> pl.Expr:
    return (
        e.str.replace_all(r"([A-Z])", "_$1").str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "_").str.strip_chars("_")
    )


def _tags_expr(r: _Resolved) -> pl.Expr:
    """Tags as a key/value list with the Parquet-style keys of legacy CUR and CUR 2.0 (`user_cost_center`).

    One key form for all formats, because Parquet exports already merge keys that differ only in case (§1.2).
    """
    empty = pl.lit([], dtype=STR_MAP)
    if r.tag_columns:
        entries = [
            pl.struct(pl.lit(key).alias("key"), _as_string(pl.col(col)).alias("value"))
            for key, col in sorted(r.tag_columns.items())
        ]
        listed = pl.concat_list(entries)
    elif r.tag_map:
        listed = pl.col(r.tag_map).fill_null(empty)
        if r.tag_map_prefix:
            prefix = r.tag_map_prefix
            listed = listed.list.eval(
                pl.element()
                .filter(pl.element().struct.field("key").str.starts_with(prefix))
                .struct.with_fields(_normalize_key(pl.field("key").str.strip_prefix(prefix)).alias("key"))
            )
        elif r.tag_map == "Tags":
            listed = listed.list.eval(pl.element().struct.with_fields(_normalize_key(pl.field("key")).alias("key")))
    else:
        return empty
    value = pl.element().struct.field("value")
    return listed.list.eval(pl.element().filter(value.is_not_null() & (value != ""))).cast(STR_MAP)


def _principal_tags_expr(column: str) -> pl.Expr:
    """The CUR 2.0 `tags` entries of the calling principal (`iamPrincipal/<key>`, §4.10), key unchanged.

    Kept verbatim (not normalized like resource tags) because attribution reads them with the same key lists
    as request metadata (`iamPrincipal/costCenter` feeds `cost_center` when `costCenter` is listed).
    """
    value = pl.element().struct.field("value")
    return (
        pl.col(column)
        .fill_null(pl.lit([], dtype=STR_MAP))
        .list.eval(
            pl.element().filter(
                pl.element().struct.field("key").str.starts_with(PRINCIPAL_TAG_PREFIX)
                & value.is_not_null()
                & (value != "")
            )
        )
        .cast(STR_MAP)
    )


def _is_marketplace(fmt: Format) -> pl.Expr:
    if fmt == "focus":  # FOCUS has no billing entity: an empty service code marks Marketplace (§3.4)
        return pl.col("product_code").is_null()
    return pl.col("billing_entity").fill_null("") == MARKETPLACE_ENTITY


def _bedrock_filter(fmt: Format) -> pl.Expr:
    """Bedrock spend: AWS-billed rows of the listed product codes, or Marketplace rows whose product name ends in
    the documented suffix. Nothing else, however its name reads."""
    code = pl.col("product_code")
    name = pl.col("product_name").fill_null("").str.strip_chars()
    marketplace = _is_marketplace(fmt)
    return (~marketplace & code.is_in(BEDROCK_PRODUCT_CODES).fill_null(False)) | (
        marketplace & name.str.ends_with(MARKETPLACE_SUFFIX)
    )


def _excluded_filter(fmt: Format) -> pl.Expr:
    """Marketplace rows that mention Bedrock (any case) but are not Bedrock spend: listed, never counted."""
    name = pl.col("product_name").fill_null("")
    return _is_marketplace(fmt) & name.str.to_lowercase().str.contains("bedrock") & ~_bedrock_filter(fmt)


def _arrow_filter(
    schema: pa.Schema,
    r: _Resolved,
    fmt: Format,
    start: dt.datetime,
    end: dt.datetime,
    long_from: dt.datetime | None = None,
) -> Any:
    """A pushdown filter: usage start inside the days, product code Bedrock or possibly Marketplace.

    Row groups whose statistics fall outside the day are never decoded. The exact Bedrock filter (which needs
    the product name, inside a map in CUR 2.0) runs afterwards on the few rows that pass.
    """
    code_col = r.sources["product_code"][0]
    code = pc.field(code_col)
    codes = code.isin(list(BEDROCK_PRODUCT_CODES))
    if fmt == "focus":
        expr = codes | (code == "") | code.is_null()
    else:
        expr = codes | (pc.field(r.sources["billing_entity"][0]) == MARKETPLACE_ENTITY)
    start_cols = r.sources["usage_start"]
    t = schema.field(start_cols[0]).type
    if len(start_cols) == 1 and pa.types.is_timestamp(t):

        def at(when: dt.datetime) -> Any:
            return pa.scalar(when if t.tz else when.replace(tzinfo=None), type=t)

        col = pc.field(start_cols[0])
        days = (col >= at(start)) & (col < at(end))
        if long_from is not None and long_from < start:
            # Rows that started earlier in the period and are still running: only those can cover the days.
            end_cols = r.sources.get("usage_end", [])
            earlier = (col >= at(long_from)) & (col < at(start))
            if len(end_cols) == 1 and schema.field(end_cols[0]).type == t:
                earlier = earlier & (pc.field(end_cols[0]) > at(start))
            days = days | earlier
        expr = expr & days
    return expr


def _parquet_batches(
    fs: fsspec.AbstractFileSystem,
    f: ExportFile,
    fmt: Format,
    start: dt.datetime,
    end: dt.datetime,
    long_from: dt.datetime | None = None,
) -> tuple[_Resolved, Iterator[pl.DataFrame]]:
    try:
        dataset = ds.dataset(f.path, format="parquet", filesystem=_arrow_fs(fs))
    except (pa.ArrowException, OSError) as exc:
        raise BillingFormatError(f"{f.uri}: cannot read Parquet: {exc}") from exc
    r = _resolve(fmt, list(dataset.schema.names), f.uri, normalize=False)
    flt = _arrow_filter(dataset.schema, r, fmt, start, end, long_from)

    def batches() -> Iterator[pl.DataFrame]:
        try:
            for b in dataset.to_batches(
                columns=r.needed, filter=flt, batch_size=64 * 1024, batch_readahead=2, fragment_readahead=1
            ):
                if b.num_rows:
                    yield pl.from_arrow(pa.Table.from_batches([b]))  # type: ignore[misc]
        except (pa.ArrowException, OSError) as exc:
            raise BillingFormatError(f"{f.uri}: cannot read Parquet: {exc}") from exc

    return r, batches()


def _open_text_stream(fs: fsspec.AbstractFileSystem, f: ExportFile, stack: ExitStack) -> IO[bytes]:
    raw = stack.enter_context(fs.open(f.path, "rb"))
    name = f.path.lower()
    if name.endswith(".gz"):
        # isal's IGzipFile is a context manager (a GzipFile); its stub does not say so.
        return stack.enter_context(igzip.IGzipFile(fileobj=raw))  # type: ignore[arg-type]
    if name.endswith(".zip"):
        zf = stack.enter_context(zipfile.ZipFile(raw))
        members = [m for m in zf.namelist() if m.lower().endswith(".csv")] or zf.namelist()
        return stack.enter_context(zf.open(members[0]))
    return raw


def _csv_header(fs: fsspec.AbstractFileSystem, f: ExportFile) -> list[str]:
    with ExitStack() as stack:
        stream = _open_text_stream(fs, f, stack)
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        return next(csv.reader(text))


def _csv_batches(fs: fsspec.AbstractFileSystem, f: ExportFile, fmt: Format) -> tuple[_Resolved, Iterator[pl.DataFrame]]:
    try:
        header = _csv_header(fs, f)
    except (OSError, EOFError, StopIteration, UnicodeDecodeError, zipfile.BadZipFile, csv.Error) as exc:
        raise BillingFormatError(f"{f.uri}: cannot read CSV header: {exc!r}") from exc
    r = _resolve(fmt, header, f.uri, normalize=True)
    convert = pacsv.ConvertOptions(
        include_columns=r.needed,
        column_types={c: pa.string() for c in r.needed},
        strings_can_be_null=False,
    )

    def batches() -> Iterator[pl.DataFrame]:
        try:
            with ExitStack() as stack:
                stream = _open_text_stream(fs, f, stack)
                reader = pacsv.open_csv(
                    stream, read_options=pacsv.ReadOptions(block_size=4 << 20), convert_options=convert
                )
                pending: list[pa.RecordBatch] = []
                for b in reader:
                    pending.append(b)
                    if sum(p.num_rows for p in pending) >= _CSV_ROWS_PER_FRAME:
                        yield pl.from_arrow(pa.Table.from_batches(pending))  # type: ignore[misc]
                        pending = []
                if pending:
                    yield pl.from_arrow(pa.Table.from_batches(pending))  # type: ignore[misc]
        except (pa.ArrowException, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise BillingFormatError(f"{f.uri}: cannot read CSV: {exc}") from exc

    return r, batches()


def _check_times(df: pl.DataFrame, r: _Resolved, uri: str) -> None:
    for canonical in _TIME_COLUMNS:
        raw = f"_raw_{canonical}"
        if raw not in df.columns:
            continue
        bad = df.filter(pl.col(raw).is_not_null() & pl.col(canonical).is_null())
        if bad.height:
            raise BillingFormatError(
                f"{uri}: column {r.display[canonical]!r} has a timestamp that cannot be parsed: {bad[raw][0]!r}"
            )


def _numbers(df: pl.DataFrame, r: _Resolved, uri: str) -> pl.DataFrame:
    """Parse amounts and money that arrived as text (CSV; CUR 2.0's string `line_item_unblended_rate`)."""
    cols = []
    for c in _FLOAT_COLUMNS:
        if c not in df.columns or df.schema[c] == pl.Float64:
            continue
        parsed = pl.col(c).cast(pl.Float64, strict=False)
        bad = df.filter(pl.col(c).is_not_null() & parsed.is_null())
        if bad.height:
            raise BillingFormatError(f"{uri}: column {r.display[c]!r} has a non-numeric value: {bad[c][0]!r}")
        cols.append(parsed.alias(c))
    if "public_rate" in df.columns and df.schema["public_rate"] != pl.Float64:
        cols.append(public_rate(pl.col("public_rate")).alias("public_rate"))
    return df.with_columns(cols) if cols else df


def public_rate(text: pl.Expr) -> pl.Expr:
    """The list rate in CUR's `pricing_public_on_demand_rate`, a string (the highest tier's rate where a usage type
    is tiered; a `$` or thousands separators may appear): its first number, null when there is none. It is only a
    second opinion on the catalog, so an unreadable value is left out, never an error."""
    cleaned = text.cast(pl.String).str.replace_all(",", "")
    return cleaned.str.extract(r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)", 1).cast(pl.Float64, strict=False)


def _check_currency(df: pl.DataFrame, r: _Resolved, uri: str) -> None:
    if "currency" not in df.columns:
        return
    bad = df.filter(pl.col("currency").is_not_null() & (pl.col("currency") != "USD"))
    if bad.height:
        raise BillingFormatError(
            f"{uri}: column {r.display['currency']!r} has currency {bad['currency'][0]!r}; "
            "only USD bills are supported (costs are compared in USD)"
        )


def read_file(
    fs: fsspec.AbstractFileSystem,
    f: ExportFile,
    start: dt.datetime,
    end: dt.datetime,
    long_from: dt.datetime | None = None,
) -> tuple[pl.DataFrame, dict[str, str], pl.DataFrame, pl.DataFrame]:
    """The Bedrock rows of one file whose usage starts in [start, end), its source column names, the rows
    quarantined for NaN, infinite or absurd numbers (`billing.validate`), and the Marketplace rows that mention
    Bedrock but are not Bedrock spend (`EXCLUDED_SCHEMA`). With `long_from`, rows that started from then on and
    are still running at `start` (a monthly row) are read too: they cover the days (`billing.spread`)."""
    fmt = f.format
    if f.layout == "csv":
        r, batches = _csv_batches(fs, f, fmt)
    else:
        r, batches = _parquet_batches(fs, f, fmt, start, end, long_from)
    in_days = (pl.col("usage_start") >= start) & (pl.col("usage_start") < end)
    if long_from is not None and long_from < start:
        in_days = in_days | (
            (pl.col("usage_start") >= long_from)
            & (pl.col("usage_start") < start)
            & (pl.col("usage_end") > start).fill_null(False)
        )
    keep = _bedrock_filter(fmt) & in_days
    parts = []
    excluded: list[pl.DataFrame] = []
    offset = 1  # data rows are numbered from 1 (a CSV's header is not a row)
    for b in batches:
        b = b.with_row_index(validate.ROW_COLUMN, offset=offset)
        offset += b.height
        c = _canonical(b, r, fmt, f.uri, f.billing_period)
        _check_times(c, r, f.uri)
        parts.append(c.filter(keep))
        excluded.append(
            c.filter(_excluded_filter(fmt) & in_days).select(
                pl.col("source_uri").cast(pl.String),
                pl.col("product_code").cast(pl.String),
                pl.col("product_name").cast(pl.String),
                pl.col("usage_type").cast(pl.String),
                pl.col("unblended_cost").cast(pl.Float64, strict=False).alias("unblended_cost_usd"),
            )
        )
    left_out = pl.concat(excluded) if excluded else pl.DataFrame(schema=EXCLUDED_SCHEMA)
    if not parts:
        return pl.DataFrame(schema=RAW_SCHEMA), dict(r.display), validate.empty_quarantine(), left_out
    df = pl.concat(parts, how="vertical_relaxed")
    df = _numbers(df, r, f.uri)
    df, quarantined = validate.split_invalid(df, f.uri, dict(r.display))
    _check_currency(df, r, f.uri)
    return (
        df.select(
            pl.col(n).cast(t) if n in df.columns else pl.lit(None, dtype=t).alias(n) for n, t in RAW_SCHEMA.items()
        ),
        dict(r.display),
        quarantined,
        left_out,
    )


def read_bedrock_rows(
    source: BillingSource,
    start: dt.date,
    end: dt.date,
    storage_options: dict[str, Any] | None = None,
    long_from: dt.date | None = None,
) -> BillingRead:
    """The Bedrock rows whose usage starts on the days `start` (inclusive) to `end` (exclusive), RAW_SCHEMA; with
    `long_from`, also the rows that started from that day on and still run at `start` (rows longer than a day).

    Only files of the billing periods holding those days are opened.
    """
    periods = billing_periods(start, end)
    fmt, files, fs = discover(source, periods, storage_options)
    lo = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    hi = dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC)
    early = dt.datetime.combine(long_from, dt.time(), tzinfo=dt.UTC) if long_from is not None else None
    frames = []
    quarantined: list[pl.DataFrame] = []
    excluded: list[pl.DataFrame] = []
    columns: dict[str, dict[str, str]] = {}
    for f in files:
        df, names, bad, left_out = read_file(fs, f, lo, hi, early)
        columns[f.uri] = names
        frames.append(df)
        quarantined.append(bad)
        excluded.append(left_out)
    rows = pl.concat(frames) if frames else pl.DataFrame(schema=RAW_SCHEMA)
    bad_rows = pl.concat(quarantined) if quarantined else validate.empty_quarantine()
    return BillingRead(
        rows=rows,
        format=fmt,
        files=files,
        columns=columns,
        quarantined=bad_rows,
        marketplace_excluded=pl.concat(excluded) if excluded else pl.DataFrame(schema=EXCLUDED_SCHEMA),
    )
