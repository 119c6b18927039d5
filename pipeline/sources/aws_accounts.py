"""AWS clients per account × region for discovery and metrics: live (STS when a role is given) or a recording.

Discovery (`bedrock:GetModelInvocationLoggingConfiguration`) and metrics (`cloudwatch:GetMetricData`,
`ListMetrics`) are made in each configured account and region. `LiveAws` assumes the account's role through STS
when `role_arn` is set (credentials cached per role until shortly before they expire) and otherwise uses the
pipeline's own credentials (the standard chain; `AWS_ENDPOINT_URL` applies as everywhere else).

`SnapshotAws` answers the same calls from a folder of recorded answers (the demo's generator writes one; see
`pipeline.sample.aws_state`), so the demo runs the production code path without AWS. Its clock is the end of
the day being processed plus the recording's `replay_delay_hours`: a replay of a world in which the pipeline
ran shortly after each day, which is what makes the recorded configuration history and late deliveries
visible day by day.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.sources.s3_logs import SourceError

SNAPSHOT_FORMAT = "bedrock-ledger-aws-snapshot/1"
SESSION_NAME = "bedrock-ledger"


class AwsAccess(Protocol):
    """Where discovery and metrics calls go, and what time it is for them."""

    def client(self, service: str, account_id: str, region: str, role_arn: str | None = None) -> Any:
        """A boto3-shaped client for `service` in that account and region."""
        ...

    def now(self) -> dt.datetime:
        """The time the answers describe (UTC)."""
        ...

    def log_root(self, s3_uri: str) -> str:
        """Where a discovered S3 destination (`s3://bucket/prefix`) is read from."""
        ...


class LiveAws:
    """The real AWS (or `AWS_ENDPOINT_URL`): assumed-role sessions per role, clients created lazily."""

    def __init__(self) -> None:
        self._creds: dict[str, dict[str, Any]] = {}

    def _session(self, role_arn: str | None) -> boto3.session.Session:
        if not role_arn:
            return boto3.session.Session()
        creds = self._creds.get(role_arn)
        expiring = creds is not None and creds["Expiration"] - dt.timedelta(minutes=5) < dt.datetime.now(dt.UTC)
        if creds is None or expiring:
            try:
                resp = aws.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME)
            except (ClientError, BotoCoreError) as exc:
                raise SourceError(f"cannot assume {role_arn}: {exc}") from exc
            creds = resp["Credentials"]
            self._creds[role_arn] = creds
        return boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    def client(self, service: str, account_id: str, region: str, role_arn: str | None = None) -> Any:
        return self._session(role_arn).client(
            service, region_name=region, endpoint_url=aws.endpoint_url(service), config=aws.retry_config()
        )

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def log_root(self, s3_uri: str) -> str:
        return s3_uri


def access_for(snapshot: str | None, day: dt.date) -> AwsAccess:
    """Live AWS, or the recording at `snapshot` replayed as of shortly after `day`."""
    return SnapshotAws(snapshot, day) if snapshot else LiveAws()


# ---------------------------------------------------------------------------------------------------------------
# Recorded answers
# ---------------------------------------------------------------------------------------------------------------


def _ts(value: str | dt.datetime) -> dt.datetime:
    t = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


class _Error(ClientError):
    def __init__(self, code: str, message: str, op: str) -> None:
        super().__init__({"Error": {"Code": code, "Message": message}}, op)


class SnapshotAws:
    """A recording of Bedrock's logging configuration history and `AWS/Bedrock` metric data, replayed.

    Layout (all JSON as the AWS APIs speak it):
    `manifest.json` — `{"format", "replay_delay_hours", "buckets": {bucket: local folder}}`;
    `bedrock/<account>/<region>/logging-configuration/<YYYYMMDDTHHMMSSZ>.json` — the
    `GetModelInvocationLoggingConfiguration` answer as recorded at that time;
    `cloudwatch/<account>/<region>/metric-data.jsonl` — `PutMetricData` datums with their `Namespace`.
    """

    def __init__(self, root: str, day: dt.date) -> None:
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        try:
            self.manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise SourceError(f"{manifest_path}: not a readable AWS snapshot ({exc})") from exc
        if self.manifest.get("format") != SNAPSHOT_FORMAT:
            raise SourceError(f"{manifest_path}: unknown snapshot format {self.manifest.get('format')!r}")
        delay = dt.timedelta(hours=float(self.manifest.get("replay_delay_hours", 1)))
        self._now = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(days=1) + delay

    def now(self) -> dt.datetime:
        return self._now

    def client(self, service: str, account_id: str, region: str, role_arn: str | None = None) -> Any:
        folder = self.root / ("bedrock" if service == "bedrock" else "cloudwatch") / account_id / region
        if service == "bedrock":
            return _SnapshotBedrock(folder, self._now)
        if service == "cloudwatch":
            return _SnapshotCloudWatch(folder, self._now)
        raise SourceError(f"the AWS snapshot has no {service} answers")

    def log_root(self, s3_uri: str) -> str:
        bucket, _, prefix = s3_uri.removeprefix("s3://").partition("/")
        local = self.manifest.get("buckets", {}).get(bucket)
        if local is None:
            return s3_uri
        base = (self.root / local).resolve()
        return str(base / prefix) if prefix else str(base)


class _SnapshotBedrock:
    def __init__(self, folder: Path, now: dt.datetime) -> None:
        self.folder = folder / "logging-configuration"
        self.jobs_folder = folder / "model-invocation-jobs"
        self.now = now

    def _jobs(self) -> list[dict[str, Any]]:
        """Recorded batch jobs as of the replay time: `model-invocation-jobs/<job id>.json` holds the job's final
        `GetModelInvocationJob` answer (`job`) and its `ListTagsForResource` tags (`tags`). A job not submitted
        yet is absent; one that ends later is still `InProgress`, without its end time or counts."""
        out = []
        for f in sorted(self.jobs_folder.glob("*.json")) if self.jobs_folder.is_dir() else []:
            recorded = json.loads(f.read_text())
            job = dict(recorded["job"])
            if _ts(job["submitTime"]) > self.now:
                continue
            if job.get("endTime") and _ts(job["endTime"]) > self.now:
                job["status"] = "InProgress"
                for key in ("endTime", "totalRecordCount", "processedRecordCount", "successRecordCount"):
                    job.pop(key, None)
                job.pop("errorRecordCount", None)
            for key in ("submitTime", "endTime", "lastModifiedTime"):
                if job.get(key):
                    job[key] = _ts(job[key])
            out.append({"job": job, "tags": recorded.get("tags", [])})
        return out

    def list_model_invocation_jobs(self, **kw: Any) -> dict[str, Any]:
        after, before = kw.get("submitTimeAfter"), kw.get("submitTimeBefore")
        jobs = [
            j["job"]
            for j in self._jobs()
            if (after is None or j["job"]["submitTime"] > _ts(after))
            and (before is None or j["job"]["submitTime"] < _ts(before))
        ]
        start, size = int(kw.get("nextToken") or 0), int(kw.get("maxResults") or 1000)
        out: dict[str, Any] = {"invocationJobSummaries": jobs[start : start + size]}
        if start + size < len(jobs):
            out["nextToken"] = str(start + size)
        return out

    def get_model_invocation_job(self, jobIdentifier: str) -> dict[str, Any]:
        for j in self._jobs():
            if jobIdentifier in (j["job"]["jobArn"], j["job"]["jobArn"].rsplit("/", 1)[-1]):
                return j["job"]
        raise _Error("ResourceNotFoundException", f"no batch job {jobIdentifier}", "GetModelInvocationJob")

    def list_tags_for_resource(self, resourceARN: str) -> dict[str, Any]:
        for j in self._jobs():
            if j["job"]["jobArn"] == resourceARN:
                return {"tags": j["tags"]}
        raise _Error("ResourceNotFoundException", f"no resource {resourceARN}", "ListTagsForResource")

    def get_model_invocation_logging_configuration(self) -> dict[str, Any]:
        recorded = []
        for f in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            at = dt.datetime.strptime(f.stem, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
            if at <= self.now:
                recorded.append(f)
        if not recorded:
            return {}  # what AWS answers where logging was never configured
        return json.loads(recorded[-1].read_text())


class _SnapshotCloudWatch:
    """`ListMetrics` and `GetMetricData` (Sum only) over recorded datums, paginated like CloudWatch."""

    def __init__(self, folder: Path, now: dt.datetime) -> None:
        path = folder / "metric-data.jsonl"
        self.datums: list[dict[str, Any]] = []
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    d = json.loads(line)
                    d["Timestamp"] = _ts(d["Timestamp"])
                    if d["Timestamp"] <= now:  # what CloudWatch would have had at the replay time
                        self.datums.append(d)

    @staticmethod
    def _dims(d: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((x["Name"], x["Value"]) for x in d.get("Dimensions", [])))

    def list_metrics(self, Namespace: str, Dimensions: list[dict[str, str]] | None = None, **kw: Any) -> dict:
        seen: dict[tuple[str, tuple[tuple[str, str], ...]], None] = {}
        for d in self.datums:
            if d["Namespace"] != Namespace:
                continue
            if kw.get("MetricName") and d["MetricName"] != kw["MetricName"]:
                continue
            names = {n for n, _ in self._dims(d)}
            if any(f["Name"] not in names for f in Dimensions or []):
                continue
            seen[(d["MetricName"], self._dims(d))] = None
        metrics = [
            {"Namespace": Namespace, "MetricName": m, "Dimensions": [{"Name": n, "Value": v} for n, v in dims]}
            for m, dims in seen
        ]
        start = int(kw.get("NextToken") or 0)
        page = metrics[start : start + 500]
        out: dict[str, Any] = {"Metrics": page}
        if start + 500 < len(metrics):
            out["NextToken"] = str(start + 500)
        return out

    def get_metric_data(
        self,
        MetricDataQueries: list[dict[str, Any]],
        StartTime: dt.datetime,
        EndTime: dt.datetime,
        NextToken: str | None = None,
        MaxDatapoints: int = 100_800,
        **kw: Any,
    ) -> dict[str, Any]:
        if len(MetricDataQueries) > 500:
            raise _Error("ValidationError", "at most 500 MetricDataQueries per request", "GetMetricData")
        start, end = _ts(StartTime), _ts(EndTime)
        index: dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[dt.datetime, float]] = defaultdict(dict)
        for d in self.datums:
            if start <= d["Timestamp"] < end:
                key = (d["Namespace"], d["MetricName"], self._dims(d))
                index[key][d["Timestamp"]] = index[key].get(d["Timestamp"], 0.0) + float(d["Value"])
        points: list[tuple[str, dt.datetime, float]] = []
        for q in MetricDataQueries:
            stat = q["MetricStat"]
            if stat["Stat"] != "Sum":
                raise _Error("ValidationError", "the snapshot answers Sum only", "GetMetricData")
            period = dt.timedelta(seconds=int(stat["Period"]))
            m = stat["Metric"]
            series = index.get((m["Namespace"], m["MetricName"], self._dims(m)), {})
            buckets: dict[dt.datetime, float] = defaultdict(float)
            for t, v in series.items():
                buckets[start + ((t - start) // period) * period] += v
            points.extend((q["Id"], t, buckets[t]) for t in sorted(buckets))
        first = int(NextToken or 0)
        page = points[first : first + MaxDatapoints]
        results: dict[str, dict[str, Any]] = {
            q["Id"]: {"Id": q["Id"], "Label": q.get("Label", q["Id"]), "Timestamps": [], "Values": []}
            for q in MetricDataQueries
        }
        for qid, t, v in page:
            results[qid]["Timestamps"].append(t)
            results[qid]["Values"].append(v)
        more = first + MaxDatapoints < len(points)
        for r in results.values():
            r["StatusCode"] = "PartialData" if more else "Complete"
        out: dict[str, Any] = {"MetricDataResults": list(results.values()), "Messages": []}
        if more:
            out["NextToken"] = str(first + MaxDatapoints)
        return out
