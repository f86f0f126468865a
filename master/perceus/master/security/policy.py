"""One admission policy for every listener (the ZeroMQ bus and the legacy TCP 987 listener): revocation,
`enabled`, and what the enrollment policy does with an unknown MAC.

Before issue 14 the legacy listener had its own copy of the enrollment rules and none of the others, so a revoked
or disabled node still got its node scripts over TCP 987.
"""

from __future__ import annotations

from enum import Enum

from perceus.master.store.models import Node

REVOKED_ATTR = "revoked"
POLICIES = ("open", "approve", "allowlist")


class Unknown(Enum):
    """What happens to a MAC the store does not know."""

    ENROLL = "enroll"  # `open`, stage one's `init`: auto-add (1.x behaviour)
    PENDING = "pending"  # `approve`: noted for `perceus node approve`, nothing served
    REFUSE = "refuse"  # `allowlist`, or anything but `init`


def is_revoked(node: Node) -> bool:
    return bool(node.attrs.get(REVOKED_ATTR))


def refusal(node: Node, *, revoked_now: bool = False) -> tuple[str, str] | None:
    """Why a known node gets nothing now — ("revoked" | "disabled", text) — or None when it may be served.
    `revoked_now`: the caller knows of a revocation the stored node does not show yet (the store cache lags)."""
    if is_revoked(node):
        return "revoked", f"{node.hostname} was revoked (perceus node revoke)"
    if not node.enabled:
        return "disabled", f"node {node.hostname} is not enabled"
    if revoked_now:
        return "revoked", f"{node.hostname} was revoked (perceus node revoke)"
    return None


def unknown(policy: str, state: str, *, stage_one: bool = True) -> Unknown:
    """The enrollment policy applied to an unknown MAC saying `state` (only stage one's `init` enrolls)."""
    if state != "init" or not stage_one:
        return Unknown.REFUSE
    if policy == "open":
        return Unknown.ENROLL
    if policy == "approve":
        return Unknown.PENDING
    return Unknown.REFUSE
