"""`ledger.yaml`: the one configuration file, validated up front so a typo fails at load, not mid-run.

The keys are part of the contract (docs/configuration.md). Unknown keys are errors (a misspelt `cost_centre`
silently ignored would mean unattributed spend). Relative paths in the file are resolved against the file's own
folder, so a config works from any working directory.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CONFIG_ENV = "LEDGER_CONFIG"
DEFAULT_START_DATE = "2026-01-01"

APP_PROFILE_ARN = re.compile(
    r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):application-inference-profile/(?P<id>[A-Za-z0-9]+)$"
)


class ConfigError(ValueError):
    """A configuration problem, with a message that names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CloudWatchSource(_Strict):
    log_group: str
    region: str | None = None


class BillingSource(_Strict):
    uri: str
    format: Literal["cur", "cur2", "focus", "auto"] = "auto"


class DiscoverAccount(_Strict):
    account_id: str = Field(pattern=r"^\d{12}$")
    role_arn: str | None = None
    """Assumed through STS for the Bedrock and CloudWatch calls of this account; none = the pipeline's own role."""


class Discover(_Strict):
    """Find invocation-log destinations from Bedrock's own logging configuration, and read `AWS/Bedrock` metrics.

    For every account × region: `bedrock:GetModelInvocationLoggingConfiguration` (the S3 bucket/prefix and the
    CloudWatch log group become sources, beside the explicit lists) and, with `metrics`, CloudWatch
    `GetMetricData` for `log_completeness` and the throttle counts of `daily_usage_by_model`.
    """

    regions: list[str] = Field(min_length=1)
    accounts: list[DiscoverAccount] = Field(min_length=1)
    metrics: bool = True
    min_coverage: float = Field(default=0.99, ge=0, le=1)
    """The `log_completeness` check fails when a day's logs cover less than this share of the metric invocations."""
    snapshot: str | None = None
    """A folder of recorded AWS answers (the demo writes one) read instead of AWS, through the same calls."""


class InvocationLogSources(_Strict):
    s3: list[str] = Field(default_factory=list)
    cloudwatch: list[CloudWatchSource] = Field(default_factory=list)
    late_hours: int = Field(default=2, ge=0, le=24)
    """A day also reads the next day's first `late_hours` hour folders (and CloudWatch events that late): records
    of the last minutes of a day are delivered after midnight."""
    early_hours: int = Field(default=1, ge=0, le=24)
    """A day also reads the previous day's last `early_hours` hour folders (records stamped with an offset or a
    clock slightly ahead)."""
    discover: Discover | None = None


class BatchJobSource(_Strict):
    """Bedrock batch inference jobs of one Region: their metadata from the Bedrock API (`ListModelInvocationJobs`,
    `GetModelInvocationJob`, `ListTagsForResource`) and their output folders under `output_s3`.

    A job's folder is found by its `manifest.json.out` wherever it sits under `output_s3`; jobs whose output lies
    outside every configured prefix are still listed, without tokens (docs/bill-coverage.md, "Batch inference jobs")."""

    output_s3: str
    """`s3://bucket/prefix` (or a local folder) the jobs write their output folders under."""
    region: str
    accounts: list[DiscoverAccount] = Field(default_factory=list)
    """Accounts whose jobs to list (a `role_arn` is assumed for that account); none = the pipeline's own account."""
    lookback_days: int = Field(default=14, ge=1, le=90)
    """How far before a day jobs are listed by submit time: a job runs at most a week, plus its time queued."""
    read_records: Literal["auto", "always", "never"] = "auto"
    """Read the `*.jsonl.out` records: `auto` only when the manifest lacks a token count."""
    snapshot: str | None = None
    """A folder of recorded AWS answers (the demo writes one) read instead of AWS, through the same calls."""


class Sources(_Strict):
    invocation_logs: InvocationLogSources = Field(default_factory=InvocationLogSources)
    billing: list[BillingSource] = Field(default_factory=list)
    batch_jobs: list[BatchJobSource] = Field(default_factory=list)


class PricingSync(_Strict):
    enabled: bool = False
    """When on, a daily schedule reads the AWS Price List and writes the synced catalog under the warehouse
    (`<warehouse>/_catalog/prices.csv`), which prices the following runs (bundled < synced < overrides)."""


class Pricing(_Strict):
    overrides: str | None = None
    default_tier: Literal["standard", "batch", "flex", "priority"] = "standard"
    endpoint_region: Literal["us-east-1", "ap-south-1"] = "us-east-1"
    """Where the AWS Price List API is served (only these two Regions serve it; prices cover every Region)."""
    sync: PricingSync = Field(default_factory=PricingSync)


