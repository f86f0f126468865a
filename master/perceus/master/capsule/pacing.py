"""Paced boot storms: capsule-transfer slots (credits) so the master's uplink stays full, not oversubscribed.

Without pacing, 200 nodes powered on together each pull at once: the uplink's share per node drops to a trickle,
every node's chunks time out together, and they retry together.  Here a node may transfer only while it holds
one of `slots` slots, granted first come, first served; the others are answered `wait` (reason `busy`) with
their queue position, the queue length and an estimate, and ask again after `retry_after` (short near the
head of the queue, longer further back, so waiting costs the bus a few messages per second).  A freed slot is
kept for the queue's head — a node that merely asks at the right moment never jumps the queue.

A slot is released when the node reports its capsule phase done (or failed, or says hello again: a reboot),
and when it has not asked for a chunk for IDLE_RELEASE seconds (a node that died mid-fetch); a waiting node
that stops asking leaves the queue.  Only capsule transfers are paced: hello, enrollment, check-ins and
reports never queue behind them (they are separate requests the bus answers at once).

Slots: `capsule slots = N` in perceus.conf, else ceil(`capsule uplink` / `capsule node rate`) + 1 (the one
extra keeps the pipe full while a slot changes hands); defaults 10gbit and 1gbit.  `capsule pacing = no`
turns it off (the benchmark's unpaced peer).  Perceus 1.x had no pacing: every node mounted NFS at once.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from perceus.errors import ConfigError
from perceus.master.bus.handlers import Dispatcher, Incoming, Outgoing
from perceus.protocol import hwaddr
from perceus.protocol.enums import Phase, Stage, WaitReason
from perceus.protocol.messages import Event, Message, Wait

if TYPE_CHECKING:
    from perceus.master.capsule.serve import ChunkServer

log = structlog.get_logger("perceus.capsule.pacing")

IDLE_RELEASE = 10.0  # seconds without a chunk request before a slot is taken back
HEAD_POLL = 0.25  # retry_after for nodes that will get the next free slots (a freed slot idles ≤ this)
MAX_POLL = 10.0
QUEUE_GRACE = 10.0  # a waiting node gone silent for 2 x its retry_after + this leaves the queue
MAX_QUEUE = 100_000
HISTORY = 32
DEFAULT_UPLINK_MBIT = 10_000.0
DEFAULT_NODE_MBIT = 1_000.0


def _mbit(raw: Sequence[str] | None, default: float, key: str) -> float:
    if not raw:
        return default
    text = raw[0].strip().lower().removesuffix("/s").removesuffix("ps")
    scale = 1.0
    for suffix, factor in (("gbit", 1000.0), ("mbit", 1.0), ("kbit", 0.001), ("g", 1000.0), ("m", 1.0)):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    try:
        value = float(text) * scale
    except ValueError:
        raise ConfigError(f"'{key} = {raw[0]}' is not a rate (e.g. 10gbit, 200mbit)", path="perceus.conf") from None
    if value <= 0:
        raise ConfigError(f"'{key} = {raw[0]}' must be positive", path="perceus.conf")
    return value


@dataclass(frozen=True)
class PacingSettings:
    """How many nodes may pull capsules at once, and the rates that number comes from."""

    enabled: bool = True
    slots: int = 11
    uplink_mbit: float = DEFAULT_UPLINK_MBIT
    node_mbit: float = DEFAULT_NODE_MBIT

    @classmethod
    def from_config(cls, raw: Mapping[str, Sequence[str]]) -> PacingSettings:
        enabled = (raw.get("capsule pacing") or ["yes"])[0].strip().lower() not in ("no", "off", "false", "0")
        uplink = _mbit(raw.get("capsule uplink"), DEFAULT_UPLINK_MBIT, "capsule uplink")
        node = _mbit(raw.get("capsule node rate"), DEFAULT_NODE_MBIT, "capsule node rate")
        explicit = (raw.get("capsule slots") or [""])[0].strip()
        if explicit:
            if not explicit.isdigit() or int(explicit) < 1:
                raise ConfigError(f"'capsule slots = {explicit}' is not a positive number", path="perceus.conf")
            slots = int(explicit)
        else:
            slots = math.ceil(uplink / node) + 1
        return cls(enabled, slots, uplink, node)


@dataclass(frozen=True)
class Deferral:
    """Not now: the node's place in the queue, the queue's length, an estimate, when to ask again."""

    position: int
    queue: int
    eta: float
    retry_after: float

    @property
    def message(self) -> str:
        eta = f"about {self.eta:.0f} s" if self.eta > 0 else "estimate after the first transfers"
        return f"capsule transfer queued: position {self.position} of {self.queue}, {eta}"


@dataclass
class Pacer:
    """The slot table and the waiting queue (one per perceus-bus; all calls come from the bus loop)."""

    settings: PacingSettings = field(default_factory=PacingSettings)
    clock: Callable[[], float] = time.monotonic
    active: dict[str, float] = field(default_factory=dict)  # node → last chunk request
    granted: dict[str, float] = field(default_factory=dict)  # node → when its slot was granted
    queue: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)  # node → (last ask, retry)
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    granted_total: int = 0
    deferred_total: int = 0
    _first_ask: dict[str, float] = field(default_factory=dict)  # node → when it first had to wait

    def admit(self, node: str) -> Deferral | None:
        """A capsule request from `node`: None = go ahead (it holds a slot now), else how long to wait."""
        now = self.clock()
        if node in self.active:
            self.active[node] = now
            return None
        if not self.settings.enabled:
            return None
        self._expire(now)
        free = self.settings.slots - len(self.active)
        position = self._position(node)
        if free > 0 and (position <= free if position else len(self.queue) < free):
            self.queue.pop(node, None)
            self.active[node] = now
            self.granted[node] = now
            self.granted_total += 1
            log.info("capsule_slot_granted", node=node, active=len(self.active), waiting=len(self.queue),
                     waited_s=round(now - self._first_ask.pop(node, now), 2))  # fmt: skip
            return None
        if not position:
            if len(self.queue) >= MAX_QUEUE:
                self.queue.popitem(last=False)
            self._first_ask.setdefault(node, now)
            position = len(self.queue) + 1
        retry = self._retry(position)
        self.queue[node] = (now, retry)
        self.deferred_total += 1
        return Deferral(position, len(self.queue), self.eta(position), retry)

    def release(self, node: str, *, why: str) -> None:
        """The node finished (or gave up, or rebooted): its slot goes to the head of the queue."""
        self.queue.pop(node, None)
        if self.active.pop(node, None) is None:
            return
        started = self.granted.pop(node, None)
        if started is not None and why == "done":
            self.durations.append(self.clock() - started)
        log.info("capsule_slot_released", node=node, reason=why, active=len(self.active), waiting=len(self.queue))

    def eta(self, position: int) -> float:
        """Seconds until `position` gets a slot: slots free up at `slots / mean transfer time`."""
        if not self.durations:
            return 0.0
        mean = sum(self.durations) / len(self.durations)
        return position * mean / self.settings.slots

    def snapshot(self) -> dict[str, Any]:
        """For `perceus node status` (control command `capsule_queue`)."""
        self._expire(self.clock())
        return {
            "ok": True, "enabled": self.settings.enabled, "slots": self.settings.slots,
            "active": sorted(self.active),
            "queue": [{"node": n, "position": i + 1, "eta": round(self.eta(i + 1), 1)}
                      for i, n in enumerate(self.queue)],
        }  # fmt: skip

    # ------------------------------------------------------------------ internals

    def _position(self, node: str) -> int:
        if node not in self.queue:
            return 0
        for i, key in enumerate(self.queue):
            if key == node:
                return i + 1
        return 0  # pragma: no cover - node is in the queue

    def _retry(self, position: int) -> float:
        ahead = position - max(0, self.settings.slots - len(self.active))
        if ahead <= self.settings.slots:
            return HEAD_POLL
        return max(1.0, min(MAX_POLL, self.eta(position) / 3 or ahead / self.settings.slots))

    def _expire(self, now: float) -> None:
        for node, last in list(self.active.items()):
            if now - last > IDLE_RELEASE:
                self.release(node, why="idle")
        while self.queue:
            node, (last, retry) = next(iter(self.queue.items()))
            if now - last <= 2 * retry + QUEUE_GRACE:
                break
            self.queue.popitem(last=False)
            self._first_ask.pop(node, None)
            log.info("capsule_queue_left", node=node, reason="stopped asking")
        stale = [n for n, (last, retry) in self.queue.items() if now - last > 2 * retry + QUEUE_GRACE]
        for node in stale:
            del self.queue[node]
            self._first_ask.pop(node, None)


class PaceGate:
    """The ChunkServer's `pace` hook: a `wait` (busy) reply while the node holds no transfer slot."""

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer

    def __call__(self, item: Incoming, node: str) -> Outgoing | None:
        mac = hwaddr.normalize(node)
        deferral = self.pacer.admit(mac)
        if deferral is None:
            return None
        d = deferral
        reply = Wait(reason=WaitReason.BUSY, retry_after=d.retry_after, rid=item.msg.rid, message=d.message, node=mac,
                     position=d.position, queue=d.queue, eta=round(d.eta, 1))  # fmt: skip
        return Outgoing(item.identity, reply)

    def observe(self, msg: Message) -> None:
        """Slot releases from the bus's own event stream: a node's capsule phase ended, or it said hello anew."""
        if not isinstance(msg, Event) or not msg.node:
            return
        data = msg.data
        if msg.event == "phase" and data.get("done") and data.get("phase") == Phase.CAPSULE.value:
            self.pacer.release(msg.node, why="done" if data.get("ok") else "failed")
        elif msg.event == "phase" and not data.get("ok", True):
            self.pacer.release(msg.node, why="failed")
        elif msg.event == "hello" and data.get("stage") == Stage.STAGE1.value and msg.node in self.pacer.active:
            self.pacer.release(msg.node, why="rebooted")


