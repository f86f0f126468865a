"""Message handlers: pure functions of (store, message) → reply, plus batched effects.

The server (server.py) owns the sockets; this module owns what a message means.  Check-in effects are
queued and written by `flush()` in one transaction (group commit); enrollment of unknown nodes is batched per
drained burst so a power-on storm of hundreds of nodes costs one transaction and gets distinct names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from perceus.errors import PerceusError, ProtocolError
from perceus.master.config import MasterConfig, NodeDefaults, Paths
from perceus.master.inventory import Inventory
from perceus.master.netinfo import interface_ipv4
from perceus.master.nodescripts import NodeScripts, environment
from perceus.master.security import policy as admission
from perceus.master.store.base import NodeStore
from perceus.master.store.models import ContactUpdate, EnrollRequest, InventoryReport, Node, PhaseEvent
from perceus.protocol import hwaddr
from perceus.protocol.enums import ErrorCode, Phase, Stage, WaitReason
from perceus.protocol.messages import (
    Ack,
    Action,
    CheckIn,
    Error,
    Event,
    ExecResult,
    Hello,
    Message,
    Report,
    ScriptResult,
    Wait,
    Welcome,
)

log = structlog.get_logger("perceus.bus")

MAX_MACS = 32
MAX_PENDING_NODES = 1024  # unknown MACs waiting for `perceus node approve`; more are refused, not stored
RETRY_DISABLED = 10.0
RETRY_NO_CAPSULE = 10.0
RETRY_PENDING = 15.0


@dataclass
class Incoming:
    """One decoded request and where it came from."""

    identity: bytes
    msg: Message
    peer: str = ""
    key: str = ""  # the sender's CurveZMQ public key (hex) as ZAP vouched for it; "" without Curve


@dataclass
class Outgoing:
    """One reply: header message plus raw payload frames (capsule chunks)."""

    identity: bytes
    msg: Message
    payload: Sequence[Any] = ()


class CapsuleIndex(Protocol):
    """What the handlers need from the capsule store: the current manifest hash of a capsule."""

    def manifest_hash(self, name: str) -> str | None: ...


def capsule_for(index: CapsuleIndex, node: Node) -> str | None:
    """The manifest `node` boots: a per-node/group variant when the index makes them (capsule/variants.py)."""
    for_node = getattr(index, "manifest_for", None)
    return for_node(node) if for_node is not None else index.manifest_hash(node.vnfs)


ExtraHandler = Callable[["Dispatcher", Incoming], Outgoing | None]


@dataclass
class _Reloading:
    """perceus.conf / defaults.conf, re-read when they change (Perceus 1.x cached them forever)."""

    paths: Paths
    checked: float = 0.0
    stamp: tuple[int, int] = (0, 0)
    config: MasterConfig | None = None
    defaults: NodeDefaults | None = None

    def get(self, now: float) -> tuple[MasterConfig, NodeDefaults]:
        if self.config is None or self.defaults is None or now - self.checked > 1.0:
            self.checked = now
            stamp = (_mtime(self.paths.perceus_conf), _mtime(self.paths.defaults_conf))
            unreadable = -1 in stamp  # e.g. after dropping privileges: keep what was loaded
            if (stamp != self.stamp and not unreadable) or self.config is None or self.defaults is None:
                try:
                    self.config, self.defaults = MasterConfig.load(self.paths), NodeDefaults.load(self.paths)
                    self.stamp = stamp
                except PerceusError as exc:
                    if self.config is None or self.defaults is None:
                        raise
                    log.error("config_reload_failed", error=str(exc))
        return self.config, self.defaults


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0
    except OSError:
        return -1


@dataclass
class Dispatcher:
    """Turns requests into replies and queued store effects."""

    store: NodeStore
    paths: Paths
    publish: Callable[[Message], None] = lambda msg: None
    capsules: CapsuleIndex | None = None
    clock: Callable[[], float] = time.time
    masters: tuple[str, ...] = ()
    extra: dict[type[Message], ExtraHandler] = field(default_factory=dict)
    # Typed module actions for a node in a state (issue 7's modules plug in here); must not block.
    actions_for: Callable[[Node, str], tuple[Action, ...]] | None = None
    # Nodes that stay in stage one without a capsule (the xcpu module); set by the modules feature.
    stays_in_stage1: Callable[[Node], bool] | None = None
    # Security gate (security/gate.py): rate limits, revocation, key pinning, replay; None lets all through.
    guard: Callable[[Incoming], Outgoing | None] | None = None
    # Called for every hello of a known node about to be answered (welcome or wait): the security gate binds
    # the node's MACs to the session here, so unenrolled keys never create state (security/gate.py).
    bind: Callable[[Incoming, Hello, Node], None] | None = None
    # Revoked at once (the gate's set, pushed by `perceus node revoke`), for listeners without the gate in front.
    revoked: Callable[[str], bool] = lambda mac: False
    # Why this master must not answer nodes now ("" = it may): set by multimaster/ when the shared database is
    # unreachable; requests then get no reply, so agents time out and fail over instead of stale answers.
    unavailable: str = ""
    contacts: dict[str, ContactUpdate] = field(default_factory=dict)
    events: list[PhaseEvent] = field(default_factory=list)
    inventories: dict[str, InventoryReport] = field(default_factory=dict)  # hello's hardware, per node
    deferred: list[tuple[Incoming, Node]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._conf = _Reloading(self.paths)
        self.scripts = NodeScripts(self.paths.nodescripts, clock=time.monotonic)
        self._master_ip = ""
        self._master_ip_checked = -1e9
        self._pending_ids: set[str] = set()
        self._pending_checked = -1e9
        # Load now, while the files are readable (perceus-bus may drop privileges after start-up).
        self._conf.get(self.clock())

    # ------------------------------------------------------------------ helpers
    @property
    def config(self) -> MasterConfig:
        return self._conf.get(self.clock())[0]

    @property
    def defaults(self) -> NodeDefaults:
        return self._conf.get(self.clock())[1]

    def master_ip(self) -> str:
        now = time.monotonic()
        if now - self._master_ip_checked > 30.0:  # addresses change rarely; an ioctl per message is waste
            self._master_ip_checked = now
            cfg = self.config
            self._master_ip = interface_ipv4(cfg.master_device) or (
                cfg.bus_address if cfg.bus_address not in ("0.0.0.0", "*") else ""  # noqa: S104 - the any-address: 1.x's documented default, or a value compared
            )
        return self._master_ip

    def _contact(self, node: Node, state: str, peer: str, boot_id: str, phase: str = "") -> None:
        self.contacts[node.nodeid] = ContactUpdate(
            nodeid=node.nodeid, status=state, ip=peer, t=self.clock(), boot_id=boot_id, phase=phase
        )

    def pending_writes(self) -> int:
        return len(self.contacts) + len(self.events) + len(self.inventories)

    def flush(self) -> None:
        """Group commit of queued check-in effects."""
        if self.contacts:
            batch = list(self.contacts.values())
            self.contacts.clear()
            self.store.record_contacts(batch)
        if self.inventories:  # a change from an earlier boot becomes a timeline event (issue 17)
            reports, self.inventories = list(self.inventories.values()), {}
            for rep, change in self.store.record_inventories(reports):
                log.warning("inventory_changed", node=rep.nodeid, item=change.item, kind=change.kind)
                self.events.append(
                    PhaseEvent(rep.nodeid, rep.boot_id, "inventory", change.since, ok=False, detail=change.describe())
                )
        if self.events:
            events, self.events = self.events, []
            self.store.record_events(events)

    # ------------------------------------------------------------------ dispatch
    def handle_batch(self, batch: Sequence[Incoming]) -> list[Outgoing]:
        """Handle a drained burst: every message gets exactly one reply (or none for unsolicited ones)."""
        replies: list[Outgoing] = []
        enroll: list[tuple[Incoming, EnrollRequest]] = []
        guard = self.guard
        for item in batch:
            if self.unavailable:
                break
            try:
                out = guard(item) if guard is not None else None
                if out is None:
                    out = self._handle(item, enroll)
            except ProtocolError as exc:
                log.warning("bad_message", type=item.msg.TYPE, error=str(exc), peer=item.peer)
                out = Outgoing(item.identity, Error(code=ErrorCode(exc.code), message=str(exc), rid=item.msg.rid))
            except Exception as exc:  # the error boundary: one bad message never stops the loop
                log.exception("handler_failed", type=item.msg.TYPE, peer=item.peer)
                out = Outgoing(
                    item.identity,
                    Error(code=ErrorCode.INTERNAL, message=type(exc).__name__, rid=item.msg.rid),
                )
            if out is not None:
                replies.append(out)
        if enroll and not self.unavailable:
            replies.extend(self._enroll(enroll))
        if self.unavailable:
            # Cut off mid-burst: answers computed before may rest on state another master changes; drop them all.
            self.deferred.clear()
            return []
        return replies

    def _handle(self, item: Incoming, enroll: list[tuple[Incoming, EnrollRequest]]) -> Outgoing | None:
        msg = item.msg
        if isinstance(msg, Hello):
            return self._hello(item, msg, enroll)
        if isinstance(msg, CheckIn):
            return self._checkin(item, msg)
        if isinstance(msg, Report):
            return self._report(item, msg)
        if isinstance(msg, ScriptResult):
            return self._script_result(item, msg)
        handler = self.extra.get(type(msg))
        if handler is not None:
            return handler(self, item)
        if isinstance(msg, ExecResult):
            return Outgoing(item.identity, Ack(rid=msg.rid, interval=self.config.checkin_interval))
        raise ProtocolError(f"{msg.TYPE} is not a request a master answers")

    # ------------------------------------------------------------------ hello / enrollment
    def _hello(self, item: Incoming, msg: Hello, enroll: list[tuple[Incoming, EnrollRequest]]) -> Outgoing | None:
        macs = _valid_macs(msg.macs)
        node = self.store.find_by_macs(macs)
        if node is not None:
            return self._welcome(item, msg, node)
        request = EnrollRequest(nodeid=macs[0], macs=tuple(macs), nodename=_safe_name(msg.nodename))
        policy = self.config.enrollment_policy
        decision = admission.unknown(policy, msg.state, stage_one=msg.stage == Stage.STAGE1)
        if msg.state != "init" or msg.stage != Stage.STAGE1:
            # Only stage one's `init` enrolls, as in Perceus 1.x; others are told they are unknown.
            return Outgoing(
                item.identity,
                Error(code=ErrorCode.UNKNOWN_NODE, rid=msg.rid, message=f"{macs[0]} is not a known node"),
            )
        if decision is admission.Unknown.ENROLL:
            enroll.append((item, request))
            return None
        if decision is admission.Unknown.PENDING:
            if self.pending_full(request.nodeid):
                log.warning("node_pending_refused", nodeid=request.nodeid, peer=item.peer, cap=MAX_PENDING_NODES)
                self.publish(Event(event="node_pending_refused", node=request.nodeid, at=self.clock(),
                                   data={"peer": item.peer}))  # fmt: skip
                return Outgoing(
                    item.identity,
                    Error(code=ErrorCode.RATE_LIMITED, rid=msg.rid, message="too many nodes waiting for approval"),
                )
            self.store.note_pending(request, item.peer, self.clock())
            log.info("node_pending", nodeid=request.nodeid, peer=item.peer)
            self.publish(Event(event="node_pending", node=request.nodeid, at=self.clock()))
            return Outgoing(
                item.identity,
                Wait(
                    reason=WaitReason.PENDING_APPROVAL,
                    retry_after=RETRY_PENDING,
                    rid=msg.rid,
                    message="waiting for `perceus node approve`",
                ),
            )
        log.warning("node_refused", nodeid=request.nodeid, peer=item.peer, policy=policy)
        return Outgoing(
            item.identity,
            Error(code=ErrorCode.UNKNOWN_NODE, rid=msg.rid, message=f"{macs[0]} is not on the allowlist"),
        )

    def pending_full(self, nodeid: str) -> bool:
        """The pending table is bounded: a flood of invented MACs under `approve` must not fill the store."""
        now = time.monotonic()
        if now - self._pending_checked > 2.0:
            self._pending_ids = {p.nodeid for p in self.store.pending()}
            self._pending_checked = now
        if nodeid in self._pending_ids:
            return False
        if len(self._pending_ids) >= MAX_PENDING_NODES:
            return True
        self._pending_ids.add(nodeid)
        return False

    def _enroll(self, batch: list[tuple[Incoming, EnrollRequest]]) -> list[Outgoing]:
        try:
            nodes = self.store.enroll([req for _, req in batch], self.defaults)
        except PerceusError as exc:
            log.error("enroll_failed", error=str(exc), count=len(batch))
            return [
                Outgoing(i.identity, Error(code=ErrorCode.INTERNAL, message=str(exc), rid=i.msg.rid)) for i, _ in batch
            ]
        by_mac = {mac: node for node in nodes for mac in node.macs}
        out: list[Outgoing] = []
        for item, req in batch:
            node = by_mac.get(req.nodeid)
            assert isinstance(item.msg, Hello)
            if node is None:
                out.append(
                    Outgoing(
                        item.identity,
                        Error(code=ErrorCode.INTERNAL, rid=item.msg.rid, message="enrollment lost"),
                    )
                )
                continue
            if node.created >= self.clock() - 60 and node.status == "":
                log.info("node_enrolled", node=node.hostname, nodeid=node.nodeid, peer=item.peer)
                self.publish(Event(event="node_enrolled", node=node.nodeid, hostname=node.hostname, at=self.clock()))
            reply = self._welcome(item, item.msg, node)
            if reply is not None:
                out.append(reply)
        return out

    def _welcome(self, item: Incoming, msg: Hello, node: Node) -> Outgoing | None:
        refused = admission.refusal(node)  # the same rules as the legacy listener (security/policy.py)
        if refused is not None and refused[0] == "revoked":
            return Outgoing(item.identity, Error(code=ErrorCode.REVOKED, rid=msg.rid, message=refused[1]))
        if self.bind is not None:
            self.bind(item, msg, node)
        if msg.inventory:
            self.inventories[node.nodeid] = InventoryReport(
                node.nodeid, msg.stage.value, msg.boot_id, self.clock(), Inventory.from_wire(msg.inventory)
            )
        self._contact(
            node,
            msg.state,
            item.peer,
            msg.boot_id,
            Phase.ENROLL if msg.stage == Stage.STAGE1 else Phase.RUNTIME,
        )
        self.publish(
            Event(
                event="hello",
                node=node.nodeid,
                hostname=node.hostname,
                at=self.clock(),
                data={"state": msg.state, "stage": msg.stage.value, "peer": item.peer},
            )
        )

        def wait(reason: WaitReason, retry: float, why: str) -> Outgoing:
            reply = Wait(reason=reason, retry_after=retry, rid=msg.rid, node=node.nodeid, hostname=node.hostname,
                         message=why)  # fmt: skip
            return Outgoing(item.identity, reply)

        if refused is not None:
            return wait(WaitReason.DISABLED, RETRY_DISABLED, refused[1])
        capsule = ""
        if msg.stage == Stage.STAGE1 and not (self.stays_in_stage1 is not None and self.stays_in_stage1(node)):
            if not node.vnfs:
                return wait(WaitReason.NO_CAPSULE, RETRY_NO_CAPSULE, f"no VNFS configured for {node.hostname}")
            capsule = (capsule_for(self.capsules, node) if self.capsules else None) or ""
            if not capsule:
                return wait(
                    WaitReason.NO_CAPSULE, RETRY_NO_CAPSULE, f"VNFS {node.vnfs!r} is not available on this master"
                )
        env = environment(node, msg.state, self.paths.state_dir, self.master_ip())
        plan = self.scripts.plan(msg.state, node)
        if plan.needs_master:
            self.deferred.append((item, node))
            return None  # rendered in a worker by the server, then `finish_deferred`
        return Outgoing(item.identity, self._welcome_msg(msg, node, capsule, env, self.scripts.render(plan, env)))

    def _welcome_msg(self, msg: Hello, node: Node, capsule: str, env: dict[str, str], scripts: Any) -> Welcome:
        return Welcome(
            rid=msg.rid,
            node=node.nodeid,
            hostname=node.hostname,
            group=node.group,
            vnfs=node.vnfs,
            debug=node.debug,
            interval=float(self.config.checkin_interval),
            capsule=capsule,
            scripts=scripts,
            actions=self.actions(node, _welcome_state(msg)),
            env=env,
            masters=self.masters,
        )

    def actions(self, node: Node, state: str) -> tuple[Action, ...]:
        """Module actions for `node` in `state` (none without a modules feature)."""
        return self.actions_for(node, state) if self.actions_for is not None else ()

    def render_deferred(self, item: Incoming, node: Node) -> Outgoing:
        """Runs in a worker thread: render master-side generators and build the reply."""
        msg = item.msg
        state = msg.state if isinstance(msg, Hello | CheckIn) else "ready"
        env = environment(node, state, self.paths.state_dir, self.master_ip())
        scripts = self.scripts.render(self.scripts.plan(state, node), env)
        if isinstance(msg, Hello):
            capsule = ""
            if msg.stage == Stage.STAGE1 and self.capsules is not None:
                capsule = capsule_for(self.capsules, node) or ""
            return Outgoing(item.identity, self._welcome_msg(msg, node, capsule, env, scripts))
        interval = float(self.config.checkin_interval)
        return Outgoing(
            item.identity, Ack(rid=msg.rid, interval=interval, scripts=scripts, actions=self.actions(node, state))
        )

    # ------------------------------------------------------------------ check-ins and reports
    def _known(self, item: Incoming, nodeid: str) -> Node | Outgoing:
        try:
            mac = hwaddr.normalize(nodeid)
        except PerceusError:
            raise ProtocolError(f"invalid node id {nodeid!r}") from None
        node = self.store.get(mac)
        if node is None:
            return Outgoing(
                item.identity,
                Error(code=ErrorCode.UNKNOWN_NODE, rid=item.msg.rid, message=f"{mac} is not a known node"),
            )
        return node

    def _checkin(self, item: Incoming, msg: CheckIn) -> Outgoing | None:
        node = self._known(item, msg.node)
        if isinstance(node, Outgoing):
            return node
        self._contact(node, msg.state, item.peer, msg.boot_id, Phase.RUNTIME if msg.stage == Stage.RUNTIME else "")
        plan = self.scripts.plan(msg.state, node)
        if plan.needs_master:
            self.deferred.append((item, node))
            return None
        scripts = (
            self.scripts.render(plan, environment(node, msg.state, self.paths.state_dir, self.master_ip()))
            if plan.entries
            else ()
        )
        interval = float(self.config.checkin_interval)
        actions = self.actions(node, msg.state)
        return Outgoing(item.identity, Ack(rid=msg.rid, interval=interval, scripts=scripts, actions=actions))

    def _report(self, item: Incoming, msg: Report) -> Outgoing:
        node = self._known(item, msg.node)
        if isinstance(node, Outgoing):
            return node
        self.events.append(
            PhaseEvent(
                nodeid=node.nodeid,
                boot_id=msg.boot_id,
                phase=msg.phase.value,
                t=msg.at,
                ok=msg.ok,
                done=msg.done,
                detail=msg.detail,
            )
        )
        # A report keeps the state last heard from the node: the store's, or a hello's not yet committed (a
        # report right behind a hello in the same group commit would otherwise put the old state back).
        pending = self.contacts.get(node.nodeid)
        status = (pending.status if pending is not None else node.status) or "init"
        self._contact(node, status, item.peer, msg.boot_id, msg.phase.value if msg.ok else Phase.FAILED.value)
        level = log.info if msg.ok else log.warning
        level(
            "node_phase",
            node=node.hostname,
            phase=msg.phase.value,
            ok=msg.ok,
            done=msg.done,
            detail=msg.detail,
        )
        self.publish(
            Event(
                event="phase",
                node=node.nodeid,
                hostname=node.hostname,
                at=msg.at,
                data={"phase": msg.phase.value, "ok": msg.ok, "done": msg.done, "detail": msg.detail},
            )
        )
        return Outgoing(item.identity, Ack(rid=msg.rid, interval=float(self.config.checkin_interval)))

    def _script_result(self, item: Incoming, msg: ScriptResult) -> Outgoing:
        node = self._known(item, msg.node)
        if isinstance(node, Outgoing):
            return node
        (log.info if msg.status == 0 else log.warning)(
            "node_scripts_done",
            node=node.hostname,
            state=msg.state,
            status=msg.status,
            output=msg.output[-400:],
        )
        return Outgoing(item.identity, Ack(rid=msg.rid, interval=float(self.config.checkin_interval)))


def _welcome_state(msg: Hello) -> str:
    """The state whose module actions a welcome carries: provisiond starting gets the virtual state `boot`
    (the runtime-OS part of `init` plus `ready`, see perceus.master.modules.registry)."""
    return msg.state if msg.stage == Stage.STAGE1 else "boot"


def _valid_macs(macs: Sequence[str]) -> list[str]:
    if not macs:
        raise ProtocolError("hello without hardware addresses")
    if len(macs) > MAX_MACS:
        raise ProtocolError(f"hello with {len(macs)} hardware addresses (max {MAX_MACS})")
    out: list[str] = []
    for mac in macs:
        try:
            norm = hwaddr.normalize(mac)
        except PerceusError:
            raise ProtocolError(f"invalid hardware address {mac[:40]!r}") from None
        if norm not in out:
            out.append(norm)
    return out


def _safe_name(name: str) -> str:
    """A node's own name wish (perceusd_args=nodename=…), accepted only if it is a plain host label."""
    if 0 < len(name) <= 63 and all(c.isalnum() or c in "-_." for c in name) and name[0].isalnum():
        return name
    return ""
