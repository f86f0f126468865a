"""The bus's security gate: every request passes here before its handler (Dispatcher.guard).

What it enforces, in order (each a refusal the node can act on by code, each refusal an audit line):
1. rate limit per source — the node's curve key, else its IP address (RATE_LIMITED);
2. revocation — a revoked key or node gets REVOKED, at once, even mid-transfer;
3. session continuity — a node's MACs are bound to the curve key that was *welcomed* (`bind`, called by the
   handler, so unenrolled keys never create state).  A `hello` from another key for a bound MAC is a conflict:
   - the runtime key that this boot's stage one announced (`Hello.next_key`, handed to provisiond inside the
     initramfs, never on the kernel command line) continues the session: proven, it may receive secrets;
   - anything else is a takeover attempt or a genuinely new boot.  The gate pushes a `sync` to the bound
     session and answers `Wait BUSY`; if the bound session shows life during PROBE_SECONDS the claim is
     refused (REPLAYED, audited `refused_takeover`), if it stays silent the old session is gone and the new
     boot is accepted (audited `session_replaced`).  A running node is therefore never taken over by a key that
     merely knows its MAC; a powered-off node's MAC can still be claimed (docs/security.md, "Can").
   - the stage-one key a proven provisiond announced when it acknowledged `reprovision` (it hands the key to
     the re-entered stage one inside the initramfs it kexecs) continues the node at once (`session_reentered`);
     while that re-entry is expected, a foreign key waits REPROVISION_WINDOW instead of a probe.
4. key pinning — every later request naming a node must come from the bound key (else UNKNOWN_NODE);
5. replay / order — `seq` must grow per binding (node, boot); a repeat or an older one is REPLAYED.

Every table here is keyed by attacker input and bounded: bindings (LRU, MAX_BINDINGS, aged after BINDING_TTL),
continuations and probes (MAX_PENDING each, aged), sequence numbers live inside the bindings.

Perceus 1.x had none of these: any host could claim any MAC and get that node's scripts (1.x ref §13).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from perceus.errors import PerceusError
from perceus.master.bus.handlers import MAX_MACS, Incoming, Outgoing
from perceus.master.security.audit import AuditLog
from perceus.master.security.ratelimit import RateLimiter, is_loopback
from perceus.protocol import hwaddr, names
from perceus.protocol.enums import ErrorCode, Stage, WaitReason
from perceus.protocol.messages import Error, Hello, Message, Wait

log = structlog.get_logger("perceus.security")
_V = TypeVar("_V")

MAX_BINDINGS = 262_144  # MACs bound at once; the least recently used go first
BINDING_TTL = 7 * 86_400.0  # a binding unused this long is forgotten (the node re-introduces itself)
MAX_PENDING = 65_536  # continuations and probes kept at once
CONTINUATION_TTL = 6 * 3600.0  # stage one → provisiond hand-over must happen within this
PROBE_SECONDS = 20.0  # how long a bound session has to show life when another key claims its node
# Stage one announced provisiond's key and went silent (kexec): a foreign key waits this long, not PROBE_SECONDS,
# so the runtime that holds the hand-over key arrives first; a stateful node's provisiond (no hand-over file)
# is let in, unproven, after it.
KEXEC_WINDOW = 120.0
# provisiond acknowledged `reprovision` with the key its re-entered stage one will use (no firmware, no PXE):
# that key continues the node at once; a foreign key waits this long, so the real stage one arrives first.
REPROVISION_WINDOW = 300.0
KEY_HEX = 64


@dataclass(slots=True)
class Binding:
    """The session a node's MACs are bound to: curve key (hex, "" without Curve), boot, and what it proved."""

    key: str
    boot_id: str
    stage: Stage
    nodeid: str = ""
    seen: float = 0.0
    proven: bool = False  # a stage-one boot, or provisiond holding stage one's hand-over key
    identity: bytes = b""  # ROUTER identity of the bound connection (node-specific pushes go there only)
    seq: int = 0
    macs: tuple[str, ...] = ()


