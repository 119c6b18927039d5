"""Attribution: precedence (request metadata > application profile > principal rule > unattributed), user
fallbacks, merged tags, the gaps report, and the live profile lookup (boto3 stubbed, no network)."""

from __future__ import annotations

from typing import Any

import boto3
import polars as pl
import pytest
from botocore.stub import Stubber

from pipeline import config, schemas
from pipeline.attribution import attribute, attribution_gaps, profiles
from tests.rows import invocations

APP_ARN = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6"
OTHER_APP_ARN = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/zzzzzz999999"
SEARCH_ROLE = "arn:aws:sts::111122223333:assumed-role/search-api/worker-7"
SUPPORT_ROLE = "arn:aws:sts::111122223333:assumed-role/support-app/alice"
IAM_USER = "arn:aws:iam::111122223333:user/carol"

CFG = config.parse_config(
    {
        "attribution": {
            "inference_profiles": {
                APP_ARN: {
                    "model_id": "anthropic.claude-3-haiku-20240307-v1:0",
                    "tags": {"costCenter": "sales", "applicationId": "docs-helper", "environment": "production"},
                }
            },
            "principals": [
                {"match": "arn:aws:sts::*:assumed-role/search-*/*", "tags": {"costCenter": "search"}},
                {"match": "arn:aws:sts::*:assumed-role/*/*", "tags": {"costCenter": "platform", "env": "dev"}},
            ],
        }
    }
).attribution


def inv(*rows: dict[str, Any]) -> pl.DataFrame:
    """Invocations with request metadata given as a dict (`metadata`)."""
    full = []
    for r in rows:
        r = dict(r)
        md = r.pop("metadata", None)
        full.append({**r, "request_metadata": None if md is None else schemas.dict_to_map(md)})
    return invocations(*full)


def one(row: dict[str, Any], cfg: config.Attribution = CFG, **kw: Any) -> dict[str, Any]:
    return attribute(inv(row), cfg, **kw).row(0, named=True)


@pytest.mark.parametrize(
    ("row", "cost_center", "application", "environment"),
    [
        pytest.param(
            {
                "metadata": {"costCenter": "growth", "env": "staging"},
                "inference_profile": APP_ARN,
                "identity_arn": SEARCH_ROLE,
            },
            "growth",
            "docs-helper",
            "staging",
            id="metadata beats profile beats principal",
        ),
        pytest.param(
            {"inference_profile": APP_ARN, "model_id": APP_ARN, "identity_arn": SEARCH_ROLE},
            "sales",
            "docs-helper",
            "production",
            id="profile beats principal",
        ),
        pytest.param(
            {"model_id": APP_ARN, "identity_arn": SEARCH_ROLE},
            "sales",
            "docs-helper",
            "production",
            id="profile ARN found in model_id too",
        ),
        pytest.param(
            {"identity_arn": SEARCH_ROLE},
            "search",
            "unattributed",
            "unattributed",
            id="principal rule",
        ),
        pytest.param(
            {"identity_arn": SUPPORT_ROLE},
            "platform",
            "unattributed",
            "dev",
            id="first matching principal rule only",
        ),
        pytest.param(
            {"identity_arn": IAM_USER},
            "unattributed",
            "unattributed",
            "unattributed",
            id="nothing matches -> unattributed",
        ),
        pytest.param(
            {"metadata": {"costCenter": "  ", "cost_center": "ops"}, "identity_arn": SEARCH_ROLE},
            "ops",
            "unattributed",
            "unattributed",
            id="blank metadata value falls through to next key",
        ),
        pytest.param(
            {"metadata": {"cost_center": "second", "costCenter": "first"}},
            "first",
            "unattributed",
            "unattributed",
            id="key order from config, not from the map",
        ),
        pytest.param(
            {"inference_profile": OTHER_APP_ARN, "identity_arn": SEARCH_ROLE},
            "search",
            "unattributed",
            "unattributed",
            id="profile not in config -> principal",
        ),
    ],
)
def test_precedence(row, cost_center, application, environment) -> None:
    got = one(row)
    assert (got["cost_center"], got["application"], got["environment"]) == (cost_center, application, environment)


