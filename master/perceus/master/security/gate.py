"""The bus's security gate: every request passes here before its handler (Dispatcher.guard).

What it enforces, in order (each a refusal the node can act on by code):
1. rate limit per source — the node's curve key, else its IP address (RATE_LIMITED);
2. revocation — a revoked key or node gets REVOKED, at once, even mid-transfer (the chunk server's 5 s
   enrollment cache is bypassed because the gate runs first);
3. key pinning — a `hello` binds the sender's curve key to the node's MACs for that boot; every later
   request naming the node must come from the same key (else UNKNOWN_NODE: "say hello first").  A second key
   claiming a boot that is already bound is refused as REPLAYED; a new boot (new boot_id) rebinds;
4. replay / order — `seq` must grow per (node, boot); a repeat or an older one is REPLAYED.

Perceus 1.x had none of these: any host could claim any MAC and get that node's scripts (spec §13).  Under
CurveZMQ the transport already refuses replayed bytes (per-session nonces); the `seq` check is the second
layer that also holds with `bus security = none` and for an agent that resends a stale request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog

from perceus.errors import PerceusError
from perceus.master.bus.handlers import Incoming, Outgoing
from perceus.master.security.audit import AuditLog
from perceus.master.security.ratelimit import RateLimiter, is_loopback
from perceus.protocol import hwaddr
from perceus.protocol.enums import ErrorCode, Stage
from perceus.protocol.messages import Error, Hello, Message

log = structlog.get_logger("perceus.security")

MAX_TRACKED = 500_000  # (node, boot) sequence entries kept; the oldest go first


@dataclass
class Binding:
    """The curve key (hex, "" without Curve) and boot a node's MAC is bound to."""

    key: str
    boot_id: str
    stage: Stage
    nodeid: str = ""


@dataclass
class Gate:
    """State shared by the bus loop (checks) and the ZAP thread (reads `revoked_keys` only)."""

    audit: AuditLog
    limiter: RateLimiter
    require_key: bool = True  # Curve on: every request carries the key ZAP vouched for
    clock: Callable[[], float] = time.time
    exempt_loopback: bool = True  # local processes (tests, benchmarks) are not the provisioning network
    bindings: dict[str, Binding] = field(default_factory=dict)
    revoked_macs: set[str] = field(default_factory=set)
    revoked_keys: set[str] = field(default_factory=set)
    _seqs: OrderedDict[tuple[str, str], int] = field(default_factory=OrderedDict)
    refused: int = 0

    # ------------------------------------------------------------------ revocation
    def revoke(self, macs: Iterable[str]) -> int:
        """Cut these MACs off now: their bound keys are refused by ZAP and by the gate; returns keys cut."""
        cut = 0
        for mac in macs:
            self.revoked_macs.add(mac)
            b = self.bindings.pop(mac, None)
            if b is not None and b.key:
                self.revoked_keys.add(b.key)
                cut += 1
        return cut

    def unrevoke(self, macs: Iterable[str]) -> None:
        for mac in macs:
            self.revoked_macs.discard(mac)

    def set_revoked(self, macs: Iterable[str]) -> None:
        """Replace the revoked MAC set (start-up, or after a CLI change); newly revoked ones are cut off."""
        new = set(macs)
        self.revoke(new - self.revoked_macs)
        self.revoked_macs = new

    # ------------------------------------------------------------------ the check
    def _refuse(self, item: Incoming, code: ErrorCode, text: str, source: str, **fields: str) -> Outgoing:
        self.refused += 1
        log.warning("request_refused", code=code.value, type=item.msg.TYPE, source=source, reason=text, **fields)
        self.audit.refusal(f"refused_{code.value.lower()}", source, type=item.msg.TYPE, reason=text, **fields)
        return Outgoing(item.identity, Error(code=code, message=text, rid=item.msg.rid))

    def check(self, item: Incoming) -> Outgoing | None:
        """None lets the request through to its handler; otherwise the refusal to send."""
        msg = item.msg
        key = item.key
        source = key or item.peer
        if (
            self.limiter.enabled
            and not (self.exempt_loopback and is_loopback(item.peer))
            and not self.limiter.allow(source)
        ):
            self.refused += 1
            self.audit.refusal("refused_rate_limited", source, type=msg.TYPE)
            return Outgoing(item.identity, Error(code=ErrorCode.RATE_LIMITED, message="slow down", rid=msg.rid))
        if key and key in self.revoked_keys:
            return self._refuse(item, ErrorCode.REVOKED, "this session was revoked", source)
        if self.require_key and not key:
            # Curve is on but the request carries no ZAP-vouched key: the server was misconfigured.
            return self._refuse(item, ErrorCode.INTERNAL, "no authenticated key", source)
        if isinstance(msg, Hello):
            return self._hello(item, msg, source)
        node = getattr(msg, "node", None)
        if not isinstance(node, str):
            return None  # not about a node (the handler decides what it is)
        try:
            mac = hwaddr.normalize(node)
        except PerceusError:
            return None  # the handler answers BAD_MESSAGE
        if mac in self.revoked_macs:
            return self._refuse(item, ErrorCode.REVOKED, f"{mac} was revoked", source, node=mac)
        bound = self.bindings.get(mac)
        if self.require_key and (bound is None or bound.key != key):
            # Not this key's node (or the master restarted): the agent says hello again, then retries.
            return self._refuse(item, ErrorCode.UNKNOWN_NODE, "say hello first", source, node=mac)
        boot = getattr(msg, "boot_id", "") or (bound.boot_id if bound is not None else "")
        return self._sequence(item, msg, mac, boot, source)

    def _hello(self, item: Incoming, msg: Hello, source: str) -> Outgoing | None:
        macs: list[str] = []
        for raw in msg.macs[:64]:
            try:
                macs.append(hwaddr.normalize(raw))
            except PerceusError:
                return None  # the handler refuses the whole hello with BAD_MESSAGE
        if not macs:
            return None
        revoked = [m for m in macs if m in self.revoked_macs]
        if revoked:
            return self._refuse(item, ErrorCode.REVOKED, f"{revoked[0]} was revoked", source, node=revoked[0])
        for mac in macs:
            b = self.bindings.get(mac)
            if b is not None and b.boot_id == msg.boot_id and b.key != item.key:
                # Someone else claims a boot that another key already opened: a replay or a hijack.
                return self._refuse(item, ErrorCode.REPLAYED, "this boot is bound to another key", source, node=mac)
        refused = self._sequence(item, msg, macs[0], msg.boot_id, source)
        if refused is not None:
            return refused
        for mac in macs:
            b = self.bindings.get(mac)
            if b is None or b.key != item.key or b.boot_id != msg.boot_id:
                self.bindings[mac] = Binding(item.key, msg.boot_id, msg.stage, macs[0])
        return None

    def _sequence(self, item: Incoming, msg: Message, mac: str, boot: str, source: str) -> Outgoing | None:
        seq = getattr(msg, "seq", 0)
        if not isinstance(seq, int) or seq <= 0:
            return None  # 0 = an agent from before sequencing; Curve still pins its key
        slot = (mac, boot)
        last = self._seqs.get(slot)
        if last is not None and seq <= last:
            return self._refuse(item, ErrorCode.REPLAYED, f"seq {seq} after {last}", source, node=mac)
        self._seqs[slot] = seq
        if last is None and len(self._seqs) > MAX_TRACKED:
            self._seqs.popitem(last=False)
        return None

    def bound(self, nodeid: str) -> Binding | None:
        """The current binding of a node (its primary MAC), for once-per-boot deliveries."""
        return self.bindings.get(nodeid)
