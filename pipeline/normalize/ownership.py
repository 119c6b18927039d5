"""Which UTC day owns a record, given where it was delivered: the rule that keeps days independent.

A day reads its own folders (or CloudWatch events) plus a window around them: the next day's first
`late_hours` and the previous day's last `early_hours` (config `sources.invocation_logs`). A record belongs to the
UTC day of its own timestamp, and that day keeps it if its window covers the record's delivery (the S3 hour folder
or the CloudWatch event time). A record whose own day's window does not cover its delivery (70 minutes late with
`late_hours: 1`, an absurd timestamp such as `9999-12-31`, a day before `start_date`) can never be read by its
owner: it is a reject of the day it was delivered to, which reads it for certain. So every record lands in exactly
one partition or one reject, whichever day's run sees it first, and each day's run can be done alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)
_DAY = dt.timedelta(days=1)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Window:
    """The reading window of every day: hours before and after it, and the first day there is a partition for."""

    late_hours: int = 2
    early_hours: int = 1
    first_day: dt.date | None = None

    def covers(self, owner: dt.date, delivery: dt.datetime) -> bool:
        """Whether `owner`'s run reads a delivery at `delivery` (an hour folder's start or an event time)."""
        if self.first_day is not None and owner < self.first_day:
            return False
        try:
            start = _midnight(owner) - dt.timedelta(hours=self.early_hours)
            return start <= delivery < start + _DAY + dt.timedelta(hours=self.early_hours + self.late_hours)
        except OverflowError:  # a day at the ends of time (year 1 or 9999) covers no real delivery
            return False

    def owner_of(self, record_time: dt.datetime | None, delivery: dt.datetime) -> tuple[dt.date, bool]:
        """(day that owns a record, whether as a row): its own day when that day's window covers the delivery,
        else the delivery's day, as a reject."""
        if record_time is not None:
            own = record_time.date()
            if self.covers(own, delivery):
                return own, True
        return delivery.date(), False

    def kept_range_us(self, delivery: dt.datetime) -> tuple[int, int]:
        """Record times (microseconds since the epoch, half-open) whose day covers `delivery`: the days that cover
        one delivery are consecutive, so this is one range (empty when none does)."""
        days = [delivery.date() + dt.timedelta(days=k) for k in range(-2, 3)]
        owners = [d for d in days if self.covers(d, delivery)]
        if not owners:
            return 0, 0
        lo = (_midnight(owners[0]) - _EPOCH) // _MICRO
        hi = (_midnight(owners[-1]) + _DAY - _EPOCH) // _MICRO
        return lo, hi