@pytest.mark.parametrize(
    ("row", "user"),
    [
        pytest.param(
            {
                "metadata": {"userId": "alice@example.com"},
                "identity_arn": SUPPORT_ROLE,
                "session_name": "alice",
                "principal": "support-app",
            },
            "alice@example.com",
            id="metadata",
        ),
        pytest.param(
            {"identity_arn": SUPPORT_ROLE, "session_name": "alice", "principal": "support-app"},
            "alice",
            id="assumed-role session name",
        ),
        pytest.param({"identity_arn": IAM_USER, "principal": "carol"}, "carol", id="IAM user name"),
        pytest.param({"identity_arn": IAM_USER}, "carol", id="IAM user name from ARN when principal is null"),
        pytest.param(
            {"identity_arn": "arn:aws:sts::111122223333:assumed-role/r/", "principal": "r"},
            "unattributed",
            id="role without session -> unattributed",
        ),
        pytest.param({}, "unattributed", id="no identity at all"),
    ],
)
def test_user_fallbacks(row, user) -> None:
    assert one(row)["user"] == user


def test_live_tags_used_but_config_wins() -> None:
    live = {
        APP_ARN: {"costCenter": "from-aws", "owner": "team-x"},
        OTHER_APP_ARN: {"costCenter": "live-only", "applicationId": "bot"},
    }
    a, b = attribute(inv({"inference_profile": APP_ARN}, {"inference_profile": OTHER_APP_ARN}), CFG, live).rows(
        named=True
    )
    assert a["cost_center"] == "sales"  # config entry beats the live tag
    assert schemas.map_to_dict(a["tags"])["owner"] == "team-x"  # live tags the config lacks still count
    assert (b["cost_center"], b["application"]) == ("live-only", "bot")


def test_tags_merge_metadata_over_profile_over_principal() -> None:
    got = one(
        {
            "metadata": {"costCenter": "growth", "traceId": "t-1"},
            "inference_profile": APP_ARN,
            "identity_arn": SUPPORT_ROLE,
        }
    )
    assert got["tags"] == schemas.dict_to_map(
        {
            "applicationId": "docs-helper",
            "costCenter": "growth",
            "env": "dev",
            "environment": "production",
            "traceId": "t-1",
        }
    )


def test_never_null_and_shape_kept() -> None:
    frame = inv({"metadata": {"user": "u1"}}, {}, {"identity_arn": SEARCH_ROLE}, {"inference_profile": APP_ARN})
    out = attribute(frame, CFG)
    assert out["request_id"].to_list() == ["r0", "r1", "r2", "r3"]
    for dim in ("user", "application", "cost_center", "environment"):
        assert out[dim].null_count() == 0
    assert out["tags"].null_count() == 0
    assert out.schema["tags"] == schemas.STR_MAP
    again = attribute(out, CFG)
    assert again.columns == out.columns


def test_empty_frame() -> None:
    out = attribute(schemas.empty(schemas.INVOCATIONS), CFG)
    assert out.height == 0 and "cost_center" in out.columns


def test_attribution_gaps() -> None:
    frame = inv(
        {"identity_arn": IAM_USER},
        {"identity_arn": IAM_USER},
        {"identity_arn": SEARCH_ROLE},
        {"inference_profile": OTHER_APP_ARN, "identity_arn": IAM_USER},
    )
    out = attribute(frame, CFG).with_columns(total_cost_usd=pl.Series([1.0, 1.0, 6.0, 2.0]))
    gaps = attribution_gaps(out)
    assert gaps["rows"] == 4
    assert gaps["unattributed_share"]["cost_center"] == 0.75  # 3 of 4 calls
    assert gaps["unattributed_cost_share"]["cost_center"] == 0.4  # (1 + 1 + 2) of 10 USD
    assert gaps["top_principals_without_cost_center"] == [{"identity_arn": IAM_USER, "calls": 3, "cost_usd": 4.0}]
    assert gaps["top_profiles_without_cost_center"] == [
        {"inference_profile": OTHER_APP_ARN, "calls": 1, "cost_usd": 2.0}
    ]


# ---------------------------------------------------------------------------------------------------------------
# Live profile lookup (optional): boto3 stubbed
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arns", "expected"),
    [
        (
            ["arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"],
            "anthropic.claude-3-haiku-20240307-v1:0",
        ),
        (
            [
                f"arn:aws:bedrock:{r}::foundation-model/anthropic.claude-sonnet-4-6"
                for r in ("us-east-1", "us-east-2", "us-west-2")
            ],
            "us.anthropic.claude-sonnet-4-6",
        ),
        (
            [
                f"arn:aws:bedrock:{r}::foundation-model/anthropic.claude-sonnet-4-6"
                for r in ("eu-west-1", "eu-central-1")
            ],
            "eu.anthropic.claude-sonnet-4-6",
        ),
        (
            [
                f"arn:aws:bedrock:{r}::foundation-model/anthropic.claude-sonnet-4-6"
                for r in ("us-east-1", "eu-west-1", "ap-northeast-1")
            ],
            "global.anthropic.claude-sonnet-4-6",
        ),
        (
            ["arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.amazon.nova-pro-v1:0"],
            "us.amazon.nova-pro-v1:0",
        ),
        ([], None),
    ],
)
def test_model_id_from_arns(arns, expected) -> None:
    assert profiles.model_id_from_arns(arns) == expected


