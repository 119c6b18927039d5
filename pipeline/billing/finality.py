"""Is a billing period final? The billing refresh re-reads a month until its invoice exists
(docs/formats/billing-exports.md §4.11).

AWS finalizes a month's usage charges once the invoice is issued; the CUR's `bill_invoice_id` (FOCUS 1.2
`InvoiceId`) is empty until then. FOCUS 1.0 has no invoice id at all, so such a month counts as final once it
closed and `billing_lag_days` passed (nothing better to wait for). Then refunds and credits can still restate a closed
month (`RefreshClosedReports`), which is why the schedule still looks at it weekly in the month after close.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Literal

import polars as pl

from pipeline import warehouse

Finality = Literal["open", "invoiced", "closed_without_invoice_id"]


def month_days(period: str) -> list[dt.date]:
    """Every day of a `YYYY-MM` billing period."""
    year, month = (int(x) for x in period.split("-"))
    return [dt.date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]


def invoice_ids(warehouse_root: str, period: str) -> tuple[int, int]:
    """(rows, rows with an invoice id) of a period's `billing_line_items` in the warehouse.

    A partition written before the `invoice_id` column existed counts as rows without one.
    """
    rows = with_id = 0
    for day in month_days(period):
        for f in warehouse.partition_files(warehouse_root, "billing_line_items", day):
            lf = pl.scan_parquet(f)
            names = lf.collect_schema().names()
            if "invoice_id" not in names:
                rows += lf.select(pl.len()).collect().item()
                continue
            counts = lf.select(pl.len(), pl.col("invoice_id").is_not_null().sum()).collect().row(0)
            rows += int(counts[0])
            with_id += int(counts[1] or 0)
    return rows, with_id


def finality(warehouse_root: str, period: str, today: dt.date, lag_days: int) -> Finality:
    """`invoiced` when a row of the period carries an invoice id; `closed_without_invoice_id` when none does but
    the month ended more than `lag_days` ago (FOCUS 1.0, or an export without the column); else `open`."""
    last = month_days(period)[-1]
    if today <= last:
        return "open"
    _, with_id = invoice_ids(warehouse_root, period)
    if with_id:
        return "invoiced"
    return "closed_without_invoice_id" if today > last + dt.timedelta(days=lag_days) else "open"
