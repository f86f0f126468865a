"""perceus-bus feature `dnsmasq`: run dnsmasq and keep its hosts file in step with the node store.

install(daemon), when `manage dnsmasq = yes` and a dnsmasq binary exists:
* writes dnsmasq.conf, the hosts files and the TFTP tree from perceus.conf and the store, with the bus's
  *actual* endpoints on the stage-one command line, then starts dnsmasq;
* restarts dnsmasq with back-off when it dies (a loop ticker), stops it when the daemon stops;
* regenerates the hosts file and SIGHUPs dnsmasq on `nodes_changed` (the CLI's poke) at once, within a
  second of enrollments (the dispatcher's `node_enrolled` events, coalesced so a boot storm costs one
  rewrite per second), and every 30 s when the store changed some other way (addresses learned from
  check-ins; other masters' changes arrive as `nodes_changed` from the multimaster feature);
* control command `dnsmasq_restart` (after `perceus configure dhcpd`): rewrite everything and restart.
It never touches network interfaces.  Perceus 1.x only rewrote its ethers file on node add (1.x ref §3.4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from perceus.errors import PerceusError
from perceus.master.config import MasterConfig
from perceus.master.daemon import Daemon
from perceus.master.netmgr import settings as netsettings
from perceus.master.netmgr.files import NetFiles
from perceus.master.netmgr.process import DnsmasqProcess, find_dnsmasq
from perceus.master.netmgr.settings import NetSettings
from perceus.master.netmgr.tree import WriteResult, write_all, write_hosts
from perceus.protocol.messages import Event, Message

log = structlog.get_logger("perceus.netmgr")

TICK = 0.25
ENROLL_COALESCE = 0.75  # an enrollment burst rewrites the hosts file at most this often (< 1 s promise)
# Catch changes nobody announced (addresses learned from check-ins).  A rescan of 10k nodes blocks the loop
# ~110 ms (measured: list 46 ms + render/compare 53 ms), so not too often; announced changes are immediate.
RESCAN_EVERY = 30.0


def split_endpoint(endpoint: str) -> tuple[str, int | None]:
    """`tcp://10.0.0.1:9987` → ("10.0.0.1", 9987); `tcp://[::]:1` → ("::", 1)."""
    rest = endpoint.partition("://")[2]
    host, _, port = rest.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return host.strip("[]"), None


class NetworkManager:
    """The store → files → dnsmasq pipeline inside perceus-bus."""

    def __init__(
        self,
        daemon: Daemon,
        binary: str,
        *,
        config: Callable[[], MasterConfig],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.daemon = daemon
        self.files = NetFiles(daemon.paths)
        self.config = config
        self.clock = clock
        self.process = DnsmasqProcess(binary, self.files.conf, logfile=self.files.log, pidfile=self.files.pidfile)
        self.settings: NetSettings | None = None
        self.dirty_since: float | None = None
        self.last_write = -1e9
        self.last_scan = clock()

    def _settings(self) -> NetSettings:
        host, port = split_endpoint(self.daemon.server.endpoint)
        _, events = split_endpoint(self.daemon.server.pub_endpoint)
        return netsettings.from_system(self.config(), bus_host=host, bus_port=port, event_port=events)

    def write_everything(self) -> WriteResult:
        self.settings = self._settings()
        start = time.perf_counter()
        result = write_all(self.files, self.settings, self.daemon.store.list_nodes())
        self.last_write = self.clock()
        for warning in result.warnings:
            log.warning("netboot_incomplete", detail=warning)
        log.info(
            "dnsmasq_config_written",
            conf=str(self.files.conf),
            hosts=result.hosts,
            changed=len(result.changed),
            duration_ms=round((time.perf_counter() - start) * 1000, 1),
        )
        return result

    def start(self) -> bool:
        self.write_everything()
        return self.process.start()

    def refresh_hosts(self, reason: str) -> bool:
        """Rewrite the node-dependent files; SIGHUP dnsmasq when a file it caches changed."""
        if self.settings is None:
            return False
        start = time.perf_counter()
        result = WriteResult()
        write_hosts(self.files, self.settings, self.daemon.store.list_nodes(), result)
        self.last_write = self.last_scan = self.clock()
        self.dirty_since = None
        if not result.changed:
            return False
        hup = result.needs_hup and self.process.hup()
        log.info(
            "dnsmasq_hosts_written",
            reason=reason,
            hosts=result.hosts,
            hup=hup,
            duration_ms=round((time.perf_counter() - start) * 1000, 1),
        )
        return True

    # ------------------------------------------------------------------ hooks
    def note_enrolled(self) -> None:
        if self.dirty_since is None:
            self.dirty_since = self.clock()

    def tick(self) -> None:
        self.process.tick()
        now = self.clock()
        if self.dirty_since is not None and now - self.last_write >= ENROLL_COALESCE:
            self.refresh_hosts("node_enrolled")
        elif now - self.last_scan >= RESCAN_EVERY:
            self.refresh_hosts("rescan")

    def nodes_changed(self, request: dict[str, Any]) -> dict[str, Any]:
        changed = self.refresh_hosts("nodes_changed")
        return {"ok": True, "dnsmasq": self.process.running(), "hosts_changed": changed}

    def restart(self, request: dict[str, Any]) -> dict[str, Any]:
        self.process.stop()
        try:
            running = self.start()
        except PerceusError as exc:
            log.error("dnsmasq_not_started", reason=str(exc))
            return {"ok": False, "error": str(exc)}
        return {"ok": running, "dnsmasq": running, "pid": self.process.pid}

    def close(self) -> None:
        self.process.stop()


def _chain_control(daemon: Daemon, cmd: str, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Register a control command without displacing another feature's handler for it."""
    previous = daemon.server.control_handlers.get(cmd)

    def handler(request: dict[str, Any]) -> dict[str, Any]:
        reply = fn(request)
        if previous is not None:
            return {**previous(request), **reply}
        return reply

    daemon.server.control_handlers[cmd] = handler


def install(daemon: Daemon) -> None:
    """The perceus-bus feature entry point (features.py)."""
    if not daemon.config.manage_dnsmasq:
        log.info("dnsmasq_not_managed", reason="manage dnsmasq = no")
        return
    binary = find_dnsmasq()
    if binary is None:
        log.warning("dnsmasq_not_started", reason="no dnsmasq binary (apt install dnsmasq-base)")
        return
    manager = NetworkManager(daemon, binary, config=lambda: daemon.dispatcher.config)
    daemon.on_close(manager.close)
    daemon.server.add_ticker(TICK, manager.tick)
    _chain_control(daemon, "nodes_changed", manager.nodes_changed)
    _chain_control(daemon, "dnsmasq_restart", manager.restart)
    publish = daemon.dispatcher.publish

    def publish_and_note(msg: Message) -> None:
        if isinstance(msg, Event) and msg.event == "node_enrolled":
            manager.note_enrolled()
        publish(msg)

    daemon.dispatcher.publish = publish_and_note
    try:
        manager.start()
    except PerceusError as exc:
        # As Perceus 1.x warned about an unconfigured device, and goes on: the bus still serves nodes that
        # have addresses; `perceus configure dhcpd` (control `dnsmasq_restart`) retries once it is fixed.
        log.warning("dnsmasq_not_started", reason=str(exc))
