"""The perceus-bus feature for a shared PostgreSQL store: heartbeats, LISTEN/NOTIFY, stop-when-cut-off.

- A heartbeat thread (health.py) writes this master's row in `master` every second with its served count.
- The LISTEN connection sits on a loop reader: a `node_changed` notification (a write by any master or the
  CLI on any host) is published on the PUB socket as an `Event` and, coalesced, regenerates the dnsmasq hosts
  file through the network manager's `nodes_changed` control handler, within a second (at most twice a second).
- A master that loses the database stops answering nodes (no reply, so agents time out and fail over), and
  answers again once heartbeats succeed and a fresh listener is up; hosts are regenerated then, because
  notifications sent while it was cut off are gone.  Perceus 1.x masters on a shared MySQL kept answering
  from whatever they had; here a cut-off master would hand out names and state another master may change.
- Welcome.masters lists every live master from the `master` table, plus the `--master` flags.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field

import structlog

from perceus.errors import PerceusError
from perceus.master.daemon import Daemon
from perceus.master.multimaster.health import ChangeListener, Heartbeat
from perceus.master.multimaster.identity import LIVE_WITHIN, advertised, master_id
from perceus.master.store.models import MasterInfo
from perceus.protocol.messages import Event

log = structlog.get_logger("perceus.bus")

HEARTBEAT_EVERY = 1.0
# No successful heartbeat for this long (the call may hang rather than fail) = cut off from the database.
STALE_AFTER = 4.0
TICK = 0.2
# Check-ins that change a node's status notify too, so a boot storm notifies constantly; regenerating the hosts
# file (and the other `nodes_changed` work) lists every node, so it runs at most this often: changes still
# reach dnsmasq within TICK + HOSTS_EVERY (< 1 s).
HOSTS_EVERY = 0.5


def _is_postgres(daemon: Daemon) -> bool:
    return daemon.config.database.startswith(("postgresql://", "postgres://")) and hasattr(daemon.store, "listener")


@dataclass
class MultiMaster:
    """Loop-side state: the current listener, whether we answer nodes, pending hosts regeneration."""

    daemon: Daemon
    id: str
    started: float = field(default_factory=time.time)
    listener: ChangeListener | None = None
    listener_fd: int = -1
    heartbeat: Heartbeat | None = None
    dirty: bool = False
    regenerated: float = 0.0
    cut_off: str = ""
    cli_masters: tuple[str, ...] = ()
    endpoint: str = ""

    # ------------------------------------------------------------------ identity
    def info(self) -> MasterInfo:
        """This master's row; called from the heartbeat thread (reads an int counter: safe under the GIL)."""
        return MasterInfo(
            id=self.id,
            endpoint=self.endpoint,
            host=socket.gethostname(),
            pid=os.getpid(),
            started=self.started,
            heartbeat=time.time(),
            served=self.daemon.server.counters.replied,
        )

    # ------------------------------------------------------------------ availability
    def lost(self, reason: str) -> None:
        """Stop answering nodes now (any thread may call this: the loop may be stuck in a store call)."""
        dispatcher = self.daemon.dispatcher
        if not dispatcher.unavailable:
            dispatcher.unavailable = reason or "node database unreachable"
            self.cut_off = dispatcher.unavailable
            log.error("master_unavailable", reason=self.cut_off, master=self.id)

    def _drop_listener(self) -> None:
        if self.listener is not None:
            # The fd noted at registration: a broken psycopg connection may no longer tell its fileno().
            self.daemon.server.remove_reader(self.listener_fd)
            try:
                self.listener.close()
            except Exception:  # closing a dead connection must not keep it registered  # noqa: BLE001
                log.debug("listener_close_failed")
            self.listener = None

    def _use_listener(self, listener: ChangeListener) -> None:
        self.listener = listener
        self.listener_fd = listener.fileno()
        self.daemon.server.add_reader(self.listener_fd, self.on_readable)

    # ------------------------------------------------------------------ loop callbacks
    def on_readable(self) -> None:
        """The LISTEN socket is readable: notifications, or the server dropped the connection."""
        listener = self.listener
        if listener is None:
            return
        try:
            # A small wait, not 0: psycopg only reads the socket (and notices a dropped connection) when it
            # may wait; with 0 a closed connection stays readable and returns nothing, forever.
            nodeids = listener.changes(0.002)
        except PerceusError as exc:
            log.warning("node_listener_lost", error=str(exc))
            self._drop_listener()
            self.lost(str(exc))
            return
        if not nodeids:
            return
        now = time.time()
        for nodeid in nodeids:
            self.daemon.server.publish(Event(event="node_changed", node=nodeid, at=now))
        self.dirty = True
        log.debug("nodes_changed_elsewhere", nodes=len(nodeids))

    def tick(self) -> None:
        """Every TICK s from the loop: availability transitions, listener hand-over, hosts, advertised masters."""
        hb = self.heartbeat
        assert hb is not None
        dispatcher = self.daemon.dispatcher
        fresh = hb.fresh_listener
        if fresh is not None:
            hb.fresh_listener = None
            self._drop_listener()
            self._use_listener(fresh)
        stale = time.monotonic() - hb.last_ok > STALE_AFTER
        if stale and not dispatcher.unavailable:
            self.lost(hb.error or f"no heartbeat for {STALE_AFTER:.0f}s")
        if dispatcher.unavailable:
            if self.listener is not None and (hb.error or stale):
                self._drop_listener()  # re-opened by the heartbeat thread once the database answers
            if self.listener is None:
                hb.want_listener = True
            if self.listener is not None and not hb.error and not stale:
                dispatcher.unavailable = ""
                log.warning("master_available", master=self.id, was=self.cut_off)
                self.cut_off = ""
                self.dirty = True  # notifications sent while we were cut off are lost: regenerate anyway
                self.daemon.server.publish(Event(event="master_available", node="", at=time.time()))
        self._advertise(hb.peers)
        now = time.monotonic()
        if self.dirty and not dispatcher.unavailable and now - self.regenerated >= HOSTS_EVERY:
            self.dirty = False
            self.regenerated = now
            self._regenerate_hosts()

    def _regenerate_hosts(self) -> None:
        # Looked up per call: the network manager installs after this feature, and may be absent.
        handler = self.daemon.server.control_handlers.get("nodes_changed")
        if handler is None:
            return
        try:
            handler({})
        except Exception:
            log.exception("hosts_regeneration_failed")

    def _advertise(self, peers: list[MasterInfo]) -> None:
        now = time.time()
        live = [p.endpoint for p in peers if p.id != self.id and p.endpoint and now - p.heartbeat <= LIVE_WITHIN]
        masters = tuple(dict.fromkeys([self.endpoint, *sorted(live), *self.cli_masters]))
        if masters != self.daemon.dispatcher.masters:
            self.daemon.dispatcher.masters = masters
            log.info("masters_advertised", masters=",".join(masters))

    def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        self._drop_listener()


def install(daemon: Daemon) -> None:
    """Install the feature when the store is PostgreSQL (a SQLite store has exactly one master)."""
    if not _is_postgres(daemon):
        return
    store = daemon.store
    open_listener = store.listener  # type: ignore[attr-defined]  # PostgresStore only (checked above)
    mm = MultiMaster(daemon=daemon, id=master_id(daemon.paths.state_dir), cli_masters=daemon.dispatcher.masters)
    mm.endpoint = advertised(daemon.server.endpoint, daemon.dispatcher.master_ip())
    hb = Heartbeat(store, mm.info, open_listener, mm.lost, every=HEARTBEAT_EVERY, stale_after=STALE_AFTER)
    mm.heartbeat = hb
    # First beat and listener before serving: a master that cannot reach the database does not start.
    store.heartbeat(mm.info())
    mm._use_listener(open_listener())
    hb.peers = store.masters()
    mm._advertise(hb.peers)
    daemon.server.add_ticker(TICK, mm.tick)
    hb.start()
    daemon.on_close(mm.close)
    log.info("multimaster_started", master=mm.id, endpoint=mm.endpoint, masters=len(hb.peers))