class _Session:
    """Hands out one stubbed client, the way boto3.Session.client would."""

    def __init__(self, client: Any) -> None:
        self.client_obj = client

    def client(self, service: str, region_name: str | None = None) -> Any:
        assert (service, region_name) == ("bedrock", "us-east-1")
        return self.client_obj


def test_lookup_inference_profiles_stubbed() -> None:
    profiles.clear_profile_cache()
    client = boto3.client("bedrock", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    model_arn = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
    with Stubber(client) as stub:
        stub.add_response(
            "get_inference_profile",
            {
                "inferenceProfileName": "docs",
                "inferenceProfileArn": APP_ARN,
                "inferenceProfileId": "a1b2c3d4e5f6",
                "models": [{"modelArn": model_arn}],
                "status": "ACTIVE",
                "type": "APPLICATION",
            },
            {"inferenceProfileIdentifier": APP_ARN},
        )
        stub.add_response(
            "list_tags_for_resource", {"tags": [{"key": "costCenter", "value": "sales"}]}, {"resourceARN": APP_ARN}
        )
        # The second profile fails on both calls: logged and left out, not raised.
        stub.add_client_error(
            "get_inference_profile",
            "AccessDeniedException",
            expected_params={"inferenceProfileIdentifier": OTHER_APP_ARN},
        )
        stub.add_client_error(
            "list_tags_for_resource", "AccessDeniedException", expected_params={"resourceARN": OTHER_APP_ARN}
        )
        got = profiles.lookup_inference_profiles([APP_ARN, OTHER_APP_ARN, "not-an-arn"], session=_Session(client))
        stub.assert_no_pending_responses()
    assert got == {APP_ARN: {"model_id": "anthropic.claude-3-haiku-20240307-v1:0", "tags": {"costCenter": "sales"}}}
    # Cached: a second call makes no AWS request (the stub would raise on an unexpected one).
    with Stubber(client):
        assert profiles.lookup_inference_profiles([APP_ARN], session=_Session(client)) == got
    profiles.clear_profile_cache()


# Values are trimmed, and a blank metadata value never hides a profile or principal tag.
def test_values_are_trimmed_everywhere() -> None:
    cfg = config.parse_config(
        {
            "attribution": {
                "inference_profiles": {APP_ARN: {"model_id": "m", "tags": {"applicationId": " docs-helper "}}},
                "principals": [{"match": "arn:aws:sts::*:assumed-role/search-*/*", "tags": {"costCenter": "search  "}}],
            }
        }
    ).attribution
    r = one(
        {
            "metadata": {"userId": "  alice\t", "env": " prod "},
            "inference_profile": APP_ARN,
            "identity_arn": SEARCH_ROLE,
        },
        cfg,
    )
    assert (r["user"], r["application"], r["cost_center"], r["environment"]) == (
        "alice",
        "docs-helper",
        "search",
        "prod",
    )
    assert dict(schemas.map_to_dict(r["tags"])) == {
        "applicationId": "docs-helper",
        "costCenter": "search",
        "env": "prod",
        "userId": "alice",
    }


def test_blank_metadata_never_overwrites_profile_or_principal_tags() -> None:
    r = one(
        {
            "metadata": {"costCenter": "  ", "applicationId": ""},
            "inference_profile": APP_ARN,
            "identity_arn": SEARCH_ROLE,
        }
    )
    # the dimension falls through to the profile's tag, and so does the merged tags map
    assert (r["cost_center"], r["application"]) == ("sales", "docs-helper")
    tags = dict(schemas.map_to_dict(r["tags"]))
    assert (tags["costCenter"], tags["applicationId"]) == ("sales", "docs-helper")
    # a blank value with nothing underneath is simply absent, never an empty tag
    r = one({"metadata": {"team": " "}, "identity_arn": IAM_USER})
    assert "team" not in dict(schemas.map_to_dict(r["tags"]))
