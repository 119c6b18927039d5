"""Hourly `AWS/Bedrock` runtime metrics per `ModelId` for one UTC day, read with `GetMetricData`.

Which model ids: `ListMetrics` (namespace `AWS/Bedrock`, dimension `ModelId`, paginated) plus every `modelId` the
day's logs used. The second half matters for backfills: `ListMetrics` only returns metrics with data in the last
two weeks, so an older day is queried at least for the models its logs name (a model seen only in metrics more
than two weeks ago cannot be found; docs/completeness.md says so).

How, within CloudWatch's limits: at most 500 `MetricDataQueries` per request (ten metrics per model, so 50 models
a request), one-hour period, statistic `Sum`, `StartTime`/`EndTime` on whole hours (CloudWatch rounds a start
older than 15 days down to 5 minutes and older than 63 days down to the hour; whole hours are unaffected and
hourly data points are kept for 455 days), and `NextToken` followed to the end: a page may end part-way through a
query's data points (`StatusCode` `PartialData`), so values are appended per query id across pages. A query that
ends `Forbidden` or `InternalError` fails the read with its message, never a silent zero.

Cache metrics have two spellings in the wild (docs/formats/invocation-logs.md §6.1): the AWS table says
`CacheReadInputTokens` and
`CacheWriteInputTokens`, dashboards and the AWS ML blog use `CacheReadInputTokenCount`/`…WriteInputTokenCount`.
Both are queried; per model and hour the larger is kept (one of them is normally absent; where both exist they are
taken to count the same tokens, so adding them would double).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.normalize.model_ids import resolve_model_id
from pipeline.sources.s3_logs import SourceError

NAMESPACE = "AWS/Bedrock"
PERIOD_S = 3600
MAX_QUERIES = 500
METRIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "invocations": ("Invocations",),
    "input_tokens": ("InputTokenCount",),
    "output_tokens": ("OutputTokenCount",),
    "cache_read_input_tokens": ("CacheReadInputTokens", "CacheReadInputTokenCount"),
    "cache_write_input_tokens": ("CacheWriteInputTokens", "CacheWriteInputTokenCount"),
    "throttles": ("InvocationThrottles",),
    "client_errors": ("InvocationClientErrors",),
    "server_errors": ("InvocationServerErrors",),
}


@dataclass(frozen=True)
class MetricFamily:
    """One endpoint's metrics: namespace, the dimension naming the model, metric names per column, query prefix."""

    endpoint: str
    namespace: str
    dimension: str
    columns: dict[str, tuple[str, ...]]
    prefix: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for names in self.columns.values() for n in names)


RUNTIME = MetricFamily("runtime", NAMESPACE, "ModelId", METRIC_COLUMNS, "m")
MANTLE = MetricFamily(
    "mantle",
    "AWS/BedrockMantle",
    "Model",
    {
        "invocations": ("Inferences",),
        "input_tokens": ("TotalInputTokens",),
        "output_tokens": ("TotalOutputTokens",),
        "client_errors": ("InferenceClientErrors",),
    },
    "x",
)
"""bedrock-mantle (the OpenAI-compatible endpoint) publishes under its own namespace at Account, Project, Model and
Project+Model level; the Model-only series are read. Its calls are never in invocation logs, so these rows are
compared with the bill's mantle rows, not with logs (`log_completeness` status `not_logged_by_design`;
docs/formats/invocation-logs.md §6.2)."""


def metric_model_key(model_id: str, app_profiles: tuple[tuple[str, str], ...] = ()) -> str:
    """The `base_model_id` a metric's `ModelId` stands for, resolved like a logged `modelId`.

    Profile ids (`us.anthropic…`, `global.…`) and ARNs resolve as in the logs; a `+suffix` (such as
    `+latency-optimized`) names a variant of the same model and is dropped first. An id that resolves to no
    foundation model (provisioned, unconfigured application profile) keys as itself, as in `daily_usage_by_model`.
    """
    plain = model_id.split("+", 1)[0] if not model_id.startswith("arn:") else model_id
    resolved = resolve_model_id(plain, app_profiles)
    return resolved.base_model_id or model_id


