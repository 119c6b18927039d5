"""Privacy: bodies are never stored by default, redaction masks what it promises (and not dates or token counts),
and rejected records never carry a prompt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml
from dagster import DagsterInstance, materialize

from pipeline import privacy
from pipeline.config import load_config
from pipeline.defs.build import build_assets
from pipeline.defs.resources import LedgerResource
from pipeline.normalize.decode import iter_json_lines
from pipeline.privacy import MAX_CHARS, TOO_DEEP, redact_body, redact_text
from tests.helpers import gz_lines, log_key, make_record

DAY = "2026-03-10"

# ------------------------------------------------------------------------------------------------ redaction

POSITIVE = [
    ("email", "write to john.doe+billing@example.co.uk today", "[EMAIL]"),
    ("email", "cc: A_B-c.d@sub.mail-host.org", "[EMAIL]"),
    ("aws_key", "key AKIAIOSFODNN7EXAMPLE here", "[AWS_ACCESS_KEY]"),
    ("aws_key", "temporary ASIAY34FZKBOKMUTVV7A,", "[AWS_ACCESS_KEY]"),
    ("aws_secret", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "[AWS_SECRET]"),
    ("ipv4", "server at 192.168.1.20 answered", "[IP]"),
    ("ipv4", "connect to 10.0.0.1:8080", "[IP]:8080"),
    ("ipv6", "host 2001:db8::1 is up", "[IP]"),
    ("ipv6", "full 2001:0db8:85a3:0000:0000:8a2e:0370:7334.", "[IP]."),
    ("ipv6", "link fe80::1%eth0 down", "[IP]"),
    ("phone", "call +1 555 123 4567 now", "[PHONE]"),
    ("phone", "call (555) 123-4567 now", "[PHONE]"),
    ("phone", "call 555-123-4567", "[PHONE]"),
    ("phone", "London +44 20 7946 0958", "[PHONE]"),
    ("phone", "Paris 06 12 34 56 78", "[PHONE]"),
    ("phone", "E.164 +14155552671", "[PHONE]"),
    ("card", "visa 4111 1111 1111 1111 exp 12/29", "[CARD]"),
    ("card", "mc 5555-5555-5555-4444", "[CARD]"),
    ("card", "amex 378282246310005", "[CARD]"),
    ("card", "card 4111 1111 1111 1111 22 items", "[CARD] 22"),
]

NEGATIVE = [
    ("date", "on 2024-01-15 at 10:30:00"),
    ("date", "on 2024-01-15T10:30:00Z"),
    ("date", "on 15.01.2024 and 01/15/2024"),
    ("time", "at 12:30:45 or 10:30"),
    ("tokens", "used 1234567890 tokens, 12,345,678 tokens or 12 345 678 tokens"),
    ("tokens_json", '"inputTokens":35,"outputTokens":446,"totalTokens":481'),
    ("account_id", "account 111122223333 in /AWSLogs/111122223333/Bedrock"),
    ("epoch_ms", "at 1718000000000 ms"),
    ("version", "version 1.2.3 and 3.11"),
    ("not_luhn", "order 4111 1111 1111 1112"),
    ("git_sha", "commit 3f786850e387550fdab836ed7e6dc881de23001b"),
    ("no_tld", "user@localhost"),
    ("dotted_run", "1.2.3.4.5.6 is not an address"),
]


@pytest.mark.parametrize(("kind", "text", "masked"), POSITIVE, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(POSITIVE)])
def test_identifiers_are_masked(kind: str, text: str, masked: str) -> None:
    out = redact_text(text)
    assert masked in out, f"{kind} not masked: {out!r}"


@pytest.mark.parametrize(("kind", "text"), NEGATIVE, ids=[f"{k}-{i}" for i, (k, _) in enumerate(NEGATIVE)])
def test_dates_counts_and_ids_are_not_masked(kind: str, text: str) -> None:
    assert redact_text(text) == text


def test_redaction_is_linear_on_long_blobs() -> None:
    """A base64 image in a multimodal prompt must not make the scan quadratic."""
    import time

    blob = ("QUJDRGVmZ2hpams0NTY3OCsv" * 2000)[: privacy._SCAN_CHARS]
    started = time.perf_counter()
    redact_text(blob)
    redact_text("1 " * 20_000)
    redact_text("a." * 20_000)
    assert time.perf_counter() - started < 2.0


def test_redact_body_caps_and_never_leaves_half_an_identifier() -> None:
    assert redact_body(None) is None
    body = {"messages": [{"content": [{"text": "x" * (MAX_CHARS * 3)}]}]}
    assert len(redact_body(body) or "") == MAX_CHARS
    # Many e-mails shrink a lot when masked, so the scan limit's seam falls inside what is stored.
    filler = "".join(f"person{i:05d}.name@example.com " for i in range(2000))
    seam = privacy._SCAN_CHARS - len(filler)
    text = filler + "y" * (seam - 10) + "straddling.secret.person@example.com and more"
    stored = redact_body(text) or ""
    assert "straddling" not in stored and "@" not in stored


def test_too_deeply_nested_body_is_replaced_not_fatal() -> None:
    deep: Any = "prompt text"
    for _ in range(400):
        deep = {"a": deep}
    assert redact_body(deep) == TOO_DEEP


# -------------------------------------------------------------------------------------- nothing stored by default

PROMPT = "Zebra-Quartz-Prompt please summarise the Marmalade-Orbit memo"
RESPONSE = "Violet-Anchor-Response here is the summary"
IDENTIFIERS = {
    "email": "jane.roe@example.com",
    "phone": "+1 415 555 2671",
    "ip": "203.0.113.77",
    "key": "AKIAIOSFODNN7EXAMPLE",
    "card": "4111 1111 1111 1111",
}
SECRET_TEXT = f"{PROMPT}; contact {IDENTIFIERS['email']} or {IDENTIFIERS['phone']} from {IDENTIFIERS['ip']}, " + (
    f"key {IDENTIFIERS['key']}, card {IDENTIFIERS['card']}"
)


def _record(request_id: str, when: str, **overrides: Any) -> dict[str, Any]:
    rec = make_record(request_id, when, **overrides)
    rec["input"]["inputBodyJson"] = {"messages": [{"role": "user", "content": [{"text": SECRET_TEXT}]}]}
    rec["output"]["outputBodyJson"]["output"] = {"message": {"content": [{"text": RESPONSE}]}}
    return rec


def _seed(root: Path) -> None:
    good = [_record(f"p-{i}", f"{DAY}T10:00:{i:02d}Z") for i in range(5)]
    rejected = _record("p-bad-version", f"{DAY}T10:01:00Z", schemaVersion="9.9")
    no_id = _record("", f"{DAY}T10:01:01Z")
    malformed = json.dumps(_record("p-cut", f"{DAY}T10:01:02Z"))[:-40]  # a line cut short: not JSON
    path = root / log_key("111122223333", "us-east-1", f"{DAY}T10:05:00")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gz_lines([*good, rejected, no_id, malformed]))
    # a truncated object: its last, partial line is reported with an excerpt
    whole = gz_lines([_record(f"t-{i}", f"{DAY}T11:00:{i:02d}Z") for i in range(30)])
    cut = root / log_key("111122223333", "us-east-1", f"{DAY}T11:05:00", "fedcba9876543210")
    cut.parent.mkdir(parents=True, exist_ok=True)
    cut.write_bytes(whole[: len(whole) - 60])


def _run(tmp_path: Path, **cfg: Any) -> tuple[Any, Path]:
    logs = tmp_path / "logs"
    _seed(logs)
    data = {
        "start_date": "2026-01-01",
        "warehouse": str(tmp_path / "wh"),
        "sources": {"invocation_logs": {"s3": [str(logs)]}},
    }
    data.update(cfg)
    path = tmp_path / "ledger.yaml"
    path.write_text(yaml.safe_dump(data))
    result = materialize(
        build_assets(load_config(path)),
        partition_key=DAY,
        resources={"ledger": LedgerResource(config_path=str(path))},
        selection=["invocations", "rejected_records", "priced_invocations"],
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    return result, tmp_path / "wh"


def _warehouse_text(wh: Path) -> tuple[str, bytes]:
    """Every value of every Parquet file as text, and the files' raw bytes (footers hold min/max statistics)."""
    files = sorted(wh.rglob("*.parquet"))
    assert files
    texts, raw = [], b""
    for f in files:
        raw += f.read_bytes()
        texts.append(json.dumps(pq.read_table(f).to_pylist(), default=str, ensure_ascii=False))
    return "\n".join(texts), raw


