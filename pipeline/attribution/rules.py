"""Attribution: who caused each invocation (user, application, cost center, environment) and its effective tags.

Precedence is the contract (docs/pricing-and-attribution.md): request metadata first (the caller knows best),
then the tags of the application inference profile the call went through (config entries win over tags read live
from AWS), then the first principal rule whose glob matches the caller's ARN. The user falls back to the assumed
role's session name, then the IAM user name. What nothing explains is `unattributed`, never null, so
group-by sums add up.

Request metadata can be unique per call (trace ids), so its lookups are polars expressions over the whole frame;
profiles and principals repeat, so their rules run in Python once per distinct combination and are joined back.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

import polars as pl

from pipeline import config, schemas

DIMENSIONS: tuple[config.AttributionDimension, ...] = ("user", "application", "cost_center", "environment")
OUTPUT_COLUMNS: tuple[str, ...] = (*DIMENSIONS, "tags")
_COMBO = ["inference_profile", "model_id", "identity_arn", "principal", "session_name"]


def _present(value: str | None) -> bool:
    return value is not None and value.strip() != ""


def _first_key(tags: Mapping[str, str], keys: list[str]) -> str | None:
    """Value of the first of `keys` that `tags` holds with a non-blank value, trimmed (`" sales"` is `sales`)."""
    for k in keys:
        v = tags.get(k)
        if v is not None and _present(v):
            return v.strip()
    return None


def app_profile_arn(inference_profile: str | None, model_id: str | None) -> str | None:
    """The application inference profile ARN a call went through, if any (either column may carry it)."""
    for v in (inference_profile, model_id):
        if v and config.APP_PROFILE_ARN.match(v):
            return v
    return None


def _user_fallback(identity_arn: str | None, principal: str | None, session_name: str | None) -> str | None:
    """Session name of an assumed role, else the IAM user name; a role's name alone does not identify a person."""
    arn = identity_arn or ""
    if _present(session_name) and (":assumed-role/" in arn or not arn):
        return session_name
    if ":user/" in arn:
        if _present(principal):
            return principal
        return arn.rsplit("/", 1)[-1] or None
    return None