class InferenceProfile(_Strict):
    model_id: str
    tags: dict[str, str] = Field(default_factory=dict)


class ProvisionedModel(_Strict):
    """A Provisioned Throughput model: the foundation model it serves and who owns it when no call is logged."""

    model_id: str
    tags: dict[str, str] = Field(default_factory=dict)


def _check_glob(v: str, what: str) -> str:
    if not v.strip():
        raise ValueError(f"{what} glob is empty")
    if v.count("[") != v.count("]"):
        raise ValueError(f"{what} glob {v!r} has unbalanced brackets")
    try:
        re.compile(fnmatch.translate(v))
    except re.error as exc:  # pragma: no cover - fnmatch.translate rarely yields bad regexes
        raise ValueError(f"{what} glob {v!r} is not valid: {exc}") from exc
    return v


class PrincipalRule(_Strict):
    match: str
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("match")
    @classmethod
    def _glob_compiles(cls, v: str) -> str:
        return _check_glob(v, "principal")


class BatchJobRule(_Strict):
    """Owner tags for batch inference jobs whose name matches a glob (`nightly-*`), for jobs without tags."""

    match: str
    tags: dict[str, str] = Field(min_length=1)

    @field_validator("match")
    @classmethod
    def _glob_compiles(cls, v: str) -> str:
        return _check_glob(v, "batch job name")


AttributionDimension = Literal["user", "cost_center", "application", "environment"]
"""The four things a call is attributed to (the `attribution.request_metadata_keys` keys)."""


def _default_metadata_keys() -> dict[AttributionDimension, list[str]]:
    return {
        "user": ["userId", "user_id", "user"],
        "cost_center": ["costCenter", "cost_center", "CostCenter"],
        "application": ["applicationId", "application", "app"],
        "environment": ["environment", "env"],
    }


class Attribution(_Strict):
    request_metadata_keys: dict[AttributionDimension, list[str]] = Field(default_factory=_default_metadata_keys)
    inference_profiles: dict[str, InferenceProfile] = Field(default_factory=dict)
    principals: list[PrincipalRule] = Field(default_factory=list)
    lookup_inference_profiles: bool = False
    """Look application inference profiles up live with boto3 (get_inference_profile, list_tags_for_resource)."""
    provisioned_models: dict[str, ProvisionedModel] = Field(default_factory=dict)
    """Provisioned-model ARN -> base model and owner tags (reconciliation and chargeback of PT hours)."""
    batch_job_rules: list[BatchJobRule] = Field(default_factory=list)
    """Job-name glob -> owner tags for batch inference jobs without tags of their own (first match wins)."""

    @field_validator("inference_profiles")
    @classmethod
    def _arns_valid(cls, v: dict[str, InferenceProfile]) -> dict[str, InferenceProfile]:
        for arn in v:
            if not APP_PROFILE_ARN.match(arn):
                raise ValueError(
                    f"{arn!r} is not an application inference profile ARN "
                    "(arn:aws:bedrock:<region>:<account>:application-inference-profile/<id>)"
                )
        return v

    @model_validator(mode="after")
    def _fill_keys(self) -> Attribution:
        defaults = _default_metadata_keys()
        merged: dict[AttributionDimension, list[str]] = {**defaults, **self.request_metadata_keys}
        object.__setattr__(self, "request_metadata_keys", merged)
        return self


class Budget(_Strict):
    cost_center: str
    monthly_usd: float = Field(gt=0)


class Tolerances(_Strict):
    """How far an estimate may drift from the bill before a row stops being `matched`."""

    cost_pct: float = Field(default=0.02, ge=0)
    cost_usd: float = Field(default=0.01, ge=0)
    tokens_pct: float = Field(default=0.01, ge=0)
    billing_lag_days: int = Field(default=2, ge=0)
    rate_tolerance_pct: float = Field(default=0.005, ge=0)
    """A billed unit rate further than this (fraction) from the catalog rate is `price_mismatch` at any amount."""
    round_cents: bool = False
    """Round chargeback rows to cents by largest remainder, so the rounded rows still sum to the invoice."""


