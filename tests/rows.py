"""One builder for the table rows tests make by hand, so a new column or default changes one place.

A row starts from every column of its `schemas.TABLES` entry (null), then the defaults of a plain successful
on-demand call, then the test's overrides; a frame of such rows is conformed to the contract, as a writer would.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from pipeline import schemas

HAIKU3 = "anthropic.claude-3-haiku-20240307-v1:0"

INVOCATION_DEFAULTS: dict[str, Any] = {
    "date": dt.date(2026, 2, 1),
    "region": "us-east-1",
    "model_id": HAIKU3,
    "routing": "in_region",
    "status": "success",
}
"""What a test that does not care gets: a successful in-Region call to Claude 3 Haiku in us-east-1."""


def invocation_row(**overrides: Any) -> dict[str, Any]:
    """An `invocations` row; `base_model_id` follows `model_id` unless given."""
    row: dict[str, Any] = dict.fromkeys(schemas.TABLES["invocations"])
    row.update(INVOCATION_DEFAULTS)
    row.update(overrides)
    if "base_model_id" not in overrides:
        row["base_model_id"] = row["model_id"]
    return row


def invocations(*rows: dict[str, Any], **defaults: Any) -> pl.DataFrame:
    """An `invocations` frame from partial rows (request ids `r0`, `r1`, … unless given); `defaults` apply to
    every row, under its own keys."""
    full = [invocation_row(**{"request_id": f"r{i}", **defaults, **r}) for i, r in enumerate(rows)]
    return schemas.conform(pl.DataFrame(full, infer_schema_length=None), schemas.INVOCATIONS)
