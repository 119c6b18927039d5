"""Batch inference jobs: metadata through boto3 (a local fake of the Bedrock control plane, which moto lacks), output
folders through moto's S3, and the `batch_jobs` table: days, batch prices, owners, and the reconciliation of a
job against the bill's `-batch` rows over its [submit, end] window."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest

from pipeline import schemas
from pipeline.batch.jobs_table import batch_jobs_table, bill_days_needed, day_part, rejects_frame
from pipeline.config import BatchJobSource, ConfigError, LedgerConfig, parse_config
from pipeline.pricing import load_catalog
from pipeline.sample import batch_jobs as sample
from pipeline.sources.aws_accounts import LiveAws
from pipeline.sources.batch_jobs import BatchRead, parse_job, read_batch_jobs, usage_of
from tests.bedrock_fake import FakeBedrock

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
ACCOUNT = "111122223333"


@pytest.fixture
def bedrock(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrock]:
    """The fake control plane, with boto3's Bedrock client pointed at it (S3 stays on moto)."""
    with FakeBedrock() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", fake.url)
        yield fake


def _upload(bucket: str, local: Path, aws_url: str) -> None:
    s3 = boto3.client("s3", endpoint_url=aws_url, region_name="us-east-1")
    for f in sorted(local.rglob("*")):
        if f.is_file():
            s3.put_object(Bucket=bucket, Key=f.relative_to(local).as_posix(), Body=f.read_bytes())


def _jobs(bucket: str) -> list[sample.SampleJob]:
    """The sample world's jobs, written to `bucket` instead of the demo's."""
    return [replace(j, account=ACCOUNT, region="us-east-1") for j in sample.sample_jobs(D1, 2, scale=0.05)]


def _answer(job: sample.SampleJob, bucket: str) -> dict[str, Any]:
    answer = sample.job_answer(job, sample.totals(sample.records(job)))
    answer["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"] = f"s3://{bucket}/batch/{job.folder}/"
    return answer


def _source(bucket: str, **kw: Any) -> BatchJobSource:
    return BatchJobSource(output_s3=f"s3://{bucket}/batch", region="us-east-1", **kw)


def _read(sources: list[BatchJobSource], day: dt.date) -> BatchRead:
    now = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
    return read_batch_jobs(sources, day, lambda s, d: LiveAws(), now=now)


def test_jobs_and_outputs_are_read_through_boto3_and_s3(bucket: str, aws: str, bedrock: FakeBedrock, tmp_path: Path):
    jobs = _jobs(bucket)
    for job in jobs:
        sample.write_job_output(tmp_path / "batch", job, sample.records(job))
        bedrock.add(_answer(job, bucket), job.tags)
    _upload(bucket, tmp_path, aws)

    read = _read([_source(bucket)], D1)

    assert sorted(j.job_name for j in read.jobs) == sorted(j.name for j in jobs)
    assert "GET /model-invocation-jobs" in bedrock.seen  # paginated: page size 2 for 4 jobs
    assert sum(s == "GET /model-invocation-jobs" for s in bedrock.seen) == 2
    claims = next(j for j in read.jobs if j.job_name.startswith("claims"))
    assert claims.tags["costCenter"] == "claims"
    assert claims.invocation_type == "InvokeModel" and claims.status == "Completed"
    out = read.outputs[claims.job_id]
    assert out.folder == f"s3://{bucket}/batch/claims/{claims.job_id}"
    expected = sample.totals(sample.records(jobs[0]))
    assert out.manifest is not None and out.manifest["input_tokens"] == expected["inputTokenCount"]
    assert out.records is None  # the manifest has token counts: records are not read (`read_records: auto`)
    assert read.rejects == []