@dataclass
class Gate:
    """State shared by the bus loop (checks) and the ZAP thread (reads `revoked_keys` and `keys` only)."""

    audit: AuditLog
    limiter: RateLimiter
    require_key: bool = True  # Curve on: every request carries the key ZAP vouched for
    clock: Callable[[], float] = time.time
    exempt_loopback: bool = True  # local processes (tests, benchmarks) are not rate limited
    bindings: OrderedDict[str, Binding] = field(default_factory=OrderedDict)
    keys: dict[str, str] = field(default_factory=dict)  # bound key → its node id (ZAP reads it for PUB)
    revoked_macs: set[str] = field(default_factory=set)
    revoked_keys: set[str] = field(default_factory=set)
    continuations: OrderedDict[str, tuple[str, float]] = field(default_factory=OrderedDict)
    probes: OrderedDict[str, float] = field(default_factory=OrderedDict)
    # NodeID → (stage-one key announced by the node's proven provisiond for `reprovision`, when)
    reentries: OrderedDict[str, tuple[str, float]] = field(default_factory=OrderedDict)
    # Send a message to a bound session's ROUTER identity (set by security/service.py): the liveness probe.
    push: Callable[[bytes, Message], None] | None = None
    max_bindings: int = MAX_BINDINGS
    probe_seconds: float = PROBE_SECONDS
    kexec_window: float = KEXEC_WINDOW
    reprovision_window: float = REPROVISION_WINDOW
    refused: int = 0

    # ------------------------------------------------------------------ revocation
    def revoke(self, macs: Iterable[str]) -> int:
        """Cut these MACs off now: their bound keys are refused by ZAP and by the gate; returns keys cut."""
        cut = 0
        for mac in macs:
            self.revoked_macs.add(mac)
            b = self.bindings.get(mac)
            if b is not None:
                self._unbind(b)
                if b.key:
                    self.revoked_keys.add(b.key)
                    cut += 1
            self.continuations.pop(mac, None)
            self.reentries.pop(mac, None)
        return cut

    def unrevoke(self, macs: Iterable[str]) -> None:
        for mac in macs:
            self.revoked_macs.discard(mac)

    def set_revoked(self, macs: Iterable[str]) -> None:
        """Replace the revoked MAC set (start-up, or after a CLI change); newly revoked ones are cut off."""
        new = set(macs)
        self.revoke(new - self.revoked_macs)
        self.revoked_macs = new

    # ------------------------------------------------------------------ refusals
    def _refuse(
        self, item: Incoming, code: ErrorCode, text: str, source: str, event: str = "", **fields: str
    ) -> Outgoing:
        self.refused += 1
        log.warning("request_refused", code=code.value, type=item.msg.TYPE, source=source, reason=text, **fields)
        self.audit.refusal(event or f"refused_{code.value.lower()}", source, type=item.msg.TYPE, reason=text, **fields)
        return Outgoing(item.identity, Error(code=code, message=text, rid=item.msg.rid))

    # ------------------------------------------------------------------ the check
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
        state = getattr(msg, "state", None)
        if isinstance(state, str) and not names.valid("state", state):
            # The state names a directory under nodescripts/: `..` once read files outside it (issue 14).
            return self._refuse(item, ErrorCode.BAD_MESSAGE, f"invalid state {state[:40]!r}", source,
                                "refused_bad_name")  # fmt: skip
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
        if bound is not None and self.clock() - bound.seen > BINDING_TTL:
            self._unbind(bound)
            bound = None
        if bound is None or bound.key != key:
            if self.require_key or bound is not None:
                # Not this key's node (or the master restarted): the agent says hello again, then retries.
                return self._refuse(item, ErrorCode.UNKNOWN_NODE, "say hello first", source, node=mac)
            return None  # `bus security = none`, not bound yet: nothing to pin (docs/security.md)
        boot = getattr(msg, "boot_id", "") or bound.boot_id
        refused = self._sequence(item, msg, bound, source, mac) if boot == bound.boot_id else None
        if refused is None:
            self._touch(bound, item)
        return refused

    def _hello(self, item: Incoming, msg: Hello, source: str) -> Outgoing | None:
        if len(msg.macs) > MAX_MACS:
            return None  # the handler refuses the whole hello (BAD_MESSAGE) before anything is stored
        macs: list[str] = []
        for raw in msg.macs:
            try:
                macs.append(hwaddr.normalize(raw))
            except PerceusError:
                return None  # the handler refuses the whole hello with BAD_MESSAGE
        if not macs:
            return None
        revoked = [m for m in macs if m in self.revoked_macs]
        if revoked:
            return self._refuse(item, ErrorCode.REVOKED, f"{revoked[0]} was revoked", source, node=revoked[0])
        now = self.clock()
        for mac in macs:
            b = self.bindings.get(mac)
            if b is None:
                continue
            if now - b.seen > BINDING_TTL:
                self._unbind(b)
                continue
            if b.key == item.key:
                if b.boot_id == msg.boot_id:
                    refused = self._sequence(item, msg, b, source, mac)
                    if refused is not None:
                        return refused
                continue
            return self._conflict(item, msg, mac, b, source, now)
        return None

    def _conflict(self, item: Incoming, msg: Hello, mac: str, b: Binding, source: str, now: float) -> Outgoing | None:
        """Another key says hello for a bound node: continuation, a new boot, or a takeover attempt."""
        if msg.stage == Stage.RUNTIME and item.key and self._continuation(mac) == item.key:
            return None  # provisiond with the key stage one handed over: `bind` marks it proven
        if msg.stage == Stage.STAGE1 and item.key and self._reentry(b.nodeid) == item.key:
            return None  # stage one re-entered by `reprovision` with the key its provisiond announced
        if msg.boot_id == b.boot_id:
            # Someone else claims a boot that another key already opened: a replay or a hijack.
            return self._refuse(item, ErrorCode.REPLAYED, "this boot is bound to another key", source,
                                "refused_takeover", node=mac)  # fmt: skip
        window = self.probe_seconds
        if b.stage == Stage.STAGE1 and self._continuation(b.nodeid):
            window = max(window, self.kexec_window)  # provisiond with the hand-over key is on its way
        if b.stage == Stage.RUNTIME and self._reentry(b.nodeid):
            window = max(window, self.reprovision_window)  # the re-entered stage one is on its way
        started = self.probes.get(mac)
        if started is None or now - started > window + 2 * self.probe_seconds:
            self._remember(self.probes, mac, now)
            self._probe(b)
            self.refused += 1
            log.warning("session_probe", node=mac, source=source, bound_stage=b.stage.value)
            self.audit.refusal("session_probe", source, node=mac, type=msg.TYPE, stage=msg.stage.value)
            return self._busy(item, msg, min(window, self.probe_seconds))
        if b.seen > started:
            # The bound session answered the probe (or kept talking): it is alive; this is not its boot.
            return self._refuse(item, ErrorCode.REPLAYED, "this node has a live session with another key", source,
                                "refused_takeover", node=mac)  # fmt: skip
        left = started + window - now
        if left > 0:
            return self._busy(item, msg, min(left, self.probe_seconds))
        self.probes.pop(mac, None)
        log.warning("session_replaced", node=mac, old_key=b.key, new_key=item.key, stage=msg.stage.value)
        self.audit.record("session_replaced", node=mac, old_key=b.key, new_key=item.key, stage=msg.stage.value,
                          source=source)  # fmt: skip
        self._unbind(b)
        return None

    def _busy(self, item: Incoming, msg: Hello, retry: float) -> Outgoing:
        reply = Wait(reason=WaitReason.BUSY, retry_after=round(max(1.0, retry), 1), rid=msg.rid,
                     message="another session holds this node; checking whether it is still alive")  # fmt: skip
        return Outgoing(item.identity, reply)

    def _probe(self, b: Binding) -> None:
        if self.push is None or not b.identity:
            return
        from perceus.protocol.messages import Sync

        try:
            self.push(b.identity, Sync(nodes=(b.nodeid,)))
        except Exception:  # a failed push only means the probe will look unanswered
            log.exception("session_probe_failed", node=b.nodeid)

    def _sequence(self, item: Incoming, msg: Message, b: Binding, source: str, mac: str) -> Outgoing | None:
        seq = getattr(msg, "seq", 0)
        if not isinstance(seq, int) or seq <= 0:
            return None  # 0 = an agent from before sequencing; Curve still pins its key
        if seq <= b.seq:
            return self._refuse(item, ErrorCode.REPLAYED, f"seq {seq} after {b.seq}", source, node=mac)
        b.seq = seq
        return None

    # ------------------------------------------------------------------ bindings (the handler welcomed a node)
    def bind(self, item: Incoming, msg: Hello, nodeid: str, macs: Sequence[str]) -> Binding:
        """Bind the node's MACs to the session that said this hello (called only for known, welcomed nodes)."""
        now = self.clock()
        current = self.bindings.get(nodeid)
        if current is not None and current.key == item.key and current.boot_id == msg.boot_id:
            self._touch(current, item)
            return current
        # The common case (one NIC, NodeID = its MAC) without building a dict per hello in a boot storm.
        all_macs = (
            tuple(macs) if macs and macs[0] == nodeid and len(macs) == 1 else tuple(dict.fromkeys([nodeid, *macs]))
        )
        continued = (
            bool(item.key) and msg.stage == Stage.RUNTIME and nodeid in self.continuations
            and self._continuation(nodeid) == item.key
        )  # fmt: skip
        # provisiond restarted with its hand-over key keeps what that key proved (same key, new boot id).
        kept = current is not None and bool(item.key) and current.key == item.key and current.proven
        proven = bool(item.key) and (msg.stage == Stage.STAGE1 or continued or kept)
        bindings = self.bindings
        for mac in all_macs:
            old = bindings.get(mac)
            if old is not None:
                self._unbind(old)
        if item.key:
            previous = self.keys.get(item.key)
            if previous is not None and previous != nodeid and previous in self.bindings:
                self._unbind(self.bindings[previous])  # one key is one node: its older node binding goes
        b = Binding(item.key, msg.boot_id, msg.stage, nodeid, now, proven, item.identity, max(0, msg.seq), all_macs)
        for mac in all_macs:
            bindings[mac] = b  # new keys go last; an old key was deleted by _unbind, so this is LRU order
        if item.key:
            self.keys[item.key] = nodeid
        if msg.stage == Stage.STAGE1:
            nxt = msg.next_key.lower()
            if item.key and len(nxt) == KEY_HEX and all(c in "0123456789abcdef" for c in nxt):
                self._remember(self.continuations, nodeid, (nxt, now))
            elif nodeid in self.continuations:
                del self.continuations[nodeid]
        elif continued:
            self.continuations.pop(nodeid, None)
            log.info("session_continued", node=nodeid, key=item.key)
            self.audit.record("session_continued", node=nodeid, key=item.key, boot_id=msg.boot_id)
        if msg.stage == Stage.STAGE1 and nodeid in self.reentries:
            expected = self._reentry(nodeid)
            del self.reentries[nodeid]  # one use: the re-entered stage one, or whatever boot came instead
            if expected and expected == item.key:
                log.info("session_reentered", node=nodeid, key=item.key)
                self.audit.record("session_reentered", node=nodeid, key=item.key, boot_id=msg.boot_id)
        if len(bindings) > self.max_bindings or self.probes:
            self._trim(now)
        return b

    def handover(self, nodeid: str, key: str) -> bool:
        """Stage one's last word before kexec (`handover`, already pinned to its key by `check`): the key
        provisiond will use, or "" — none (root on disk), so foreign keys wait only PROBE_SECONDS."""
        key = key.lower()
        if len(key) == KEY_HEX and all(c in "0123456789abcdef" for c in key):
            self._remember(self.continuations, nodeid, (key, self.clock()))
            return True
        self.continuations.pop(nodeid, None)
        return False

    def expect_reentry(self, nodeid: str, key: str) -> bool:
        """provisiond acknowledged `reprovision` (its request already pinned to its key by `check`): its stage
        one will say hello with `key`.  Only a proven runtime session may announce one — an unproven one (a
        stateful node, or a key that won a race) leaves its stage one to the normal probe."""
        key = key.lower()
        b = self.bindings.get(nodeid)
        if b is None or not b.proven or b.stage != Stage.RUNTIME or not b.key:
            return False
        if len(key) != KEY_HEX or not all(c in "0123456789abcdef" for c in key):
            return False
        self._remember(self.reentries, nodeid, (key, self.clock()))
        self.audit.record("reentry_expected", node=nodeid, key=key, old_key=b.key)
        return True

    def forget_reentry(self, nodeid: str) -> bool:
        """The re-entry did not come (the CLI falls back to the BMC): a PXE boot must not wait for it."""
        return self.reentries.pop(nodeid, None) is not None

    def _reentry(self, nodeid: str) -> str:
        entry = self.reentries.get(nodeid)
        if entry is None:
            return ""
        if self.clock() - entry[1] > self.reprovision_window:
            del self.reentries[nodeid]
            return ""
        return entry[0]

    def _continuation(self, nodeid: str) -> str:
        entry = self.continuations.get(nodeid)
        if entry is None:
            return ""
        if self.clock() - entry[1] > CONTINUATION_TTL:
            del self.continuations[nodeid]
            return ""
        return entry[0]

    def _touch(self, b: Binding, item: Incoming) -> None:
        b.seen = self.clock()
        if item.identity:
            b.identity = item.identity  # the agent may have reconnected (a new DEALER identity)
        for mac in b.macs:
            if mac in self.bindings:
                self.bindings.move_to_end(mac)

    def _unbind(self, b: Binding) -> None:
        for mac in b.macs:
            if self.bindings.get(mac) is b:
                del self.bindings[mac]
        if b.key and self.keys.get(b.key) == b.nodeid:
            del self.keys[b.key]

    def _remember(self, table: OrderedDict[str, _V], key: str, value: _V) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > MAX_PENDING:
            table.popitem(last=False)

    def _trim(self, now: float) -> None:
        while len(self.bindings) > self.max_bindings:
            _, oldest = self.bindings.popitem(last=False)
            self._unbind(oldest)
        keep = max(self.kexec_window, self.reprovision_window, self.probe_seconds) + 2 * self.probe_seconds
        while self.probes:
            mac, started = next(iter(self.probes.items()))
            if now - started <= keep:
                break
            del self.probes[mac]

    def bound(self, nodeid: str) -> Binding | None:
        """The current binding of a node (its primary MAC), for once-per-boot deliveries."""
        return self.bindings.get(nodeid)

    def identity_of(self, nodeid: str) -> bytes | None:
        """Where node-specific messages for `nodeid` go: its bound session's ROUTER identity."""
        b = self.bindings.get(nodeid)
        return b.identity if b is not None and b.identity else None

    def sizes(self) -> dict[str, int]:
        """Table sizes (control `security`; the flood test asserts they stay bounded)."""
        return {
            "bound": len(self.bindings),
            "keys": len(self.keys),
            "continuations": len(self.continuations),
            "probes": len(self.probes),
            "reentries": len(self.reentries),
            "rate_sources": len(self.limiter),
            "audit_throttle": self.audit.throttled(),
        }
