"""Bedrock batch inference jobs: their metadata from the Bedrock API and their output folders on S3.

Batch jobs never reach model-invocation logs, so they are read from what AWS does provide
(docs/formats/batch-inference.md gives the formats and their public sources):

* `ListModelInvocationJobs` (paginated, filtered by submit time), then `GetModelInvocationJob` per job that ran
  on the day (model, status, submit/end times, output location, invocation type) and `ListTagsForResource` (the
  job's tags, which name its owner). The job's `roleArn` is Bedrock's service role, not the submitter: it is
  read by nobody here.
* The output folder of a job holds `manifest.json.out` (record and token counts) and one `<input>.jsonl.out` per
  input file (`recordId`, `modelInput`, and `modelOutput` or `error`). Folders are found by their manifest,
  wherever they sit under the configured prefix, and matched to jobs by folder name (the job id, the last part
  of the job ARN) or by the job's own output URI.

Nothing is dropped silently: an unreadable manifest or record line, a folder no job claims, a job whose tags
cannot be read, each becomes a reject (`batch_job_rejects`) with its reason, and the job keeps its row.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws import storage_options_for
from pipeline.config import BatchJobSource
from pipeline.sources.aws_accounts import AwsAccess
from pipeline.sources.s3_logs import SourceError
from pipeline.vocabulary import BATCH_JOB_ENDED, is_local

MANIFEST = "manifest.json.out"
RECORDS_SUFFIX = ".jsonl.out"
JOB_ARN = re.compile(
    r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):model-invocation-job/(?P<id>[A-Za-z0-9]+)$"
)
MANIFEST_FIELDS: dict[str, str] = {
    "totalRecordCount": "records_total",
    "processedRecordCount": "records_processed",
    "successRecordCount": "records_succeeded",
    "errorRecordCount": "records_failed",
    "inputTokenCount": "input_tokens",
    "outputTokenCount": "output_tokens",
}
"""Manifest key -> our name. The documented six; others are ignored, missing ones stay unknown (null)."""
API_COUNTS: dict[str, str] = {
    "totalRecordCount": "records_total",
    "processedRecordCount": "records_processed",
    "successRecordCount": "records_succeeded",
    "errorRecordCount": "records_failed",
}
"""Record counts that newer `GetModelInvocationJob` answers also carry; used where the manifest has none."""
EXCERPT_CHARS = 300


@dataclass(frozen=True)
class BatchJob:
    """One job as the Bedrock API describes it (the fields this pipeline uses)."""

    job_arn: str
    job_id: str
    job_name: str
    account_id: str
    region: str
    model_id: str
    status: str
    submit_time: dt.datetime
    end_time: dt.datetime | None
    output_s3_uri: str | None
    invocation_type: str | None
    message: str | None = None
    api_counts: dict[str, int | None] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.end_time is not None and self.status in BATCH_JOB_ENDED


@dataclass
class RecordTally:
    """What a job's `*.jsonl.out` records say: counts and the token usage their outputs report."""

    records: int = 0
    succeeded: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    without_usage: int = 0
    """Successful records whose `modelOutput` has no usage this reader knows: their tokens are not in the sums."""


@dataclass
class JobOutput:
    """A job output folder: where it is, its manifest (None when absent or unreadable) and its record files."""

    folder: str
    manifest_uri: str
    manifest: dict[str, int | None] | None = None
    record_files: list[str] = field(default_factory=list)
    written_at: dt.datetime | None = None
    records: RecordTally | None = None


@dataclass
class BatchRead:
    """Everything read for a day: jobs, their output folders by job id, rejects, and calls that failed."""

    jobs: list[BatchJob] = field(default_factory=list)
    outputs: dict[str, JobOutput] = field(default_factory=dict)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    observed_at: dt.datetime | None = None
    """When the jobs were listed (a recording's replay time): a running job's window ends there."""


def _reject(day: dt.date, uri: str, reason: str, raw: Any = "", line: int = 0, job_arn: str | None = None) -> dict:
    text = raw if isinstance(raw, str) else repr(raw)
    return {
        "date": day,
        "source_uri": uri,
        "line": line,
        "reason": reason,
        "raw_excerpt": text[:EXCERPT_CHARS],
        "job_arn": job_arn,
    }