def test_records_are_read_when_the_manifest_lacks_tokens(bucket: str, aws: str, bedrock: FakeBedrock, tmp_path: Path):
    """Converse and InvokeModel shapes give the tokens; failed records are counted; the manifest's missing and
    unknown fields are tolerated."""
    job = _jobs(bucket)[1]  # Converse shape
    recs = sample.records(job)
    sample.write_job_output(tmp_path / "batch", job, recs)
    manifest = tmp_path / "batch" / job.folder / job.job_id / "manifest.json.out"
    manifest.write_text(json.dumps({"totalRecordCount": len(recs), "someNewField": {"x": 1}}))
    bedrock.add(_answer(job, bucket))
    _upload(bucket, tmp_path, aws)

    read = _read([_source(bucket)], D1)

    out = read.outputs[job.job_id]
    assert out.manifest == {**dict.fromkeys(out.manifest or {}), "records_total": len(recs)}
    want = sample.totals(recs)
    assert out.records is not None
    assert (out.records.input_tokens, out.records.output_tokens) == (want["inputTokenCount"], want["outputTokenCount"])
    assert (out.records.succeeded, out.records.failed) == (want["successRecordCount"], want["errorRecordCount"])


def test_bad_objects_are_quarantined_with_a_reason(bucket: str, aws: str, bedrock: FakeBedrock, tmp_path: Path):
    jobs = _jobs(bucket)
    a, b = jobs[0], jobs[2]
    for job in (a, b):
        sample.write_job_output(tmp_path / "batch", job, sample.records(job))
        bedrock.add(_answer(job, bucket))
    (tmp_path / "batch" / a.folder / a.job_id / "manifest.json.out").write_text('{"inputTokenCount": "many", ')
    bad = tmp_path / "batch" / b.folder / b.job_id
    (bad / "manifest.json.out").write_text(json.dumps({"inputTokenCount": -4, "outputTokenCount": 2.5}))
    with (bad / "records.jsonl.out").open("a") as f:
        f.write("not json\n[1, 2]\n" + json.dumps({"recordId": "X", "modelInput": {}}) + "\n")
    bedrock.tags_error.add(a.arn)
    _upload(bucket, tmp_path, aws)

    read = _read([_source(bucket)], D1)
    reasons = sorted(r["reason"] for r in read.rejects)

    assert reasons == sorted(
        [
            "job_tags_unavailable",
            "manifest_not_json",
            "manifest_bad_field: inputTokenCount",
            "manifest_bad_field: outputTokenCount",
            "record_not_json",
            "record_not_object",
            "record_without_output",
        ]
    )
    frame = rejects_frame(read)
    assert frame.columns == list(schemas.BATCH_JOB_REJECTS)
    assert frame.filter(pl.col("reason") == "record_not_json")["line"].to_list() == [len(sample.records(b)) + 1]
    # A job with a bad manifest and record lines keeps its row: tokens from the readable records.
    out = read.outputs[b.job_id]
    assert out.records is not None and out.records.succeeded == sample.totals(sample.records(b))["successRecordCount"]


