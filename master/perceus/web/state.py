"""The web process's shared state: settings, tokens, the fleet snapshots and their refresher, events, metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from perceus.master.bus.control import poke
from perceus.master.config import MasterConfig, Paths
from perceus.master.store import NodeStore, open_store
from perceus.web.auth import Tokens
from perceus.web.events import EventFeed
from perceus.web.fleet import Fleet, Snapshot
from perceus.web.metrics import Metrics
from perceus.web.sse import Broker

log = structlog.get_logger("perceus.web")
T = TypeVar("T")

IDLE_AFTER = 30.0  # seconds without a page, API call or SSE client after which the refresher stops reading
SSE_BATCH = 2000  # changed rows sent as one `nodes` event; more than this and browsers are told to resync
CONTACTS_BATCH = 5000  # last-contact-only updates per `contacts` event
RECENT = 50  # events kept per node for its page
INVENTORY_EVERY = 30.0  # seconds between reads of every node's inventory (hello events trigger one sooner)
BUDGET = 10  # the refresher sleeps at least BUDGET × the time its last store read took


@dataclass
class WebState:
    paths: Paths
    config: MasterConfig
    tokens: Tokens
    interval: float = 1.0
    tls: bool = False
    fleet: Fleet = field(default_factory=Fleet)
    broker: Broker = field(default_factory=Broker)
    recent: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    feed: EventFeed | None = None
    last_interest: float = 0.0
    _store_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="perceus-web-store")
    )
    _local: threading.local = field(default_factory=threading.local)
    _wake: asyncio.Event | None = None
    _lock: asyncio.Lock | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _task: asyncio.Task[None] | None = None
    _inventory_read: float = -1e9

    def __post_init__(self) -> None:
        self.fleet.timeout = float(self.config.node_timeout)
        self.metrics = Metrics(self._counts, self._bus_stats)

    # ------------------------------------------------------------------ store (one thread owns the connection)
    def _store(self) -> NodeStore:
        store: NodeStore | None = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = open_store(self.paths, self.config)
        return store

    async def read(self, fn: Callable[[NodeStore], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._store_pool, lambda: fn(self._store()))

    # ------------------------------------------------------------------ snapshots
    async def snapshot(self, max_age: float | None = None) -> Snapshot:
        """The current snapshot, re-read when older than `max_age` (default: the refresh interval)."""
        self.last_interest = time.monotonic()
        snap = self.fleet.current
        limit = self.interval if max_age is None else max_age
        if snap is None or time.time() - snap.taken > limit:
            await self.refresh()
            snap = self.fleet.current
        assert snap is not None
        return snap

    async def refresh(self) -> None:
        assert self._lock is not None
        async with self._lock:
            stale = time.monotonic() - self._inventory_read > INVENTORY_EVERY
            nodes, pending, inventories = await self.read(
                lambda s: (s.list_nodes(), s.pending(), s.inventories() if stale else None)
            )
            if inventories is not None:
                self._inventory_read = time.monotonic()
                self.fleet.set_inventory({k: v.inventory for k, v in inventories.items()})
            before = self.fleet.contacts_seen
            changed = self.fleet.take(nodes, pending)
            self.metrics.checkins.inc(self.fleet.contacts_seen - before)
        snap = self.fleet.current
        assert snap is not None
        if not self.broker.clients:
            return
        if len(changed) > SSE_BATCH:
            self.broker.publish("resync", {"version": snap.version})
        elif changed:
            self.broker.publish("nodes", {"version": snap.version, "rows": changed})
        contacts = self.fleet.contacts
        if contacts:  # a storm of check-ins: the newest CONTACTS_BATCH only (the rest show at the next reload)
            if len(contacts) > CONTACTS_BATCH:
                contacts = dict(sorted(contacts.items(), key=lambda kv: kv[1])[-CONTACTS_BATCH:])
            self.broker.publish("contacts", {"version": snap.version, "t": contacts})
        self.broker.publish(
            "counts", {"version": snap.version, "counts": snap.counts, "t": snap.taken, "phases": snap.phases}
        )

    async def _refresher(self) -> None:
        assert self._wake is not None
        pause = self.interval
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=pause)
            except TimeoutError:
                pass
            self._wake.clear()
            busy = self.broker.clients or time.monotonic() - self.last_interest < IDLE_AFTER
            self.metrics.sse_clients.set(len(self.broker.clients))
            if not busy:
                continue
            t = time.perf_counter()
            try:
                await self.refresh()
            except Exception:
                log.exception("web_refresh_failed")
            took = time.perf_counter() - t
            # Reading the store costs the master CPU: never more than 1/BUDGET of one core on it, so a
            # 10k-node snapshot (~0.15 s) is taken at most every ~1.5 s however many events wake us.
            pause = max(self.interval, took * BUDGET)
            await asyncio.sleep(max(0.25, took * BUDGET))  # events wake us; at most 4 reads a second

    # ------------------------------------------------------------------ events
    def _on_event(self, ev: dict[str, Any]) -> None:
        """Feed thread: metrics here, the rest on the loop."""
        self.metrics.on_event(ev)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._event_on_loop, ev)

    def _event_on_loop(self, ev: dict[str, Any]) -> None:
        node = str(ev.get("node", ""))
        if node:
            self.recent.setdefault(node, deque(maxlen=RECENT)).append(ev)
        if ev.get("event") == "hello":  # a node booted: its inventory may be new
            self._inventory_read = min(self._inventory_read, time.monotonic() - INVENTORY_EVERY + 2.0)
        self.broker.publish("event", ev, node=node)
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ bus counters (scrape time)
    def _counts(self) -> dict[str, int]:
        snap = self.fleet.current
        return dict(snap.counts) if snap is not None else {}

    def bytes_served(self) -> int | None:
        """Capsule bytes this master has served (one control round trip: the boot page polls it)."""
        reply = poke(self.paths.control_socket, "capsule_stats", timeout=0.5) or {}
        return int(reply["sent_bytes"]) if reply.get("ok") else None

    def _bus_stats(self) -> dict[str, Any]:
        stats = poke(self.paths.control_socket, "stats", timeout=0.5) or {}
        if not stats.get("ok"):
            return {}
        capsules = poke(self.paths.control_socket, "capsule_stats", timeout=0.5) or {}
        if capsules.get("ok"):
            stats = {**stats, **capsules}
        pacing = poke(self.paths.control_socket, "capsule_queue", timeout=0.5) or {}
        if pacing.get("ok"):  # boot-storm pacing on: transfers in their slots and the queue behind them
            stats = {**stats, "queue_depth": len(pacing.get("queue", ())), "active": len(pacing.get("active", ()))}
        return stats

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.feed = EventFeed(self.paths, self._on_event)
        self.feed.start()
        self._task = asyncio.create_task(self._refresher())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.feed is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.feed.stop)
        self._store_pool.shutdown(wait=False)