def _time(value: Any) -> dt.datetime | None:
    """A timestamp as boto3 gives it (datetime) or as JSON has it (ISO 8601), in UTC; None when absent or bad."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        t = value
    elif isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _count(value: Any) -> int | None:
    """A non-negative whole count, or None (missing, negative, fractional, text, boolean)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def parse_job(answer: dict[str, Any]) -> BatchJob:
    """A `GetModelInvocationJob` answer (or a `ListModelInvocationJobs` summary) as a `BatchJob`.

    Raises ValueError naming the field when the answer lacks what a job row needs (ARN, model, submit time).
    """
    arn = answer.get("jobArn") or ""
    m = JOB_ARN.match(arn)
    if not m:
        raise ValueError(f"jobArn {arn!r} is not a model-invocation-job ARN")
    model = answer.get("modelId")
    if not isinstance(model, str) or not model.strip():
        raise ValueError("modelId is missing")
    submitted = _time(answer.get("submitTime"))
    if submitted is None:
        raise ValueError("submitTime is missing or not a time")
    ended = _time(answer.get("endTime"))
    if ended is not None and ended < submitted:
        raise ValueError(f"endTime {ended.isoformat()} is before submitTime {submitted.isoformat()}")
    out = ((answer.get("outputDataConfig") or {}).get("s3OutputDataConfig") or {}).get("s3Uri")
    return BatchJob(
        job_arn=arn,
        job_id=m.group("id"),
        job_name=str(answer.get("jobName") or m.group("id")),
        account_id=m.group("account"),
        region=m.group("region"),
        model_id=model.strip(),
        status=str(answer.get("status") or "Unknown"),
        submit_time=submitted,
        end_time=ended,
        output_s3_uri=out if isinstance(out, str) and out else None,
        invocation_type=answer.get("modelInvocationType") or None,
        message=answer.get("message") or None,
        api_counts={ours: _count(answer.get(theirs)) for theirs, ours in API_COUNTS.items()},
    )


