"""The single daily partitioning (UTC) shared by every asset and check."""

from __future__ import annotations

import datetime as dt

from dagster import DailyPartitionsDefinition


def daily_partitions(start_date: dt.date) -> DailyPartitionsDefinition:
    """UTC days from the configured start date; a day becomes a partition once it has ended."""
    return DailyPartitionsDefinition(start_date=start_date.isoformat(), timezone="UTC")


def partition_day(key: str) -> dt.date:
    """A partition key (`YYYY-MM-DD`) as a date."""
    return dt.date.fromisoformat(key)
