"""Live lookup of application inference profiles: which model each wraps, and its tags (optional, boto3).

An application profile's ARN does not name its model, and its tags are the AWS-native way to allocate its cost,
so when `attribution.lookup_inference_profiles` is on, the pipeline asks Bedrock instead of relying on the config
alone. Lookups are cached for the process (one run) and never fail the run: a profile that cannot be read is
logged and left out, and the config (or `unattributed`) covers it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, TypedDict

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline import config

log = logging.getLogger(__name__)


class ProfileInfo(TypedDict):
    model_id: str | None
    tags: dict[str, str]


_CACHE: dict[str, ProfileInfo] = {}
_KNOWN_GEOS = {"us", "us-gov", "eu", "ca", "apac", "jp", "au", "in"}


def clear_profile_cache() -> None:
    """Forget cached lookups (tests; a long-lived process that wants fresh tags)."""
    _CACHE.clear()


def _geography(region: str) -> str:
    """The system-profile prefix whose destinations include `region` (best effort, see model_id_from_arns)."""
    if region.startswith("us-gov-"):
        return "us-gov"
    if region in ("ap-northeast-1", "ap-northeast-3"):
        return "jp"
    if region in ("ap-southeast-2", "ap-southeast-4"):
        return "au"
    if region in ("ap-south-1", "ap-south-2"):
        return "in"
    return region.split("-", 1)[0].replace("ap", "apac")


def model_id_from_arns(model_arns: list[str]) -> str | None:
    """The model id an application profile should be priced as, from its `models[].modelArn` list.

    One foundation model -> that model, in-region. Several regions of one model -> it was copied from a system
    profile: the geography's prefix (`us.`, `eu.`, …) when all regions share one, else `global.`. A copied profile
    carries the price of its source (docs/formats/pricing-rules.md §5.2), and for Claude Sonnet 4.5+ global is 10%
    cheaper than geo.
    """
    ids: list[str] = []
    regions: list[str] = []
    for arn in model_arns:
        parts = arn.split(":", 5)
        if len(parts) < 6:
            continue
        rtype, _, rid = parts[5].partition("/")
        if rtype == "inference-profile":
            return rid
        ids.append(rid)
        regions.append(parts[3])
    if not ids:
        return None
    if len(set(ids)) > 1:
        log.warning("application profile spans several models %s; pricing as the first", sorted(set(ids)))
    model = ids[0]
    distinct = sorted({r for r in regions if r})
    if len(distinct) <= 1:
        return model
    geos = {_geography(r) for r in distinct}
    if len(geos) == 1 and geos <= _KNOWN_GEOS:
        return f"{geos.pop()}.{model}"
    apac = {"apac", "jp", "au", "in"}
    if geos <= apac:
        return f"apac.{model}"
    return f"global.{model}"


def lookup_inference_profiles(arns: Iterable[str], session: Any | None = None) -> dict[str, ProfileInfo]:
    """ARN -> {"model_id", "tags"} for each application profile Bedrock would describe; errors are logged.

    Uses `bedrock:GetInferenceProfile` and `bedrock:ListTagsForResource` in the profile's own region. A profile
    whose model could not be read but whose tags could (or the reverse) is returned with what is known; only
    complete answers are cached, so a transient error is retried by the next run.
    """
    session = session or boto3.session.Session()
    clients: dict[str, Any] = {}
    out: dict[str, ProfileInfo] = {}
    for arn in sorted(set(arns)):
        if arn in _CACHE:
            out[arn] = _CACHE[arn]
            continue
        m = config.APP_PROFILE_ARN.match(arn)
        if not m:
            log.warning("not an application inference profile ARN, skipped: %s", arn)
            continue
        region = m.group("region")
        if region not in clients:
            clients[region] = session.client("bedrock", region_name=region)
        client = clients[region]
        info: ProfileInfo = {"model_id": None, "tags": {}}
        complete = True
        try:
            resp = client.get_inference_profile(inferenceProfileIdentifier=arn)
            info["model_id"] = model_id_from_arns([x.get("modelArn", "") for x in resp.get("models", [])])
        except (BotoCoreError, ClientError) as exc:
            complete = False
            log.warning("get_inference_profile failed for %s: %s", arn, exc)
        try:
            resp = client.list_tags_for_resource(resourceARN=arn)
            info["tags"] = {t["key"]: t["value"] for t in resp.get("tags", [])}
        except (BotoCoreError, ClientError) as exc:
            complete = False
            log.warning("list_tags_for_resource failed for %s: %s", arn, exc)
        if info["model_id"] is None and not info["tags"] and not complete:
            continue
        out[arn] = info
        if complete:
            _CACHE[arn] = info
    return out