def _ran_on(job: BatchJob, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether the job's [submit, end] window touches [start, end) (a running job's window is open-ended)."""
    return job.submit_time < end and (job.end_time is None or job.end_time >= start)


def _pages(client: Any, since: dt.datetime, until: dt.datetime) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"submitTimeAfter": since, "submitTimeBefore": until, "maxResults": 100}
        if token:
            kwargs["nextToken"] = token
        resp = client.list_model_invocation_jobs(**kwargs)
        yield from resp.get("invocationJobSummaries") or []
        token = resp.get("nextToken")
        if not token:
            return


def _api_error(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def list_jobs(
    access: AwsAccess, source: BatchJobSource, since: dt.datetime, until: dt.datetime, day: dt.date
) -> tuple[list[BatchJob], list[dict[str, Any]]]:
    """Jobs of every configured account of `source` submitted in [since, until), with details and tags.

    A job summary that cannot be parsed, and tags that cannot be read, are rejects (the job keeps its row without
    tags). A listing that fails (access denied, no such Region) raises `SourceError` with the account and Region:
    a day without its jobs would look like a day without batch spend.
    """
    jobs: list[BatchJob] = []
    rejects: list[dict[str, Any]] = []
    accounts = [(a.account_id, a.role_arn) for a in source.accounts] or [("", None)]
    day_start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    for account, role in accounts:
        where = f"bedrock:ListModelInvocationJobs in {account or 'the pipeline account'} {source.region}"
        try:
            client = access.client("bedrock", account, source.region, role)
            summaries = list(_pages(client, since, until))
        except (ClientError, BotoCoreError, SourceError) as exc:
            raise SourceError(
                f"cannot list batch inference jobs ({where}): {_api_error(exc)}; check bedrock:ListModelInvocationJobs "
                "in the role's policy and the Region"
            ) from exc
        for summary in summaries:
            try:
                job = parse_job(summary)
            except ValueError as exc:
                rejects.append(_reject(day, where, f"job_unreadable: {exc}", json.dumps(summary, default=str)))
                continue
            if not _ran_on(job, day_start, day_start + dt.timedelta(days=1)):
                jobs.append(job)  # kept for the bill's allocation over shared days; details not needed
                continue
            try:
                job = parse_job(client.get_model_invocation_job(jobIdentifier=job.job_arn))
            except (ClientError, BotoCoreError) as exc:
                rejects.append(
                    _reject(day, job.job_arn, "job_details_unavailable", _api_error(exc), job_arn=job.job_arn)
                )
            except ValueError as exc:
                rejects.append(_reject(day, job.job_arn, f"job_unreadable: {exc}", job_arn=job.job_arn))
            try:
                answer = client.list_tags_for_resource(resourceARN=job.job_arn)
                tags = {
                    str(t["key"]): str(t["value"])
                    for t in answer.get("tags") or []
                    if isinstance(t, dict) and t.get("key") is not None and t.get("value") is not None
                }
                job = BatchJob(**{**job.__dict__, "tags": tags})
            except (ClientError, BotoCoreError) as exc:
                rejects.append(_reject(day, job.job_arn, "job_tags_unavailable", _api_error(exc), job_arn=job.job_arn))
            jobs.append(job)
    return jobs, rejects


# ---------------------------------------------------------------------------------------------------------------
# Output folders
# ---------------------------------------------------------------------------------------------------------------


def _fs(root: str) -> tuple[fsspec.AbstractFileSystem, str, str]:
    fs, base = fsspec.core.url_to_fs(root, **storage_options_for(root))
    scheme = "" if is_local(root) else root.split("://", 1)[0] + "://"
    return fs, base.rstrip("/"), scheme


def find_outputs(root: str) -> list[JobOutput]:
    """Every folder under `root` that holds a `manifest.json.out`, with its `*.jsonl.out` record files.

    One recursive listing of the prefix (no `HeadObject`, which a prefix-limited `s3:ListBucket` policy refuses).
    A missing prefix is no jobs yet; a missing bucket or no access raises `SourceError`.
    """
    fs, base, scheme = _fs(root)
    if is_local(root) and not fs.exists(base):
        return []
    try:
        found = fs.find(base, detail=True)
    except Exception as exc:  # noqa: BLE001 - any failure here makes the source unusable
        raise SourceError(
            f"cannot list batch inference output folders under {root}: {type(exc).__name__}: {str(exc)[:300]}; "
            "check the bucket name, s3:ListBucket on the prefix and AWS_ENDPOINT_URL"
        ) from exc
    folders: dict[str, JobOutput] = {}
    records: dict[str, list[str]] = {}
    for path, info in sorted(found.items()):
        folder, _, name = path.rpartition("/")
        if name == MANIFEST:
            folders[folder] = JobOutput(folder=f"{scheme}{folder}", manifest_uri=f"{scheme}{path}")
            folders[folder].written_at = _time(info.get("LastModified") or info.get("mtime"))
            if folders[folder].written_at is None and isinstance(info.get("mtime"), (int, float)):
                folders[folder].written_at = dt.datetime.fromtimestamp(info["mtime"], dt.UTC)
        elif name.endswith(RECORDS_SUFFIX):
            records.setdefault(folder, []).append(f"{scheme}{path}")
    for path, files in records.items():
        # Records belong to the nearest folder above them that has a manifest.
        owner = path
        while owner and owner not in folders:
            owner = owner.rpartition("/")[0]
        if owner:
            folders[owner].record_files.extend(files)
    return list(folders.values())


def read_manifest(output: JobOutput, day: dt.date, job_arn: str | None) -> list[dict[str, Any]]:
    """Fill `output.manifest` from its `manifest.json.out`; return rejects (unreadable file, bad fields).

    Tolerant by design (the field set is only partly documented): unknown keys are ignored, a missing key is an
    unknown count, a key with a value that is no count is an unknown count and a reject.
    """
    try:
        with fsspec.open(output.manifest_uri, "rb", **storage_options_for(output.manifest_uri)) as f:
            raw = f.read(1_000_000)
    except Exception as exc:  # noqa: BLE001 - an unreadable object is a reject, not a failed day
        return [
            _reject(day, output.manifest_uri, "manifest_unreadable", f"{type(exc).__name__}: {exc}", job_arn=job_arn)
        ]
    try:
        data = json.loads(raw)
    except ValueError:
        return [_reject(day, output.manifest_uri, "manifest_not_json", raw.decode("utf-8", "replace"), job_arn=job_arn)]
    if not isinstance(data, dict):
        return [
            _reject(day, output.manifest_uri, "manifest_not_object", raw.decode("utf-8", "replace"), job_arn=job_arn)
        ]
    rejects = []
    manifest: dict[str, int | None] = {}
    for theirs, ours in MANIFEST_FIELDS.items():
        value = data.get(theirs)
        manifest[ours] = _count(value)
        if value is not None and manifest[ours] is None:
            rejects.append(
                _reject(
                    day, output.manifest_uri, f"manifest_bad_field: {theirs}", f"{theirs}={value!r}", job_arn=job_arn
                )
            )
    output.manifest = manifest
    return rejects


def usage_of(model_output: Any) -> tuple[int | None, int | None]:
    """(input, output) tokens a record's `modelOutput` reports, in the Converse or an InvokeModel shape.

    Converse and Nova: `usage.inputTokens/outputTokens`; Anthropic Messages: `usage.input_tokens/output_tokens`
    (cache reads and writes added to input); OpenAI-style: `usage.prompt_tokens/completion_tokens`; Llama:
    `prompt_token_count/generation_token_count`; Titan Text: `inputTextTokenCount` + `results[].tokenCount`;
    Cohere: `meta.billed_units`. Anything else: (None, None).
    """
    if not isinstance(model_output, dict):
        return None, None
    usage = model_output.get("usage")
    if isinstance(usage, dict):
        if "inputTokens" in usage or "outputTokens" in usage:
            return _count(usage.get("inputTokens")), _count(usage.get("outputTokens"))
        if "input_tokens" in usage or "output_tokens" in usage:
            n = _count(usage.get("input_tokens"))
            extra = sum(_count(usage.get(k)) or 0 for k in ("cache_read_input_tokens", "cache_creation_input_tokens"))
            return (n + extra if n is not None else None), _count(usage.get("output_tokens"))
        if "prompt_tokens" in usage or "completion_tokens" in usage:
            return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    if "prompt_token_count" in model_output or "generation_token_count" in model_output:
        return _count(model_output.get("prompt_token_count")), _count(model_output.get("generation_token_count"))
    if "inputTextTokenCount" in model_output:
        results = model_output.get("results")
        outs = (
            [_count(r.get("tokenCount")) for r in results if isinstance(r, dict)] if isinstance(results, list) else []
        )
        return _count(model_output.get("inputTextTokenCount")), (
            sum(o for o in outs if o is not None) if outs else (0 if results is None else None)
        )
    billed = (
        (model_output.get("meta") or {}).get("billed_units") if isinstance(model_output.get("meta"), dict) else None
    )
    if isinstance(billed, dict):
        return _count(billed.get("input_tokens")), _count(billed.get("output_tokens"))
    return None, None


def _lines(uri: str, max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of a record file, streamed in 1 MiB reads; a line over the limit comes back as None
    (skipped, never held whole in memory)."""
    with fsspec.open(uri, "rb", **storage_options_for(uri)) as f:
        n, buf, long = 0, b"", False
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            buf += chunk
            while True:
                i = buf.find(b"\n")
                if i < 0:
                    if len(buf) > max_line_bytes:
                        long, buf = True, b""
                    break
                line, buf = buf[: i + 1], buf[i + 1 :]
                n += 1
                yield n, None if long or len(line) > max_line_bytes else line
                long = False
        if buf or long:
            yield n + 1, None if long or len(buf) > max_line_bytes else buf


