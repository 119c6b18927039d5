"""Split the caller's identity ARN into the principal (role or user name) and the session name.

Attribution falls back to these when a call carries no request metadata: the session of an assumed role is
usually the human or workload behind it, the IAM user name is the user.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=65536)
def split_identity(arn: str | None) -> tuple[str | None, str | None]:
    """Return (principal, session_name) for `arn:aws:sts::<acct>:assumed-role/<role>/<session>`,
    `arn:aws:iam::<acct>:user/<path>/<name>` or `arn:aws:iam::<acct>:role/<name>`; (None, None) otherwise."""
    if not arn or not arn.startswith("arn:"):
        return None, None
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return None, None
    resource = parts[5]
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":
        role, _, session = rest.partition("/")
        return (role or None), (session or None)
    if kind in ("user", "role"):
        # IAM paths (`user/division/name`) keep only the name.
        return (rest.rsplit("/", 1)[-1] or None), None
    if kind == "federated-user":
        return (rest or None), None
    if resource == "root":
        return "root", None
    return None, None
