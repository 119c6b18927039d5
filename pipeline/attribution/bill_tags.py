"""Bill-side attribution: the `iamPrincipal/<key>` tags a CUR 2.0 row carries for the principal that made the call.

AWS copies the caller's IAM principal and session tags that are activated for cost allocation into the bill's
`tags` map with the prefix `iamPrincipal/` (docs/formats/billing-exports.md §4.10). They are read with the same key
lists as request metadata
(`iamPrincipal/costCenter` feeds `cost_center` when `costCenter` is listed under `cost_center`), and they rank
between application inference profiles and principal rules (docs/reconciliation.md, "Who called: IAM principal data"):

    request metadata > application profile > bill `iamPrincipal/` tags > principal rule > user name

They apply only in `chargeback`: `priced_invocations` and the daily tables never change when a bill is restated.
Whether the key after the prefix keeps a `user:` marker, and its case, are [UNVERIFIED]; both spellings are read.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

from pipeline import config, schemas
from pipeline.attribution.rules import _first_key, _user_fallback, app_profile_arn
from pipeline.normalize.identity import split_identity

PREFIX = "iamPrincipal/"
PARTIES: tuple[config.AttributionDimension, ...] = ("cost_center", "application", "user")


def _fold(key: str) -> str:
    """A key with case and separators folded, so `costCenter`, `CostCenter` and `cost_center` meet."""
    return re.sub(r"[^a-z0-9]", "", key.lower())


def principal_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """The `iamPrincipal/` entries of a bill row's tags, prefix (and a `user:` marker) removed."""
    out: dict[str, str] = {}
    for key, value in (tags or {}).items():
        if key.startswith(PREFIX) and value is not None and str(value).strip():
            out.setdefault(key[len(PREFIX) :].removeprefix("user:"), str(value))
    return out


def tag_values(tags: Mapping[str, str], cfg: config.Attribution) -> dict[str, str | None]:
    """Per party, the first key of its request-metadata key list that the principal's tags hold.

    An exact key wins; otherwise a key equal up to case and separators (the bill's spelling is unverified).
    """
    folded: dict[str, str] = {}
    for key, value in tags.items():
        folded.setdefault(_fold(key), value)
    out: dict[str, str | None] = {}
    for dim in PARTIES:
        keys = cfg.request_metadata_keys.get(dim, [])
        out[dim] = _first_key(tags, keys) or next((folded[_fold(k)] for k in keys if _fold(k) in folded), None)
    return out


def _rule_tags(arns: list[str | None], cfg: config.Attribution) -> dict[str, str]:
    """Tags of the first principal rule whose glob matches any spelling of the caller's ARN."""
    for rule in cfg.principals:
        if any(a and fnmatch.fnmatchcase(a, rule.match) for a in arns):
            return dict(rule.tags)
    return {}


def call_rules(call: Mapping[str, Any], cfg: config.Attribution) -> dict[str, tuple[str, bool]]:
    """Per party, what one caller identity (`identity_arn, principal, session_name, inference_profile, model_id`)
    implies: the *weak* value a principal rule or the user-name fallback gives it, and whether an application
    profile's tag sets it (strong). The same for every call of that identity, so worked out once per identity."""
    profile = app_profile_arn(call.get("inference_profile"), call.get("model_id"))
    profile_tags = dict(cfg.inference_profiles[profile].tags) if profile in cfg.inference_profiles else {}
    rule_tags = _rule_tags([call.get("identity_arn")], cfg)
    name, session = split_identity(call.get("identity_arn"))
    fallback = _user_fallback(
        call.get("identity_arn"), call.get("principal") or name, call.get("session_name") or session
    )
    out: dict[str, tuple[str, bool]] = {}
    for dim in PARTIES:
        keys = cfg.request_metadata_keys.get(dim, [])
        weak = _first_key(rule_tags, keys) or (fallback if dim == "user" else None) or schemas.UNATTRIBUTED
        out[dim] = (weak, _first_key(profile_tags, keys) is not None)
    return out


def owner_of_principal(
    principal_arn: str, raw_arns: list[str | None], bill_values: Mapping[str, str | None], cfg: config.Attribution
) -> dict[str, str]:
    """Owner of a billed principal with no logged call: its bill tags, then principal rules, then its name.

    The name is the session of an assumed role (often the person, for federated sessions `user@corp.example`),
    else the IAM user name (API-key users included).
    """
    rule_tags = _rule_tags([principal_arn, *raw_arns], cfg)
    role_or_user, session = split_identity(principal_arn)
    fallback = _user_fallback(principal_arn, role_or_user, session)
    out: dict[str, str] = {}
    for dim in PARTIES:
        keys = cfg.request_metadata_keys.get(dim, [])
        chain = [bill_values.get(dim), _first_key(rule_tags, keys), fallback if dim == "user" else None]
        out[dim] = next((v for v in chain if v), schemas.UNATTRIBUTED)
    return out