def _dagster_text(result: Any) -> str:
    return "\n".join(repr(e) for e in result.all_events)


def _secrets() -> list[str]:
    words = ["Zebra-Quartz-Prompt", "Marmalade-Orbit", "Violet-Anchor-Response", *IDENTIFIERS.values()]
    return words


def test_no_body_is_stored_or_logged_by_default(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    result, wh = _run(tmp_path)
    text, raw = _warehouse_text(wh)
    printed = capfd.readouterr()
    events = _dagster_text(result)
    for secret in _secrets():
        assert secret not in text, f"{secret!r} stored in a table"
        assert secret.encode() not in raw, f"{secret!r} in Parquet bytes"
        assert secret not in events, f"{secret!r} in Dagster event metadata"
        assert secret not in printed.out + printed.err, f"{secret!r} in the logs"
    inv = pl.read_parquet(next(wh.glob("invocations/**/*.parquet")))
    assert inv.filter(pl.col("request_id").str.starts_with("p-")).height == 5
    assert inv["input_body_redacted"].null_count() == inv.height
    assert inv["output_body_redacted"].null_count() == inv.height


def test_rejected_records_never_carry_a_prompt(tmp_path: Path) -> None:
    _, wh = _run(tmp_path)
    rejects = pl.read_parquet(next(wh.glob("rejected_records/**/*.parquet")))
    reasons = sorted(r.split(":")[0] for r in rejects["reason"])
    assert reasons == ["malformed_json", "missing_field", "truncated_gzip", "unknown_schema_version"]
    for excerpt in rejects["raw_excerpt"]:
        for secret in _secrets():
            assert secret not in excerpt
    assert rejects.filter(pl.col("reason").str.starts_with("unknown_schema"))["raw_excerpt"].item().startswith("{")


def test_redacted_bodies_keep_text_and_mask_identifiers(tmp_path: Path) -> None:
    result, wh = _run(tmp_path, retain_bodies="redacted")
    text, raw = _warehouse_text(wh)
    for value in IDENTIFIERS.values():
        assert value not in text and value.encode() not in raw
    inv = pl.read_parquet(next(wh.glob("invocations/**/*.parquet"))).filter(pl.col("request_id") == "p-0")
    stored_in = inv["input_body_redacted"].item()
    stored_out = inv["output_body_redacted"].item()
    assert "Zebra-Quartz-Prompt" in stored_in and "Marmalade-Orbit" in stored_in
    for token in ("[EMAIL]", "[PHONE]", "[IP]", "[AWS_ACCESS_KEY]", "[CARD]"):
        assert token in stored_in
    assert "Violet-Anchor-Response" in stored_out
    assert "Zebra-Quartz-Prompt" not in _dagster_text(result)  # kept in the table only, never in metadata
    rejects = pl.read_parquet(next(wh.glob("rejected_records/**/*.parquet")))
    assert not any("Zebra-Quartz-Prompt" in e for e in rejects["raw_excerpt"])


def test_malformed_line_with_the_body_first_keeps_no_prompt() -> None:
    record = {"input": {"inputBodyJson": {"messages": [{"content": [{"text": PROMPT}]}]}}, "requestId": "x"}
    line = json.dumps(record)[:-5].encode()
    items = list(iter_json_lines(line))
    assert len(items) == 1
    assert "Zebra-Quartz-Prompt" not in items[0].excerpt  # type: ignore[union-attr]
