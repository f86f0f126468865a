"""Turn parsed records into the nodes to store: duplicate checks, address checks, names from a template."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from perceus.importers.naming import NameTemplate
from perceus.importers.records import NodeRecord, ParseResult, Problem, is_ipv4
from perceus.protocol import names

# RFC 1123 label; Perceus 1.x accepted anything, but a name that cannot be a DNS label breaks /etc/hosts.
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class PlannedNode:
    """A node ready to store, still carrying its source location for reports."""

    record: NodeRecord
    hostname: str
    group: str
    vnfs: str

    @property
    def mac(self) -> str:
        return self.record.mac

    @property
    def ip(self) -> str:
        return self.record.ip

    def as_json(self) -> dict[str, object]:
        bmc = self.record.bmc
        return {
            "mac": self.mac,
            "hostname": self.hostname,
            "ip": self.ip,
            "group": self.group,
            "vnfs": self.vnfs,
            "bmc": bmc.as_json() if bmc is not None else None,
        }


@dataclass
class Plan:
    """The nodes to store and every problem, errors first in source order."""

    nodes: list[PlannedNode] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class PlanOptions:
    """What the admin said: --group/--vnfs override the source's mapping; the template names the nameless."""

    group: str | None = None
    vnfs: str | None = None
    template: NameTemplate = field(default_factory=lambda: NameTemplate("n", 4, ""))
    stored: Mapping[str, str] = field(default_factory=dict)  # every MAC already in the store → its hostname
    update: bool = False  # --update: a stored MAC is overwritten instead of being an error


def _check_ip(ip: str) -> str | None:
    return None if is_ipv4(ip) else f"invalid IPv4 address {ip!r}"


def _against_store(rec: NodeRecord, options: PlanOptions, stored_names: Mapping[str, str]) -> str | None:
    """What the store would refuse: a stored MAC without --update, a host name another stored node has."""
    owner = options.stored.get(rec.mac)
    if owner is not None and not options.update:
        return f"NodeID {rec.mac} already exists (node {owner}); --update overwrites it"
    other = stored_names.get(rec.hostname.lower()) if rec.hostname else None
    if other is not None and other != rec.mac and (owner is None or owner.lower() != rec.hostname.lower()):
        return f"hostname {rec.hostname} already exists (node {other})"
    return None


def build(result: ParseResult, options: PlanOptions) -> Plan:
    """Check records against each other and the store; the first of two clashing records wins."""
    plan = Plan(errors=list(result.errors), skipped=list(result.skipped))
    stored_names = {name.lower(): mac for mac, name in options.stored.items()}
    seen_mac: dict[str, NodeRecord] = {}
    seen_ip: dict[str, NodeRecord] = {}
    seen_name: dict[str, NodeRecord] = {}
    accepted: list[NodeRecord] = []
    for rec in result.nodes:
        reason = None
        if rec.mac in seen_mac:
            reason = f"duplicate MAC {rec.mac} (first at {seen_mac[rec.mac].where})"
        elif rec.ip and (bad := _check_ip(rec.ip)):
            reason = bad
        elif rec.ip and rec.ip in seen_ip:
            reason = f"duplicate IP {rec.ip} (first at {seen_ip[rec.ip].where})"
        elif rec.hostname and not _LABEL.fullmatch(rec.hostname):
            reason = f"invalid host name {rec.hostname!r}"
        elif bad_name := _bad_names(rec.group, rec.vnfs):
            reason = bad_name
        elif rec.hostname and rec.hostname.lower() in seen_name:
            reason = f"duplicate hostname {rec.hostname} (first at {seen_name[rec.hostname.lower()].where})"
        else:
            reason = _against_store(rec, options, stored_names)
        if reason:
            plan.errors.append(Problem(rec.where, reason))
            continue
        seen_mac[rec.mac] = rec
        if rec.ip:
            seen_ip[rec.ip] = rec
        if rec.hostname:
            seen_name[rec.hostname.lower()] = rec
        accepted.append(rec)
    taken = set(options.stored.values()) | {rec.hostname for rec in accepted if rec.hostname}
    fresh = options.template.free_names(taken)
    for rec in accepted:
        hostname = rec.hostname or options.stored.get(rec.mac) or next(fresh, "")
        if not hostname:
            plan.errors.append(Problem(rec.where, "no free name left in the name template"))
            continue
        group = options.group if options.group is not None else rec.group
        vnfs = options.vnfs if options.vnfs is not None else rec.vnfs
        if bad_name := _bad_names(group, vnfs):
            plan.errors.append(Problem(rec.where, bad_name))
            continue
        plan.nodes.append(PlannedNode(rec, hostname, group, vnfs))
    return plan


def _bad_names(group: str, vnfs: str) -> str:
    """The one name rule (perceus.protocol.names) for the group and vnfs an import would store."""
    for kind, value in (("group", group), ("vnfs", vnfs)):
        if value and not names.valid(kind, value):
            return f"invalid {kind} name {value[:80]!r}: {names.rule(kind)}"
    return ""
