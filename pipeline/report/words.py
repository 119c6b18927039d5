"""Words for people that only the report needs: shares as percentages and model ids short enough for a legend.

Money is `pipeline.text.usd` / `signed_usd`, the one formatter every surface shares.
"""

from __future__ import annotations

import math
import re


def pct(x: float | None, digits: int = 0) -> str:
    """A share given as a fraction (0.134 → 13%)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x * 100:,.{digits}f}%"


def short_model(model_id: str | None) -> str:
    """A model id short enough for a legend: no version suffix or release date (`anthropic.claude-3-haiku`)."""
    if not model_id:
        return "unknown"
    if model_id.startswith("arn:"):  # imported or custom model ARNs: the resource name is what people know
        model_id = model_id.rsplit("/", 1)[-1]
    name = re.sub(r"-v\d+(:\d+)?$", "", model_id)
    name = re.sub(r"-\d{8}", "", name)
    return name