def _combo_rules(
    row: Mapping[str, Any],
    cfg: config.Attribution,
    live_profile_tags: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    arn = app_profile_arn(row["inference_profile"], row["model_id"])
    profile_tags: dict[str, str] = {}
    if arn:
        profile_tags.update(live_profile_tags.get(arn, {}))
        if arn in cfg.inference_profiles:
            profile_tags.update(cfg.inference_profiles[arn].tags)
    principal_tags: dict[str, str] = {}
    identity = row["identity_arn"]
    if identity:
        for rule in cfg.principals:
            if fnmatch.fnmatchcase(identity, rule.match):
                principal_tags = dict(rule.tags)
                break
    out: dict[str, Any] = {}
    for dim in DIMENSIONS:
        keys = cfg.request_metadata_keys.get(dim, [])
        out[f"_prof_{dim}"] = _first_key(profile_tags, keys)
        out[f"_princ_{dim}"] = _first_key(principal_tags, keys)
    out["_user_fallback"] = _user_fallback(identity, row["principal"], row["session_name"])
    merged = {**principal_tags, **profile_tags}
    out["_base_tags"] = schemas.dict_to_map({k: v.strip() if isinstance(v, str) else v for k, v in merged.items()})
    return out


def _metadata_value(keys: list[str]) -> pl.Expr:
    """First of `keys` present (non-blank) in the request metadata, trimmed, as a column expression."""
    exprs = []
    for k in keys:
        v = (
            pl.col("request_metadata")
            .list.eval(pl.element().filter(pl.element().struct.field("key") == k).struct.field("value"))
            .list.first()
            .str.strip_chars()
        )
        exprs.append(pl.when(v != "").then(v))
    return pl.coalesce(exprs) if exprs else pl.lit(None, dtype=pl.String)


def _merged_tags(work: pl.DataFrame) -> pl.DataFrame:
    """Per `_row`: request metadata over the profile/principal tags, one entry per key, keys sorted.

    Values are trimmed, and a blank metadata value is dropped first, so it never hides a profile or principal tag.

    Done in long form (explode, dedupe, regroup) because per-row list concatenation is several times slower
    in polars for list-of-struct columns, and metadata may differ on every row.
    """
    long = (
        pl.concat(
            [
                work.select("_row", pl.col("request_metadata").alias("_kv"), pl.lit(0, pl.Int8).alias("_prio")),
                work.select("_row", pl.col("_base_tags").alias("_kv"), pl.lit(1, pl.Int8).alias("_prio")),
            ]
        )
        .explode("_kv")
        .filter(pl.col("_kv").is_not_null())
        .with_columns(
            pl.col("_kv").struct.field("key").alias("_key"),
            pl.col("_kv").struct.field("value").str.strip_chars().alias("_value"),
        )
        .filter(pl.col("_key").is_not_null() & ~((pl.col("_prio") == 0) & (pl.col("_value").fill_null("") == "")))
        .with_columns(pl.struct(key=pl.col("_key"), value=pl.col("_value")).alias("_kv"))
    )
    return (
        long.sort(["_row", "_prio"])
        .unique(subset=["_row", "_key"], keep="first", maintain_order=True)
        .sort(["_row", "_key"])
        .group_by("_row", maintain_order=True)
        .agg(pl.col("_kv").alias("tags"))
        .with_columns(pl.col("tags").cast(schemas.STR_MAP))
    )


def attribute(
    inv: pl.DataFrame,
    cfg: config.Attribution,
    live_profile_tags: Mapping[str, Mapping[str, str]] | None = None,
) -> pl.DataFrame:
    """Return `inv` plus `user, application, cost_center, environment` (never null) and `tags` (merged map).

    `tags` is the principal rule's tags, overlaid by the application profile's, overlaid by the request metadata
    (the same precedence as the dimensions), keys sorted. `live_profile_tags` (ARN -> tags, e.g. from
    `profiles.lookup_inference_profiles`) fills in for profiles the config does not list; config tags win.
    """
    missing = [c for c in [*_COMBO, "request_metadata"] if c not in inv.columns]
    if missing:
        raise ValueError(f"attribute: input frame lacks column(s) {', '.join(missing)}")
    base = inv.drop([c for c in OUTPUT_COLUMNS if c in inv.columns])
    live = live_profile_tags or {}

    combos = base.select(_COMBO).unique()
    computed = [_combo_rules(r, cfg, live) for r in combos.iter_rows(named=True)]
    extra_schema: dict[str, schemas.DType] = {
        **{f"_prof_{d}": pl.String for d in DIMENSIONS},
        **{f"_princ_{d}": pl.String for d in DIMENSIONS},
        "_user_fallback": pl.String,
        "_base_tags": schemas.STR_MAP,
    }
    extra = pl.DataFrame({k: [c[k] for c in computed] for k in extra_schema}, schema=extra_schema)
    combo_df = pl.concat([combos, extra], how="horizontal")

    work = base.join(combo_df, on=_COMBO, how="left", nulls_equal=True, maintain_order="left")
    dims = []
    for dim in DIMENSIONS:
        chain = [
            _metadata_value(cfg.request_metadata_keys.get(dim, [])),
            pl.col(f"_prof_{dim}"),
            pl.col(f"_princ_{dim}"),
        ]
        if dim == "user":
            chain.append(pl.col("_user_fallback"))
        chain.append(pl.lit(schemas.UNATTRIBUTED))
        dims.append(pl.coalesce(chain).alias(dim))
    work = work.with_columns(dims).with_row_index("_row")
    work = work.join(_merged_tags(work), on="_row", how="left", maintain_order="left")
    work = work.with_columns(pl.col("tags").fill_null(pl.lit([], dtype=schemas.STR_MAP)))
    return work.select([*base.columns, *OUTPUT_COLUMNS])


def attribution_gaps(attributed: pl.DataFrame, top: int = 10) -> dict[str, Any]:
    """What the attribution could not explain, for the asset check's metadata.

    Shares are by calls and, when `total_cost_usd` is present, by cost (a few unattributed Opus calls can matter
    more than many unattributed Haiku ones). The top lists say whom to tag next: principals without a cost
    center (add a principal rule) and application profiles without one (tag the profile).
    """
    n = attributed.height
    has_cost = "total_cost_usd" in attributed.columns
    cost = pl.col("total_cost_usd").fill_null(0.0) if has_cost else pl.lit(0.0)
    total_cost = float(attributed.select(cost.sum()).item()) if n and has_cost else 0.0
    result: dict[str, Any] = {"rows": n, "unattributed_share": {}, "unattributed_cost_share": {}}
    for dim in DIMENSIONS:
        un = attributed.filter(pl.col(dim) == schemas.UNATTRIBUTED)
        result["unattributed_share"][dim] = round(un.height / n, 6) if n else 0.0
        if has_cost:
            un_cost = float(un.select(cost.sum()).item()) if un.height else 0.0
            result["unattributed_cost_share"][dim] = round(un_cost / total_cost, 6) if total_cost else 0.0
    no_cc = attributed.filter(pl.col("cost_center") == schemas.UNATTRIBUTED)

    def _top(col: str, frame: pl.DataFrame) -> list[dict[str, Any]]:
        if frame.height == 0:
            return []
        agg = (
            frame.group_by(col)
            .agg(pl.len().alias("calls"), cost.sum().alias("cost_usd"))
            .sort(["cost_usd", "calls", col], descending=[True, True, False], nulls_last=True)
            .head(top)
        )
        return [
            {col: r[col], "calls": int(r["calls"]), "cost_usd": round(float(r["cost_usd"]), 6)}
            for r in agg.iter_rows(named=True)
        ]

    result["top_principals_without_cost_center"] = _top("identity_arn", no_cc)
    profiles = no_cc.filter(pl.col("inference_profile").str.contains(":application-inference-profile/"))
    result["top_profiles_without_cost_center"] = _top("inference_profile", profiles)
    return result
