"""Plain data the store hands out and takes in; no SQL here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from perceus.master.inventory import Inventory

# Node attributes that `perceus node set` may change (plus free-form extra attributes).
SETTABLE = ("hostname", "group", "vnfs", "enabled", "debug", "desc", "ip", "status", "lastcontact")
# Attributes perceus-bus owns; setting them by hand draws a warning as in Perceus 1.x.
DAEMON_OWNED = ("status", "ip", "lastcontact")


@dataclass(frozen=True)
class Node:
    """One node as stored."""

    nodeid: str
    hostname: str
    group: str = ""
    vnfs: str = ""
    enabled: bool = True
    debug: int = 0
    desc: str = ""
    ip: str = ""
    status: str = ""
    lastcontact: float = 0.0
    boot_id: str = ""
    phase: str = ""
    created: float = 0.0
    updated: float = 0.0
    macs: tuple[str, ...] = ()
    attrs: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form used by `--json`."""
        return {
            "nodeid": self.nodeid,
            "hostname": self.hostname,
            "group": self.group,
            "vnfs": self.vnfs,
            "enabled": self.enabled,
            "debug": self.debug,
            "desc": self.desc,
            "ip": self.ip,
            "status": self.status,
            "lastcontact": self.lastcontact,
            "boot_id": self.boot_id,
            "phase": self.phase,
            "created": self.created,
            "macs": list(self.macs),
            "attrs": dict(self.attrs),
        }


@dataclass(frozen=True)
class NewNode:
    """A node to add (CLI, importers, enrollment)."""

    nodeid: str
    hostname: str
    group: str = ""
    vnfs: str = ""
    ip: str = ""
    enabled: bool = True
    debug: int = 0
    desc: str = ""
    macs: tuple[str, ...] = ()
    attrs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EnrollRequest:
    """An unknown node asking to be added: all its hardware addresses, and an optional name wish."""

    nodeid: str
    macs: tuple[str, ...] = ()
    nodename: str = ""


@dataclass(frozen=True)
class ContactUpdate:
    """One check-in's effect on a node row, applied in batches (group commit)."""

    nodeid: str
    status: str
    ip: str
    t: float
    boot_id: str = ""
    phase: str = ""


@dataclass(frozen=True)
class PhaseEvent:
    """One entry of a node's boot timeline."""

    nodeid: str
    boot_id: str
    phase: str
    t: float
    ok: bool = True
    done: bool = True
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of `node timeline --json`, `node log --json` and the web API's timeline."""
        return {"phase": self.phase, "t": self.t, "ok": self.ok, "done": self.done, "detail": self.detail,
                "boot_id": self.boot_id}  # fmt: skip


@dataclass(frozen=True)
class Pending:
    """An unknown node waiting for `perceus node approve` (policy approve)."""

    nodeid: str
    macs: tuple[str, ...]
    ip: str
    first_seen: float
    last_seen: float
    nodename: str = ""


@dataclass(frozen=True)
class ImportOutcome:
    """What an import did."""

    added: int
    updated: int
    unchanged: int


SCOPES = ("all", "group", "vnfs", "node")


@dataclass(frozen=True, order=True)
class Activation:
    """A module active for a provisionary state and a scope: `init/all`, `ready/group/gpu`, `init/node/n0001`."""

    module: str
    state: str
    scope: str
    target: str = ""

    @property
    def role(self) -> str:
        """The original's role syntax (1.x ref §8.1)."""
        return f"{self.state}/{self.scope}" + (f"/{self.target}" if self.target else "")


@dataclass(frozen=True)
class MasterInfo:
    """One perceus-bus sharing the store."""

    id: str
    endpoint: str
    host: str = ""
    pid: int = 0
    started: float = 0.0
    heartbeat: float = 0.0
    served: int = 0


@dataclass(frozen=True)
class InventoryReport:
    """The hardware a node's hello described (one per node and stage is kept)."""

    nodeid: str
    stage: str  # "stage1" or "runtime": their kernels may see different hardware, so each is compared to itself
    boot_id: str
    t: float
    inventory: Inventory
