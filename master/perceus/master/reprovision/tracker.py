"""perceus-bus's side of `perceus node reprovision`: send the instruction, follow each node back to `ready`.

The CLI never talks to nodes.  It asks the bus (control `reprovision`) to send `reprovision` to a batch —
only over the ROUTER to each node's bound session, and only a proven provisiond session (with Curve; like
`exec` there is nothing to prove without it) — then polls (control `reprovision_status`).  The bus follows
each node by what it sees anyway: the `reprovision_ack`, the node's next stage-one hello (the manifest the
master assigns it then is the one the welcome names), and its provisiond's hello after that.  Before it falls
back to a node's BMC the CLI withdraws the re-entry it no longer expects (control `reprovision_forget`), so
the PXE boot that follows is not held for it (security/gate.py).

Jobs are bounded and forgotten an hour after their last poll, so a CLI that died leaks nothing.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import structlog

from perceus.errors import PerceusError, ProtocolError
from perceus.master.bus.handlers import Dispatcher, Incoming, Outgoing, capsule_for
from perceus.master.reprovision.instruction import StageOne
from perceus.master.security.audit import AuditLog
from perceus.master.store.models import Node
from perceus.protocol import hwaddr
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Ack, Event, Message, ReprovisionAck

log = structlog.get_logger("perceus.reprovision")

MAX_JOBS = 256
MAX_NODES = 100_000
KEEP_UNPOLLED = 3600.0


class Sessions(Protocol):
    """What the tracker needs of the security gate (security/gate.py)."""

    require_key: bool

    def bound(self, nodeid: str) -> Any: ...

    def identity_of(self, nodeid: str) -> bytes | None: ...

    def expect_reentry(self, nodeid: str, key: str) -> bool: ...

    def forget_reentry(self, nodeid: str) -> bool: ...


@dataclass
class NodeTrack:
    """One node of a job, as the bus saw it (times on the master's clock, seconds since the epoch)."""

    node: str
    sent: float = 0.0  # 0: not sent (`problem` says why)
    problem: str = ""
    acked: float = 0.0
    ack_ok: bool = False
    detail: str = ""
    reentry: bool = False  # its re-entry key was accepted (security/gate.py)
    stage1: float = 0.0  # the first stage-one hello after the instruction
    manifest: str = ""  # the capsule manifest the master assigned at that hello
    ready: float = 0.0  # provisiond's hello after that stage one
    failed: str = ""  # a failed phase reported since the instruction (the last one)


@dataclass
class Job:
    nodes: dict[str, NodeTrack]
    polled: float
    started: float


@dataclass
class ReprovisionJobs:
    stage_one: StageOne
    sessions: Sessions
    push: Callable[[bytes, Message], None]
    lookup: Callable[[str], Node | None]
    dispatcher: Dispatcher
    audit: AuditLog
    clock: Callable[[], float] = time.time
    jobs: OrderedDict[str, Job] = field(default_factory=OrderedDict)
    watching: dict[str, str] = field(default_factory=dict)  # NodeID → the job following it now

    # ------------------------------------------------------------------ control commands
    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        """Control `reprovision`: {nodes: [NodeID…]} → {ok, job, nodes: {NodeID: track}} (unsent: `problem`)."""
        raw = request.get("nodes")
        if not isinstance(raw, list) or not raw or len(raw) > MAX_NODES:
            return {"ok": False, "error": "no nodes given"}
        try:
            ids = list(dict.fromkeys(hwaddr.normalize(str(n)) for n in raw))
        except PerceusError as exc:
            return {"ok": False, "error": str(exc)}
        nodes = {i: n for i in ids if (n := self.lookup(i)) is not None}
        try:
            messages = {m.node: m for m in self.stage_one.messages(secrets.token_hex(8), list(nodes.values()))}
        except PerceusError as exc:
            return {"ok": False, "error": str(exc)}
        self.expire()
        job_id = next(iter(messages.values())).job if messages else secrets.token_hex(8)
        now = self.clock()
        job = Job({}, now, now)
        for nodeid in ids:
            track = job.nodes[nodeid] = NodeTrack(nodeid)
            if nodeid not in nodes:
                track.problem = "unknown node"
                continue
            self.watching[nodeid] = job_id  # followed even when unsent: the BMC may boot it instead
            track.problem = self._unroutable(nodeid)
            identity = self.sessions.identity_of(nodeid)
            if track.problem or identity is None:
                track.problem = track.problem or "no session"
                continue
            self.push(identity, messages[nodeid])
            track.sent = now
            self.audit.record("reprovision_sent", node=nodeid, job=job_id)
        self.jobs[job_id] = job
        sent = sum(1 for t in job.nodes.values() if t.sent)
        log.info("reprovision_sent", job=job_id, nodes=sent, unsent=len(ids) - sent)
        return {"ok": True, "job": job_id, "nodes": {k: asdict(v) for k, v in job.nodes.items()}}

    def _unroutable(self, nodeid: str) -> str:
        """Why the instruction cannot go to this node's session ("" = it can)."""
        b = self.sessions.bound(nodeid)
        if b is None or not b.identity:
            return "no session (powered off, or not seen since the master started)"
        if b.stage != Stage.RUNTIME:
            return "in stage one, not running provisiond"
        if self.sessions.require_key and not b.proven:
            return "provisiond's session is not proven (a stateful node's, or no hand-over): not sent"
        return ""

    def status(self, request: dict[str, Any]) -> dict[str, Any]:
        """Control `reprovision_status`: {job} → {ok, nodes: {NodeID: track + `expected` manifest}}."""
        job = self.jobs.get(str(request.get("job", "")))
        if job is None:
            return {"ok": False, "error": "unknown or expired reprovision job"}
        job.polled = self.clock()
        out: dict[str, Any] = {}
        for nodeid, track in job.nodes.items():
            node = self.lookup(nodeid)
            index = self.dispatcher.capsules
            expected = (capsule_for(index, node) if index is not None and node is not None else None) or ""
            out[nodeid] = {**asdict(track), "expected": expected, "vnfs": node.vnfs if node else ""}
        return {"ok": True, "nodes": out}

    def forget(self, request: dict[str, Any]) -> dict[str, Any]:
        """Control `reprovision_forget`: {nodes} — no re-entry is expected any more (the BMC takes over)."""
        raw = request.get("nodes")
        if not isinstance(raw, list):
            return {"ok": False, "error": "no nodes given"}
        dropped = 0
        for n in raw:
            try:
                dropped += self.sessions.forget_reentry(hwaddr.normalize(str(n)))
            except PerceusError:
                continue
        return {"ok": True, "forgotten": dropped}

    def expire(self) -> None:
        now = self.clock()
        while self.jobs:
            name, job = next(iter(self.jobs.items()))
            if len(self.jobs) < MAX_JOBS and now - job.polled < KEEP_UNPOLLED:
                break
            del self.jobs[name]
            for nodeid in job.nodes:
                if self.watching.get(nodeid) == name:
                    del self.watching[nodeid]

    # ------------------------------------------------------------------ what the bus sees
    def _track(self, nodeid: str) -> NodeTrack | None:
        job = self.jobs.get(self.watching.get(nodeid, ""))
        return job.nodes.get(nodeid) if job is not None else None

    def on_ack(self, disp: Dispatcher, item: Incoming) -> Outgoing:
        """`reprovision_ack` from provisiond (the gate has pinned it to the node's bound key already)."""
        msg = item.msg
        assert isinstance(msg, ReprovisionAck)
        try:
            nodeid = hwaddr.normalize(msg.node)
        except PerceusError:
            raise ProtocolError(f"invalid node id {msg.node!r}") from None
        track = self._track(nodeid)
        if track is None or self.watching.get(nodeid) != msg.job or not track.sent:
            log.warning("reprovision_ack_unexpected", node=nodeid, job=msg.job)
        else:
            track.acked, track.ack_ok, track.detail = self.clock(), msg.ok, msg.detail[:400]
            if msg.ok and msg.next_key:
                track.reentry = self.sessions.expect_reentry(nodeid, msg.next_key)
            log.info("reprovision_acknowledged", node=nodeid, job=msg.job, ok=msg.ok, detail=msg.detail[:200],
                     reentry=track.reentry)  # fmt: skip
            self.audit.record("reprovision_acknowledged", node=nodeid, job=msg.job, ok=msg.ok,
                              detail=msg.detail[:200], reentry=track.reentry)  # fmt: skip
        return Outgoing(item.identity, Ack(rid=msg.rid, interval=float(disp.config.checkin_interval)))

    def on_event(self, msg: Message) -> None:
        """Every event the dispatcher publishes passes here first: hellos and failed phases of tracked nodes."""
        if not isinstance(msg, Event) or msg.node not in self.watching:
            return
        track = self._track(msg.node)
        if track is None:
            return
        if msg.event == "hello":
            stage = msg.data.get("stage")
            if stage == Stage.STAGE1.value and not track.stage1:
                track.stage1 = self.clock()
                node = self.lookup(msg.node)
                index = self.dispatcher.capsules
                track.manifest = (capsule_for(index, node) if index is not None and node is not None else None) or ""
            elif stage == Stage.RUNTIME.value and track.stage1 and not track.ready:
                track.ready = self.clock()
                log.info("reprovision_ready", node=msg.node, manifest=track.manifest[:16],
                         seconds=round(track.ready - track.sent, 1))  # fmt: skip
        elif msg.event == "phase" and msg.data.get("ok") is False:
            track.failed = f"{msg.data.get('phase', '?')}: {str(msg.data.get('detail', ''))[:300]}"