def read_records(
    output: JobOutput, day: dt.date, job_arn: str | None, max_line_bytes: int, max_rejects: int
) -> list[dict[str, Any]]:
    """Fill `output.records` from the folder's `*.jsonl.out` files; return rejects (bad lines, unreadable files).

    A record is `{recordId, modelInput, modelOutput}` or `{recordId, modelInput, error}`; a line that is no JSON
    object, or has neither output nor error, is a reject. Rejects past `max_rejects` per file are counted in one.
    A reject describes the line (its size, its keys), never copies it: records hold prompts and responses.
    """
    tally = RecordTally()
    rejects: list[dict[str, Any]] = []
    for uri in output.record_files:
        bad = 0

        def add(reason: str, raw: Any, line: int, uri: str = uri) -> None:
            nonlocal bad
            bad += 1
            if bad <= max_rejects:
                rejects.append(_reject(day, uri, reason, raw, line, job_arn))

        try:
            for n, line in _lines(uri, max_line_bytes):
                if line is None:
                    add("line_too_long", "", n)
                    continue
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    add("record_not_json", f"{len(line)} bytes that are not JSON", n)
                    continue
                if not isinstance(rec, dict):
                    add("record_not_object", f"a JSON {type(rec).__name__}, not an object", n)
                    continue
                tally.records += 1
                if rec.get("error") is not None and rec.get("modelOutput") is None:
                    tally.failed += 1
                    continue
                if "modelOutput" not in rec:
                    tally.records -= 1
                    add("record_without_output", "keys: " + ", ".join(sorted(map(str, rec))[:10]), n)
                    continue
                tally.succeeded += 1
                i, o = usage_of(rec["modelOutput"])
                if i is None and o is None:
                    tally.without_usage += 1
                tally.input_tokens += i or 0
                tally.output_tokens += o or 0
        except Exception as exc:  # noqa: BLE001 - an unreadable object is a reject, not a failed day
            add("records_unreadable", f"{type(exc).__name__}: {exc}", 0)
        if bad > max_rejects:
            rejects.append(_reject(day, uri, "too_many_rejects", f"{bad - max_rejects} more", 0, job_arn))
    output.records = tally
    return rejects