def test_a_failed_listing_names_the_account_region_and_fix(bucket: str, bedrock: FakeBedrock, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", "http://127.0.0.1:9")  # nothing listens there
    from pipeline.sources.s3_logs import SourceError

    with pytest.raises(SourceError, match=r"ListModelInvocationJobs.*us-east-1"):
        _read([_source(bucket)], D1)


def test_usage_shapes():
    assert usage_of({"usage": {"inputTokens": 5, "outputTokens": 7}}) == (5, 7)  # Converse, Nova
    assert usage_of({"usage": {"input_tokens": 5, "output_tokens": 7, "cache_read_input_tokens": 2}}) == (7, 7)
    assert usage_of({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == (3, 4)
    assert usage_of({"prompt_token_count": 3, "generation_token_count": 4}) == (3, 4)
    assert usage_of({"inputTextTokenCount": 8, "results": [{"tokenCount": 3}, {"tokenCount": 1}]}) == (8, 4)
    assert usage_of({"meta": {"billed_units": {"input_tokens": 2, "output_tokens": 1}}}) == (2, 1)
    assert usage_of({"embedding": [0.1]}) == (None, None)
    assert usage_of("text") == (None, None)


def test_parse_job_refuses_what_a_row_needs():
    ok = {"jobArn": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:model-invocation-job/abc123def456", "modelId": "m"}
    with pytest.raises(ValueError, match="submitTime"):
        parse_job(ok)
    with pytest.raises(ValueError, match="jobArn"):
        parse_job({**ok, "jobArn": "arn:aws:iam::1:role/x", "submitTime": "2026-11-01T00:00:00Z"})
    job = parse_job({**ok, "submitTime": "2026-11-01T00:00:00Z", "status": "Completed"})
    assert (job.account_id, job.region, job.job_id, job.end_time) == (ACCOUNT, "us-east-1", "abc123def456", None)


def test_config_is_checked():
    cfg = parse_config(
        {
            "sources": {"batch_jobs": [{"output_s3": "s3://b/p", "region": "us-east-1"}]},
            "attribution": {"batch_job_rules": [{"match": "nightly-*", "tags": {"costCenter": "x"}}]},
        }
    )
    assert cfg.sources.batch_jobs[0].lookback_days == 14
    with pytest.raises(ConfigError, match="outputs3"):
        parse_config({"sources": {"batch_jobs": [{"outputs3": "s3://b/p", "region": "us-east-1"}]}})
    with pytest.raises(ConfigError, match="unbalanced"):
        parse_config({"attribution": {"batch_job_rules": [{"match": "nightly-[", "tags": {"a": "b"}}]}})


# ---------------------------------------------------------------------------------------------------------------
# The table: days, prices, owners, reconciliation (plain functions on what was read)
# ---------------------------------------------------------------------------------------------------------------


def _read_from(jobs: list[sample.SampleJob], tmp_path: Path, **tags: dict[str, str]) -> BatchRead:
    """What `read_batch_jobs` returns for these jobs, built from the sample's own files."""
    from pipeline.sources.batch_jobs import BatchJob, JobOutput, read_manifest

    read = BatchRead()
    for job in jobs:
        sample.write_job_output(tmp_path, job, sample.records(job))
        parsed: BatchJob = parse_job(sample.job_answer(job, sample.totals(sample.records(job))))
        read.jobs.append(replace(parsed, tags=tags.get(job.job_id, job.tags)))
        folder = tmp_path / job.folder / job.job_id
        out = JobOutput(folder=str(folder), manifest_uri=str(folder / "manifest.json.out"))
        read_manifest(out, D1, job.job_arn if hasattr(job, "job_arn") else job.arn)
        read.outputs[job.job_id] = out
    return read


def _bill(tmp_path: Path, jobs: list[sample.SampleJob], *, factor: float = 1.0) -> pl.DataFrame:
    """The sample bill for these jobs (`-batch` rows), written as CUR 2.0 and read back by the real reader."""
    from pipeline.billing import billing_line_items_for_day
    from pipeline.config import BillingSource
    from pipeline.sample.bill import write_bill

    usage = sample.batch_usage(jobs).with_columns(pl.col("cost_usd") * factor)
    write_bill(str(tmp_path / "bill"), usage, "cur2", discrepancies=False, principals=usage)
    source = BillingSource(uri=str(tmp_path / "bill"), format="cur2")
    return pl.concat([billing_line_items_for_day(source, d) for d in (D1, D2)])


def _cfg(**attribution: Any) -> LedgerConfig:
    return parse_config(
        {
            "reconciliation": {"cost_usd": 0.0001},
            "attribution": {
                "principals": [{"match": "*/research-*/*", "tags": {"costCenter": "research"}}],
                **attribution,
            },
        }
    )


def test_a_batch_job_reconciles_against_its_batch_bill_rows_over_its_window(tmp_path: Path):
    """The overnight job: its days are an estimate (the bill books tokens later in the window than an even
    spread), its window total matches the bill's `-batch` rows; prices are the catalog's batch rates."""
    jobs = sample.sample_jobs(D1, 2, scale=0.1)
    read = _read_from(jobs, tmp_path / "out")
    billing = _bill(tmp_path, jobs)
    assert set(billing["tier"].to_list()) == {"batch"}
    assert any(u.endswith("-input-tokens-batch") for u in billing["usage_type"].to_list())
    cfg, catalog = _cfg(), load_catalog()

    days = {
        d: batch_jobs_table(read, d, billing, {D1, D2}, catalog, cfg, as_of=D2 + dt.timedelta(days=9)) for d in (D1, D2)
    }
    nightly = pl.concat(days.values()).filter(pl.col("job_name") == "nightly-catalog-enrich")

    assert nightly["date"].to_list() == [D1, D2]
    manifest = sample.totals(sample.records(jobs[1]))
    assert nightly["input_tokens"].sum() == manifest["inputTokenCount"]
    assert nightly["records_total"].sum() == manifest["totalRecordCount"]
    bill_nova = billing.filter(pl.col("base_model_id") == "amazon.nova-lite-v1:0")
    assert nightly["billed_cost_usd"].sum() == pytest.approx(bill_nova["unblended_cost_usd"].sum())
    assert nightly["billed_cost_usd"].to_list() != pytest.approx(nightly["total_cost_usd"].to_list())  # days differ
    assert nightly["job_billed_cost_usd"][0] == pytest.approx(nightly["total_cost_usd"].sum())
    assert set(nightly["reconciliation_status"]) == {"matched"}
    # Batch rate: the standard Nova Lite rate (0.00006 / 0.00024 per 1K) at half, derived by the catalog's tier rule.
    want = (manifest["inputTokenCount"] * 0.00003 + manifest["outputTokenCount"] * 0.00012) / 1000
    assert nightly["total_cost_usd"].sum() == pytest.approx(want)
    assert set(nightly["price_origin"]) == {"derived"}
    everything = pl.concat(days.values())
    assert everything.columns == list(schemas.BATCH_JOBS)
    assert set(everything["reconciliation_status"]) == {"matched"}
    assert everything["billed_cost_usd"].sum() == pytest.approx(billing["unblended_cost_usd"].sum())


def test_a_bill_higher_than_the_outputs_is_under_logged_and_lag_is_pending(tmp_path: Path):
    jobs = sample.sample_jobs(D1, 2, scale=0.1)
    read = _read_from(jobs, tmp_path / "out")
    billing = _bill(tmp_path, jobs, factor=1.3)
    cfg, catalog = _cfg(), load_catalog()
    late = batch_jobs_table(read, D1, billing, {D1, D2}, catalog, cfg, as_of=D2 + dt.timedelta(days=9))
    assert set(late["reconciliation_status"]) == {"under_logged"}
    assert "more than its outputs explain" in late["reconciliation_note"][0]
    fresh = batch_jobs_table(read, D1, billing, {D1, D2}, catalog, cfg, as_of=D2)
    assert set(fresh["reconciliation_status"]) == {"pending"}
    unread = batch_jobs_table(read, D1, billing, {D1}, catalog, cfg, as_of=D2 + dt.timedelta(days=9))
    assert unread.filter(pl.col("job_name") == "nightly-catalog-enrich")["reconciliation_status"][0] == "pending"
    nothing = batch_jobs_table(read, D1, billing.head(0), {D1, D2}, catalog, cfg, as_of=D2 + dt.timedelta(days=9))
    assert set(nothing["reconciliation_status"]) == {"missing_in_bill"}


def test_owners_tags_then_name_rule_then_bill_principal_then_unallocated(tmp_path: Path):
    jobs = sample.sample_jobs(D1, 2, scale=0.1)
    read = _read_from(jobs, tmp_path / "out")
    billing = _bill(tmp_path, jobs)
    cfg = _cfg(batch_job_rules=[sample.NAME_RULE])
    table = batch_jobs_table(read, D1, billing, {D1, D2}, load_catalog(), cfg, as_of=D2 + dt.timedelta(days=9))
    by = {r["job_name"]: r for r in table.iter_rows(named=True)}

    claims = by["claims-summaries-20261101"]
    assert (claims["attribution_reason"], claims["cost_center"], claims["application"], claims["environment"]) == (
        "job_tags",
        "claims",
        "claims-triage",
        "production",
    )
    assert claims["user"] == schemas.UNATTRIBUTED
    nightly = by["nightly-catalog-enrich"]
    assert (nightly["attribution_reason"], nightly["cost_center"]) == ("name_rule", "catalog")
    adhoc = by["adhoc-eval"]
    assert (adhoc["attribution_reason"], adhoc["cost_center"], adhoc["user"]) == ("bill_principal", "research", "maria")
    assert adhoc["iam_principal"] == jobs[2].principal
    backfill = by["backfill-embeddings-v2"]
    assert backfill["attribution_reason"] == "batch_job_untagged"
    assert {backfill[d] for d in ("user", "application", "cost_center", "environment")} == {schemas.UNALLOCATED}
    # Tags win over a matching rule; the job's roleArn (Bedrock's service role) names nobody.
    tagged = _read_from(jobs, tmp_path / "out2", **{jobs[1].job_id: {"costCenter": "own"}})
    t2 = batch_jobs_table(tagged, D1, billing, {D1, D2}, load_catalog(), cfg, as_of=D2 + dt.timedelta(days=9))
    assert t2.filter(pl.col("job_name") == "nightly-catalog-enrich")["cost_center"][0] == "own"
    assert "BedrockBatchInferenceRole" not in " ".join(str(v) for v in t2.row(0))


def test_unknown_tokens_and_prices_are_never_zero(tmp_path: Path):
    jobs = sample.sample_jobs(D1, 2, scale=0.1)
    read = _read_from(jobs, tmp_path / "out")
    job0 = read.jobs[0]
    read.jobs[0] = replace(job0, model_id="acme.unpriced-model-v1:0")
    read.jobs[3] = replace(read.jobs[3], status="InProgress", end_time=None)
    del read.outputs[read.jobs[2].job_id]
    table = batch_jobs_table(
        read, D1, pl.DataFrame(schema=schemas.BILLING_LINE_ITEMS), {D1}, load_catalog(), _cfg(), D1
    )
    by = {r["job_name"]: r for r in table.iter_rows(named=True)}
    assert (by["claims-summaries-20261101"]["priced"], by["claims-summaries-20261101"]["unpriced_reason"]) == (
        False,
        "no_price",
    )
    assert by["claims-summaries-20261101"]["total_cost_usd"] is None
    assert by["claims-summaries-20261101"]["input_tokens"] > 0
    assert (by["adhoc-eval"]["unpriced_reason"], by["adhoc-eval"]["input_tokens"]) == ("output_not_found", None)
    running = by["backfill-embeddings-v2"]
    assert (running["unpriced_reason"], running["reconciliation_status"], running["total_cost_usd"]) == (
        "job_running",
        "pending",
        None,
    )


def test_day_parts_add_up_to_the_total():
    job = parse_job(
        {
            "jobArn": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:model-invocation-job/abc123def456",
            "modelId": "m",
            "status": "Completed",
            "submitTime": "2026-11-01T22:13:00Z",
            "endTime": "2026-11-04T01:07:00Z",
        }
    )
    for total in (0, 1, 7, 1_000_003):
        parts = [day_part(total, job, D1 + dt.timedelta(days=i)) for i in range(4)]
        assert sum(p or 0 for p in parts) == total
    read = BatchRead(jobs=[job])
    assert bill_days_needed(read, D2, D2) == [D1 + dt.timedelta(days=i) for i in range(4)]


# ---------------------------------------------------------------------------------------------------------------
# The asset, on real files: a recorded AWS world (the demo's interface) and a CUR 2.0 bill
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_batch_jobs_asset_materializes_and_checks(tmp_path: Path):
    """Two days of the sample world's jobs through Dagster: the overnight job is `pending` on the first day (still
    running when that day was processed) and reconciled on the second; the owner-less job is `unallocated`."""
    from dagster import materialize

    from pipeline import warehouse
    from pipeline.defs.batch import build_batch_assets
    from pipeline.defs.billing import build_billing_assets
    from pipeline.defs.partitions import daily_partitions
    from pipeline.defs.resources import LedgerResource
    from pipeline.sample.bill import write_bill
    from pipeline.sources.aws_accounts import SNAPSHOT_FORMAT
    from tests.helpers import write_config

    jobs = sample.sample_jobs(D1, 2, scale=0.1)
    aws_root = tmp_path / "aws"
    aws_root.mkdir()
    (aws_root / "manifest.json").write_text(json.dumps({"format": SNAPSHOT_FORMAT, "replay_delay_hours": 1}))
    sample.write_batch_jobs(aws_root, tmp_path / "batch-output", jobs)
    usage = sample.batch_usage(jobs)
    write_bill(str(tmp_path / "bill"), usage, "cur2", discrepancies=False, principals=usage)
    config = write_config(
        tmp_path,
        start_date="2026-10-01",
        sources={
            "billing": [{"uri": str(tmp_path / "bill"), "format": "cur2"}],
            "batch_jobs": sample.batch_sources(jobs, str(aws_root)),
        },
        attribution={"batch_job_rules": [sample.NAME_RULE]},
    )
    from pipeline.config import load_config

    cfg = load_config(config)
    parts = daily_partitions(cfg.start_date)
    assets = [*build_billing_assets(parts), *build_batch_assets(parts)]
    for day in (D1, D2):
        result = materialize(
            assets,
            partition_key=day.isoformat(),
            resources={"ledger": LedgerResource(config_path=str(config))},
            selection=["billing_line_items", "batch_jobs", "batch_job_rejects"],
            raise_on_error=False,
        )
        assert result.success
        checks = {
            e.check_name: e.passed for e in result.get_asset_check_evaluations() if e.asset_key.path == ["batch_jobs"]
        }
        assert checks == {"rejects_none": True, "jobs_priced": True, "reconciles_within_tolerance": True}
    first = warehouse.read_partition(cfg.warehouse, "batch_jobs", D1)
    second = warehouse.read_partition(cfg.warehouse, "batch_jobs", D2)
    by = {r["job_name"]: r for r in first.iter_rows(named=True)}
    assert set(by) == {j.name for j in jobs}
    assert (by["nightly-catalog-enrich"]["status"], by["nightly-catalog-enrich"]["reconciliation_status"]) == (
        "InProgress",
        "pending",
    )
    assert by["backfill-embeddings-v2"]["cost_center"] == schemas.UNALLOCATED
    assert {by[n]["reconciliation_status"] for n in by if n != "nightly-catalog-enrich"} == {"matched"}
    assert second["job_name"].to_list() == ["nightly-catalog-enrich"]
    assert second["reconciliation_status"].to_list() == ["matched"]
    assert warehouse.read_partition(cfg.warehouse, "batch_job_rejects", D1).is_empty()


def test_jobs_of_one_model_sharing_bill_days_are_judged_together(tmp_path: Path):
    """A second Nova Lite job in the same account and Region runs inside the overnight job's window: the bill's
    `-batch` rows cannot tell them apart, so both are judged on their summed estimate and bill."""
    jobs = sample.sample_jobs(D1, 2, scale=0.1)
    nightly = jobs[1]
    second = replace(
        jobs[3],
        account=nightly.account,
        region=nightly.region,
        model_id=nightly.model_id,
        submit=dt.datetime(2026, 11, 2, 0, 30, tzinfo=dt.UTC),
        end=dt.datetime(2026, 11, 2, 2, 30, tzinfo=dt.UTC),
    )
    jobs = [nightly, second]
    read = _read_from(jobs, tmp_path / "out")
    billing = _bill(tmp_path, jobs)
    table = batch_jobs_table(read, D2, billing, {D1, D2}, load_catalog(), _cfg(), as_of=D2 + dt.timedelta(days=9))

    assert set(table["reconciliation_status"]) == {"matched"}
    assert table["job_billed_cost_usd"].sum() == pytest.approx(billing["unblended_cost_usd"].sum())
    assert table["billed_cost_usd"].sum() == pytest.approx(
        billing.filter(pl.col("date") == D2)["unblended_cost_usd"].sum()
    )
    assert "sharing bill days" in table["reconciliation_note"][0]
    later = replace(read.jobs[1], end_time=dt.datetime(2026, 11, 3, 1, 0, tzinfo=dt.UTC))
    chained = BatchRead(jobs=[read.jobs[0], later])  # D1 needs D3 too: the second job shares D2 and runs to D3
    assert bill_days_needed(chained, D1, D1) == [D1, D2, D2 + dt.timedelta(days=1)]


def test_a_job_that_processed_nothing_costs_nothing_and_bad_times_are_rejected(tmp_path: Path):
    jobs = sample.sample_jobs(D1, 2, scale=0.1)
    read = _read_from(jobs[:1], tmp_path / "out")
    read.jobs[0] = replace(read.jobs[0], status="Failed", api_counts={"records_processed": 0})
    del read.outputs[read.jobs[0].job_id]
    table = batch_jobs_table(
        read, D1, pl.DataFrame(schema=schemas.BILLING_LINE_ITEMS), {D1}, load_catalog(), _cfg(), D1
    )
    row = table.row(0, named=True)
    assert (row["token_source"], row["input_tokens"], row["priced"], row["total_cost_usd"]) == ("api", 0, True, 0.0)
    answer = sample.job_answer(jobs[0], sample.totals(sample.records(jobs[0])))
    with pytest.raises(ValueError, match="before submitTime"):
        parse_job({**answer, "endTime": "2026-10-01T00:00:00Z"})


def test_a_folder_no_job_claims_is_rejected_once_across_sources_sharing_a_prefix(
    bucket: str, aws: str, bedrock: FakeBedrock, tmp_path: Path
):
    """Two Regions write under one prefix; the folder of the other Region's job is no orphan, the stray one is
    (on the day its manifest was written)."""
    jobs = _jobs(bucket)[:2]
    jobs[1] = replace(jobs[1], region="us-west-2")
    for job in jobs:
        sample.write_job_output(tmp_path / "batch", job, sample.records(job))
        bedrock.add(_answer(job, bucket))  # the fake answers every Region alike: each source sees both jobs
    orphan = tmp_path / "batch" / "lost" / "zzzzzzzzzzzz"
    orphan.mkdir(parents=True)
    (orphan / "manifest.json.out").write_text("{}")
    _upload(bucket, tmp_path, aws)
    today = dt.datetime.now(dt.UTC).date()
    sources = [
        _source(bucket, lookback_days=90),
        _source(bucket, lookback_days=90).model_copy(update={"region": "us-west-2"}),
    ]

    read = read_batch_jobs(sources, today, lambda s, d: LiveAws(), now=dt.datetime.now(dt.UTC))

    orphans = [r for r in read.rejects if r["reason"] == "job_not_found"]
    assert [r["source_uri"].rsplit("/", 2)[-2] for r in orphans] == ["zzzzzzzzzzzz"]
    assert set(read.outputs) == {j.job_id for j in jobs}


def test_every_batch_column_has_a_description():
    assert set(schemas._BATCH_JOB_TEXT) == set(schemas.BATCH_JOBS) - {"status"}
    assert list(schemas.BATCH_JOB_REJECTS_DESCRIPTIONS) == list(schemas.BATCH_JOB_REJECTS)
    assert all(
        d.strip() for d in [*schemas.BATCH_JOBS_DESCRIPTIONS.values(), *schemas.BATCH_JOB_REJECTS_DESCRIPTIONS.values()]
    )