class Quality(_Strict):
    max_reject_share: float = Field(default=0.01, ge=0, le=1)
    max_unpriced_share: float = Field(default=0.0, ge=0, le=1)
    max_unattributed_share: float = Field(default=0.5, ge=0, le=1)
    max_unallocated_share: float = Field(default=0.1, ge=0, le=1)
    """Share of a day's billed Bedrock cost that may stay `unallocated` (no owner anywhere) before `bill_coverage`'s
    check fails."""
    max_object_bytes: int = Field(default=2 * 2**30, ge=1)
    """Decompressed bytes read from one log object; the rest is one `object_too_large` reject."""
    max_line_bytes: int = Field(default=64 * 2**20, ge=1)
    """Bytes of one line (one record); a longer line is skipped as a `line_too_long` reject."""
    max_rejects_per_object: int = Field(default=1000, ge=0)
    """Rejects kept per object; the rest are counted in one `too_many_rejects` reject."""
    max_tokens_per_call: int = Field(default=10_000_000, ge=1)
    """Tokens of one call (input + output + cache read + cache write); more is an `implausible_tokens` reject,
    never priced: no Bedrock model takes a context near it."""
    max_latency_ms: int = Field(default=3_600_000, ge=1)
    """Latency of one call; a longer one is stored as null (and counted), the call itself kept."""
    max_cost_per_call_usd: float = Field(default=1_000.0, gt=0)
    """Estimated cost of one call; above it the call is kept unpriced (`priced = false`, `implausible_cost`)."""


class Schedule(_Strict):
    daily_hour_utc: int = Field(default=6, ge=0, le=23)
    billing_refresh_hour_utc: int = Field(default=8, ge=0, le=23)
    billing_refresh_days: int = Field(default=7, ge=1, le=62)


DEFAULT_ALERT_CHECKS = (
    "budget_status:within_budget",
    "budget_status:forecast_within_budget",
    "cost_reconciliation:within_tolerance",
    "log_completeness:*",
    "invocations:rejects_within_threshold",
    "cost_anomalies:anomalies_below_severity",
)


class Alerts(_Strict):
    """Failed checks that matter, sent to people (off by default). See docs/report-and-alerts.md."""

    enabled: bool = False
    sns_topic_arn: str | None = None
    slack_webhook_url: str | None = None
    """Prefer `slack_webhook_url_env`: a webhook URL is a secret and ledger.yaml is often committed."""
    slack_webhook_url_env: str | None = None
    """Name of the environment variable that holds the Slack incoming-webhook URL."""
    report_base_url: str | None = None
    """Where `<warehouse>/reports/` is served (e.g. a CloudFront URL); links use the report's own URI otherwise."""
    checks: list[str] = Field(default_factory=lambda: list(DEFAULT_ALERT_CHECKS))
    """`asset:check` names (`asset:*` = every check of the asset) whose failures are sent."""
    minimum_interval_seconds: int = Field(default=300, ge=30)

    @model_validator(mode="after")
    def _destination_when_enabled(self) -> Alerts:
        if self.enabled and not (self.sns_topic_arn or self.slack_webhook_url or self.slack_webhook_url_env):
            raise ValueError("alerts are enabled but name no destination (sns_topic_arn or slack_webhook_url[_env])")
        for name in self.checks:
            if name.count(":") != 1 or not all(name.split(":")):
                raise ValueError(f"alert check {name!r} is not `asset:check` (or `asset:*`)")
        return self


class Foresight(_Strict):
    """`foresight:` — anomalies, the month-end forecast and savings (see docs/foresight.md)."""

    min_history_days: int = Field(default=14, ge=1, le=56)
    """A key with fewer days of history than this is not judged (kind `insufficient_history`, never an alert)."""
    min_user_cost_usd: float = Field(default=5.0, ge=0)
    """Users are judged when their cost today or their median day reaches this, or when they are among the
    `top_users` by spend over the last 28 days; the long tail of tiny users would only add noise."""
    top_users: int = Field(default=1000, ge=0)
    band_sigmas: float = Field(default=4.5, gt=0)
    """How many robust standard deviations (1.4826 × MAD) from the expected value make an anomaly."""
    min_change_usd: float = Field(default=1.0, ge=0)
    """A day is an anomaly only if it also differs from the expected value by at least this many dollars."""
    alert_severity: str = "medium"
    """The `cost_anomalies` check fails (and the alert sensor sends it) on anomalies of this severity or above:
    `low`, `medium` or `high`."""
    interval: float = Field(default=0.8, gt=0, lt=1)
    """The forecast interval's coverage (0.8 = the 10th to the 90th percentile of simulated month ends)."""
    long_output_tokens: int = Field(default=300, ge=1)
    """Savings: a call with at most this many output tokens counts as short (a candidate for a smaller model)."""
    batch_min_input_tokens: int = Field(default=2000, ge=0)
    """Savings: a non-streaming call with at least this many input tokens, or made off-hours, looks asynchronous."""

    @field_validator("alert_severity")
    @classmethod
    def _known_severity(cls, value: str) -> str:
        from pipeline.vocabulary import ANOMALY_SEVERITIES

        if value not in ANOMALY_SEVERITIES:
            raise ValueError(f"foresight.alert_severity {value!r} is not one of {', '.join(ANOMALY_SEVERITIES)}")
        return value


