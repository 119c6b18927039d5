"""Attribution: user, application, cost center and environment of each invocation, from metadata and config."""

from pipeline.attribution.rules import DIMENSIONS, app_profile_arn, attribute, attribution_gaps

__all__ = ["DIMENSIONS", "app_profile_arn", "attribute", "attribution_gaps"]