def list_model_ids(cw: Any, family: MetricFamily = RUNTIME) -> set[str]:
    """Model ids with metrics of `family` (data in the last two weeks), over every page."""
    ids: set[str] = set()
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Namespace": family.namespace, "Dimensions": [{"Name": family.dimension}]}
        if token:
            kwargs["NextToken"] = token
        resp = cw.list_metrics(**kwargs)
        for m in resp.get("Metrics", []):
            dims = m.get("Dimensions", [])
            # Image metrics also carry ImageSize/BucketedStepSize; the per-model totals are the ModelId-only series.
            if m.get("MetricName") in family.names and len(dims) == 1 and dims[0]["Name"] == family.dimension:
                ids.add(dims[0]["Value"])
        token = resp.get("NextToken")
        if not token:
            return ids


def _queries(model_ids: list[str], family: MetricFamily = RUNTIME) -> list[tuple[dict[str, Any], str, str]]:
    out = []
    for mi, model in enumerate(model_ids):
        for ni, name in enumerate(family.names):
            query = {
                "Id": f"{family.prefix}{mi}_{ni}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": family.namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": family.dimension, "Value": model}],
                    },
                    "Period": PERIOD_S,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            out.append((query, model, name))
    return out


def get_day_datapoints(
    cw: Any, day: dt.date, model_ids: Iterable[str], family: MetricFamily = RUNTIME
) -> dict[tuple[str, str, int], float]:
    """Sum per (model id, metric name, hour of day) for the UTC day, in request batches of ≤ 500 queries."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    queries = _queries(sorted(set(model_ids)), family)
    values: dict[tuple[str, str, int], float] = defaultdict(float)
    for i in range(0, len(queries), MAX_QUERIES):
        batch = queries[i : i + MAX_QUERIES]
        by_id = {q["Id"]: (model, name) for q, model, name in batch}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "MetricDataQueries": [q for q, _, _ in batch],
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
            }
            if token:
                kwargs["NextToken"] = token
            resp = cw.get_metric_data(**kwargs)
            for r in resp.get("MetricDataResults", []):
                if r.get("StatusCode") in ("Forbidden", "InternalError"):
                    msgs = "; ".join(m.get("Value", "") for m in r.get("Messages", []))
                    raise SourceError(f"GetMetricData {by_id[r['Id']][1]}: {r['StatusCode']} {msgs}".strip())
                model, name = by_id[r["Id"]]
                for t, v in zip(r.get("Timestamps", []), r.get("Values", []), strict=True):
                    t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
                    if start <= t < end:
                        values[(model, name, t.astimezone(dt.UTC).hour)] += float(v)
            token = resp.get("NextToken")
            if not token:
                break
    return dict(values)


def datapoints_to_rows(
    points: dict[tuple[str, str, int], float],
    day: dt.date,
    account_id: str,
    region: str,
    read_at: dt.datetime,
    app_profiles: tuple[tuple[str, str], ...] = (),
    family: MetricFamily = RUNTIME,
) -> list[dict[str, Any]]:
    """One row per model id × hour with the metric columns (cache: the larger of the two spellings); columns the
    family does not publish are 0."""
    cells: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for (model, name, hour), v in points.items():
        cells[(model, hour)][name] = v
    rows = []
    for (model, hour), named in sorted(cells.items()):
        row: dict[str, Any] = {
            "date": day,
            "account_id": account_id,
            "region": region,
            "model_id": model,
            "base_model_id": metric_model_key(model, app_profiles),
            "hour": hour,
            "read_at": read_at,
            "endpoint": family.endpoint,
        }
        for col in METRIC_COLUMNS:
            present = [named[n] for n in family.columns.get(col, ()) if n in named]
            row[col] = int(round(max(present))) if present else 0
        rows.append(row)
    return rows


def read_day_metrics(
    cw: Any,
    day: dt.date,
    account_id: str,
    region: str,
    logged_model_ids: Iterable[str],
    read_at: dt.datetime,
    app_profiles: tuple[tuple[str, str], ...] = (),
) -> list[dict[str, Any]]:
    """The day's hourly metric rows for one account × region (see the module docstring), `AWS/Bedrock` and then
    `AWS/BedrockMantle` (whose models are never in the logs, so only listed ones are read)."""
    try:
        ids = list_model_ids(cw) | set(logged_model_ids)
        points = get_day_datapoints(cw, day, ids)
        mantle_ids = list_model_ids(cw, MANTLE)
        mantle = get_day_datapoints(cw, day, mantle_ids, MANTLE) if mantle_ids else {}
    except (ClientError, BotoCoreError) as exc:
        raise SourceError(f"CloudWatch metrics of {account_id} in {region}: {exc}") from exc
    return datapoints_to_rows(points, day, account_id, region, read_at, app_profiles) + datapoints_to_rows(
        mantle, day, account_id, region, read_at, app_profiles, MANTLE
    )