class GlueCatalog(_Strict):
    """`glue:` — register the warehouse's tables in this Glue database every day (optional; see docs/outputs.md)."""

    database: str = Field(min_length=1, max_length=255, pattern=r"^[a-z0-9_]+$")
    location: str | None = None
    """S3 location of the warehouse when `warehouse` is not itself an `s3://` URI (e.g. a synced copy)."""


class LedgerConfig(_Strict):
    warehouse: str = "./warehouse"
    start_date: dt.date = dt.date.fromisoformat(DEFAULT_START_DATE)
    sources: Sources = Field(default_factory=Sources)
    pricing: Pricing = Field(default_factory=Pricing)
    attribution: Attribution = Field(default_factory=Attribution)
    budgets: list[Budget] = Field(default_factory=list)
    reconciliation: Tolerances = Field(default_factory=Tolerances)
    quality: Quality = Field(default_factory=Quality)
    schedules: Schedule = Field(default_factory=Schedule)
    glue: GlueCatalog | None = None
    retain_bodies: Literal["none", "redacted"] = "none"
    """Prompt and response bodies are dropped unless set to `redacted`."""
    alerts: Alerts = Field(default_factory=Alerts)
    foresight: Foresight = Field(default_factory=Foresight)

    @model_validator(mode="after")
    def _unique_budgets(self) -> LedgerConfig:
        seen: set[str] = set()
        for b in self.budgets:
            if b.cost_center in seen:
                raise ValueError(f"budget for cost center {b.cost_center!r} is given twice")
            seen.add(b.cost_center)
        return self


def _resolve(base: Path, value: str) -> str:
    """Resolve a relative local path against the config's folder; leave URIs and absolute paths alone."""
    if "://" in value or os.path.isabs(value):
        return value
    return str((base / value).resolve())


def parse_config(data: dict[str, Any] | None, *, base_dir: Path | None = None, origin: str = "config") -> LedgerConfig:
    """Validate a config mapping. Errors name the key path and the origin file."""
    data = dict(data or {})
    try:
        cfg = LedgerConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling against docs/configuration.md)"
            lines.append(f"  {loc}: {msg}")
        raise ConfigError(f"{origin}: invalid configuration\n" + "\n".join(lines)) from None
    if base_dir is None:
        return cfg
    inv = cfg.sources.invocation_logs
    updates: dict[str, Any] = {"warehouse": _resolve(base_dir, cfg.warehouse)}
    new_sources = cfg.sources.model_copy(
        update={
            "invocation_logs": inv.model_copy(
                update={
                    "s3": [_resolve(base_dir, p) for p in inv.s3],
                    "discover": inv.discover
                    and inv.discover.model_copy(
                        update={"snapshot": inv.discover.snapshot and _resolve(base_dir, inv.discover.snapshot)}
                    ),
                }
            ),
            "billing": [b.model_copy(update={"uri": _resolve(base_dir, b.uri)}) for b in cfg.sources.billing],
            "batch_jobs": [
                b.model_copy(
                    update={
                        "output_s3": _resolve(base_dir, b.output_s3),
                        "snapshot": b.snapshot and _resolve(base_dir, b.snapshot),
                    }
                )
                for b in cfg.sources.batch_jobs
            ],
        }
    )
    updates["sources"] = new_sources
    if cfg.pricing.overrides:
        updates["pricing"] = cfg.pricing.model_copy(update={"overrides": _resolve(base_dir, cfg.pricing.overrides)})
    return cfg.model_copy(update=updates)


class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.safe_load` that refuses a key given twice in one mapping: YAML keeps the last silently, so a second
    `retain_bodies:` further down would quietly win over the one a reviewer read."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports unhashable keys itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | os.PathLike[str] | None = None) -> LedgerConfig:
    """Load `ledger.yaml` from `path`, else `$LEDGER_CONFIG`, else defaults (an empty pipeline)."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return LedgerConfig()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: configuration file not found (set --config or {CONFIG_ENV})")
    try:
        data = yaml.load(p.read_text(), Loader=_UniqueKeyLoader) or {}  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of keys")
    return parse_config(data, base_dir=p.resolve().parent, origin=str(p))