def _norm(uri: str | None) -> str:
    return (uri or "").rstrip("/").removeprefix("s3a://").removeprefix("s3://")


def match_outputs(jobs: Iterable[BatchJob], outputs: list[JobOutput], access: AwsAccess) -> dict[str, JobOutput]:
    """Job id -> its output folder: the folder named after the job id, else the folder at the job's output URI
    (plus its id) as the source maps it (a recorded bucket is a local folder)."""
    by_name: dict[str, JobOutput] = {}
    by_path: dict[str, JobOutput] = {}
    for out in outputs:
        by_name.setdefault(_norm(out.folder).rsplit("/", 1)[-1], out)
        by_path[_norm(out.folder)] = out
    matched: dict[str, JobOutput] = {}
    for job in jobs:
        if job.job_id in by_name:
            matched[job.job_id] = by_name[job.job_id]
            continue
        if job.output_s3_uri:
            root = _norm(access.log_root(job.output_s3_uri))
            for candidate in (f"{root}/{job.job_id}", root):
                if candidate in by_path:
                    matched[job.job_id] = by_path[candidate]
                    break
    return matched


def read_batch_jobs(
    sources: list[BatchJobSource],
    day: dt.date,
    access_for_source: Any,
    *,
    max_line_bytes: int = 64 * 2**20,
    max_rejects: int = 1000,
    now: dt.datetime | None = None,
) -> BatchRead:
    """The jobs that may share a bill day with `day` and their output folders, read and checked.

    `access_for_source(source, day)` gives the `AwsAccess` of a source (live AWS or a recording). Jobs are
    listed from `lookback_days` before the day up to now: a job submitted after the day can still share a later
    bill day with a job that ran on it. Folders are read for every ended job listed (their token counts weigh the
    bill's allocation on shared days). A folder whose manifest was written on the day and that no listed job
    claims is a `job_not_found` reject.
    """
    read = BatchRead()
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    seen: set[str] = set()
    listed: list[tuple[BatchJobSource, AwsAccess, list[BatchJob]]] = []
    for source in sources:
        access = access_for_source(source, day)
        until = now or access.now()
        read.observed_at = until if read.observed_at is None else max(read.observed_at, until)
        jobs, rejects = list_jobs(access, source, start - dt.timedelta(days=source.lookback_days), until, day)
        read.rejects.extend(rejects)
        fresh = [j for j in jobs if j.job_arn not in seen]
        seen.update(j.job_arn for j in fresh)
        read.jobs.extend(fresh)
        listed.append((source, access, fresh))
    # Folders are matched against every source's jobs (sources may share a prefix) before any is called an orphan.
    found: dict[str, list[JobOutput]] = {}
    claimed: set[str] = set()
    for source, access, _ in listed:
        root = access.log_root(source.output_s3)
        if root not in found:
            found[root] = find_outputs(root)
        for job_id, out in match_outputs(read.jobs, found[root], access).items():
            read.outputs.setdefault(job_id, out)
            claimed.add(out.folder)
    for outputs in found.values():
        for out in outputs:
            if out.folder not in claimed and out.written_at is not None and start <= out.written_at < end:
                read.rejects.append(
                    _reject(day, out.manifest_uri, "job_not_found", "no listed batch job writes to this folder")
                )
    for source, _, fresh in listed:
        for job in fresh:
            folder = read.outputs.get(job.job_id)
            if folder is None or not job.ended or folder.manifest is not None:
                continue
            read.rejects.extend(read_manifest(folder, day, job.job_arn))
            needs = source.read_records == "always" or (
                source.read_records == "auto"
                and (
                    folder.manifest is None
                    or folder.manifest["input_tokens"] is None
                    or folder.manifest["output_tokens"] is None
                )
            )
            if needs:
                read.rejects.extend(read_records(folder, day, job.job_arn, max_line_bytes, max_rejects))
    return read
