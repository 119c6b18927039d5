"""What a usual day looks like for one series of daily spend: a weekday pattern times a recent level.

Both the anomaly detector and the month-end forecast read a key's history the same way. Spend varies by
multiples, not by dollars (a day twice the usual is as likely for a $10 key as for a $10K one), so the series is
read on a log scale, `u = ln(cost + offset)`, with an offset (a dollar by default) so zero-spend days count
without dominating:

* **Weekday effect.** For each weekday, the median of that weekday's `u` minus the median of all days (0 where a
  weekday has fewer than two days). Medians, not means: one spike last Tuesday does not make every Tuesday
  look expensive. In dollars this is a factor: Saturday at 0.3 × a usual day.
* **Recent level.** The median of the last seven days after removing their weekday effect: a level shift (a team
  onboarded last week) is followed within days, a one-day spike is ignored.
* **Spread.** 1.4826 × the median absolute deviation of up to 56 deseasonalised days (the MAD scaled to a normal
  standard deviation), at least 0.1 (10 %), widened by the uncertainty of the two medians it is measured against
  (a median of n days varies like π/2 · σ²/n).

Expected value for a day = exp(level + that weekday's effect) − offset. It is deliberately simple: a handful of
medians a reader can recompute, robust to the outliers the detector is looking for, and cheap for many keys.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

MAD_TO_SIGMA = 1.4826
"""The MAD of normally distributed values times this is their standard deviation."""
LEVEL_DAYS = 7
SPREAD_DAYS = 56
MIN_SPREAD = 0.10
WEEKDAY_RANGE = (math.log(0.2), math.log(5.0))
"""A weekday is at most 5× (at least 0.2×) a usual day, so an almost always empty weekday cannot turn a small
change into a huge multiple."""


@dataclass(frozen=True)
class Baseline:
    """A series' usual day, on the log scale: `expected(day)`, `band(day, k)` and `score(day, cost)`."""

    level: float
    effects: tuple[float, ...]  # Monday .. Sunday, added to the level
    spread: float  # of one deseasonalised day, widened for the medians' own uncertainty
    residuals: tuple[float, ...]  # deseasonalised days minus the level (the last SPREAD_DAYS)
    recent: tuple[float, ...]  # the deseasonalised values the level is the median of
    offset: float

    def centre(self, day: dt.date) -> float:
        return self.level + self.effects[day.weekday()]

    def dollars(self, u: float) -> float:
        return max(math.exp(u) - self.offset, 0.0)

    def expected(self, day: dt.date) -> float:
        return self.dollars(self.centre(day))

    def band(self, day: dt.date, sigmas: float) -> tuple[float, float]:
        c = self.centre(day)
        return self.dollars(c - sigmas * self.spread), self.dollars(c + sigmas * self.spread)

    def score(self, day: dt.date, cost: float) -> float:
        if self.spread <= 0:
            return 0.0
        return (math.log(max(cost, 0.0) + self.offset) - self.centre(day)) / self.spread


def weekday_effects(days: Sequence[dt.date], u: Sequence[float]) -> tuple[float, ...]:
    """Median of each weekday minus the median of all days, on the log scale (0 where there is too little)."""
    overall = median(u) if u else 0.0
    effects = []
    for w in range(7):
        same = [v for d, v in zip(days, u, strict=True) if d.weekday() == w]
        if len(same) < 2:
            effects.append(0.0)
            continue
        effects.append(min(max(median(same) - overall, WEEKDAY_RANGE[0]), WEEKDAY_RANGE[1]))
    return tuple(effects)


def baseline(days: Sequence[dt.date], values: Sequence[float], offset: float = 1.0) -> Baseline:
    """The baseline of a series given oldest first (`days[i]` spent `values[i]`; zeros are zero-spend days)."""
    if not values:
        return Baseline(math.log(offset), (0.0,) * 7, 0.0, (), (), offset)
    u = [math.log(max(float(v), 0.0) + offset) for v in values]
    effects = weekday_effects(days, u)
    z = [v - effects[d.weekday()] for d, v in zip(days, u, strict=True)]
    recent = z[-LEVEL_DAYS:]
    level = median(recent)
    window = z[-SPREAD_DAYS:]
    centre = median(window)
    sigma = max(MAD_TO_SIGMA * median([abs(v - centre) for v in window]), MIN_SPREAD)
    per_weekday = max(1, len(days) // 7)
    spread = sigma * math.sqrt(1 + math.pi / 2 / len(recent) + math.pi / 2 / per_weekday)
    return Baseline(level, effects, spread, tuple(v - level for v in window), tuple(recent), offset)