def install(dispatcher: Dispatcher, server: ChunkServer) -> PaceGate:
    """Pace `server`'s transfers by the settings in perceus.conf (read at start-up) and watch the event stream."""
    settings = PacingSettings.from_config(dispatcher.config.raw)
    gate = PaceGate(Pacer(settings))
    server.pace = gate
    server.pacer = gate.pacer
    publish = dispatcher.publish

    def observed(msg: Message) -> None:
        publish(msg)
        gate.observe(msg)

    dispatcher.publish = observed
    log.info("capsule_pacing", enabled=settings.enabled, slots=settings.slots, uplink_mbit=settings.uplink_mbit,
             node_mbit=settings.node_mbit)  # fmt: skip
    return gate


def queue_view(socket_path: Path) -> dict[str, str]:
    """{nodeid: "queued 3/40 ~12 s" | "transferring"} from the running bus (`perceus node status`);
    empty when no bus answers."""
    from perceus.master.bus.control import poke

    reply = poke(socket_path, "capsule_queue", timeout=1.0)
    if not reply or not reply.get("ok"):
        return {}
    out = {str(n): "capsule transfer" for n in reply.get("active", [])}
    queue = reply.get("queue", [])
    for entry in queue:
        eta = float(entry.get("eta") or 0)
        out[str(entry["node"])] = f"capsule queue {entry['position']}/{len(queue)}" + (f" ~{eta:.0f} s" if eta else "")
    return out
