"""Access: the UI binds to loopback by default, credentials come only from the AWS chain, and the documented IAM
policy is least-privilege (read-only on logs and bills, writes only under the warehouse prefix)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "docs" / "iam-policy.json"
READ_ACTIONS = {"s3:GetObject", "s3:ListBucket", "logs:FilterLogEvents", "logs:DescribeLogGroups"}
WAREHOUSE = "arn:aws:s3:::my-ledger-warehouse"
NO_RESOURCE_LEVEL = {
    "bedrock:GetModelInvocationLoggingConfiguration",
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "pricing:GetProducts",
}
READ_ONLY_RESOURCES = ("arn:aws:s3:::my-bedrock-logs", "arn:aws:logs:", "arn:aws:s3:::my-billing-exports")


def _listify(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@pytest.mark.parametrize(
    "data",
    [
        {"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
        {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE"},
        {"sources": {"invocation_logs": {"s3": ["s3://logs"], "aws_secret_access_key": "x"}}},
        {"sources": {"billing": [{"uri": "s3://bills/cur2", "aws_session_token": "x"}]}},
    ],
    ids=["top-level-secret", "top-level-key-id", "nested-in-sources", "nested-in-billing"],
)
def test_credentials_in_the_config_file_are_rejected(tmp_path: Path, data: dict[str, Any]) -> None:
    path = tmp_path / "ledger.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="unknown key") as info:
        load_config(path)
    assert "wJalrXUtnFEMI" not in str(info.value) and "AKIAIOSFODNN7EXAMPLE" not in str(info.value)


def test_no_code_reads_credentials_itself() -> None:
    """Credentials come from the standard chain only: no module names a secret, a credentials file or a
    hand-built credentials object."""
    forbidden = re.compile(
        r"aws_secret_access_key|aws_access_key_id|aws_session_token|AWS_SECRET_ACCESS_KEY|\.aws/credentials|"
        r"botocore\.credentials|Credentials\(|get_credentials|SecretAccessKey"
    )
    offenders = []
    # The one exception: temporary credentials STS returns for `discover.accounts[].role_arn`, handed from
    # AssumeRole's answer to a boto3 session in memory (never read from or written to anywhere).
    sts_handoff = re.compile(r'^aws_(access_key_id|secret_access_key|session_token)=creds\["\w+"\],$')
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if path.name == "aws_accounts.py" and sts_handoff.match(line.strip()):
                continue
            if forbidden.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_ui_binds_to_loopback_by_default() -> None:
    """`dagster dev` passes a host to dagster-webserver only when `-h` is given, and the webserver's default is
    loopback: docs/security.md states this for the pinned version, this keeps it true (read from the installed
    sources, without importing the webserver)."""
    webserver = importlib.util.find_spec("dagster_webserver.cli")
    dev = importlib.util.find_spec("dagster._cli.dev")
    assert webserver and webserver.origin and dev and dev.origin
    assert re.search(r'^DEFAULT_WEBSERVER_HOST = "127\.0\.0\.1"$', Path(webserver.origin).read_text(), re.M)
    assert '(["--host", host] if host else [])' in Path(dev.origin).read_text()


def test_iam_policy_is_least_privilege() -> None:
    policy = json.loads(POLICY.read_text())
    assert policy["Version"] == "2012-10-17"
    statements = policy["Statement"]
    assert statements
    sids = [s["Sid"] for s in statements]
    assert len(set(sids)) == len(sids)
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        actions = _listify(statement["Action"])
        resources = _listify(statement["Resource"])
        assert all("*" not in a for a in actions), statement["Sid"]
        if "*" in resources:  # only actions AWS offers no resource-level permission for, narrowed by Region
            assert set(actions) <= NO_RESOURCE_LEVEL, statement["Sid"]
            assert statement["Condition"]["StringEquals"]["aws:RequestedRegion"], statement["Sid"]
        if any(r.startswith(READ_ONLY_RESOURCES) for r in resources):
            assert set(actions) <= READ_ACTIONS, f"{statement['Sid']} grants more than reads on logs or bills"
        writes = [a for a in actions if a.startswith("s3:") and a not in ("s3:GetObject", "s3:ListBucket")]
        if writes:
            assert all(r.startswith(f"{WAREHOUSE}/warehouse/") for r in resources), statement["Sid"]
        if "s3:ListBucket" in actions:
            prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
            assert prefixes and all(p for p in prefixes), statement["Sid"]
    granted = {a for s in statements for a in _listify(s["Action"])}
    assert {"logs:FilterLogEvents", "s3:PutObject", "s3:DeleteObject", "kms:GenerateDataKey"} <= granted


def test_docs_state_the_exact_ui_command() -> None:
    security = (ROOT / "docs" / "security.md").read_text()
    assert "dagster dev -h 127.0.0.1" in security
    assert "iam-policy.json" in security
    privacy = (ROOT / "docs" / "privacy.md").read_text()
    assert "retain_bodies" in privacy
