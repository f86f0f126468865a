"""perceus-bus feature `nfs`: serve hybrid capsules' NFS parts with a supervised nfs-ganesha.

`manage nfs = auto` (default) runs ganesha while any hybrid capsule has an export tree (capsule/hybrid.py),
`yes` always (an empty pseudo root without one), `no` never.  Like dnsmasq (supervisor.py) it is started by the
bus and stopped with it; here the config is generated from the capsule store:
* every 2 s and on the control command `nfs_reload` (sent by `vnfs import/configure/delete`) the config is
  rendered again; when it changed (a capsule came, went or repacked its NFS part) ganesha is restarted
  (~1 s; a graceless start, and read-only mounts carry no state to recover);
* a ganesha that dies or cannot start is logged with its reason (`nfs_server_failed … reason=…`) and retried
  with back-off (1 s … 60 s); the state is the control command `nfs_status`, which `perceus info` and
  `perceus node status` show;
* everything lives under the state dir: `nfs/ganesha.conf`, `nfs/recovery/`, `nfs/ccache/`, `run/ganesha.pid`,
  `log/ganesha.log`.
Perceus 1.x only appended a line to /etc/exports (`perceus configure nfs`) and left the kernel server to the
admin; ganesha runs in user space, so it works where kernel nfsd cannot (containers, this lab).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from perceus.errors import ConfigError, PerceusError
from perceus.master.capsule import hybrid
from perceus.master.config import MasterConfig, Paths
from perceus.master.daemon import Daemon
from perceus.master.fsutil import atomic_write
from perceus.master.netmgr import ganesha_conf
from perceus.master.netmgr import settings as netsettings
from perceus.master.netmgr.ganesha_process import GaneshaProcess, find_ganesha

log = structlog.get_logger("perceus.nfs")

TICK = 2.0
BACKOFF_MAX = 60.0
MODES = ("auto", "yes", "no")


def mode(config: MasterConfig) -> str:
    values = config.raw.get("manage nfs")
    raw = values[0].strip().lower() if values else "auto"
    raw = {"true": "yes", "on": "yes", "1": "yes", "false": "no", "off": "no", "0": "no"}.get(raw, raw)
    if raw not in MODES:
        raise ConfigError(f"'manage nfs = {raw}' is not one of {', '.join(MODES)}")
    return raw


@dataclass(frozen=True)
class NfsFiles:
    paths: Paths

    @property
    def dir(self) -> Path:
        return self.paths.state_dir / "nfs"

    @property
    def conf(self) -> Path:
        return self.dir / "ganesha.conf"

    @property
    def recovery(self) -> Path:
        return self.dir / "recovery"

    @property
    def ccache(self) -> Path:
        return self.dir / "ccache"

    @property
    def pidfile(self) -> Path:
        return self.paths.run / "ganesha.pid"

    @property
    def log(self) -> Path:
        return self.paths.logs / "ganesha.log"


@dataclass
class Status:
    """What `nfs_status` answers."""

    state: str = "off"  # off | running | failed
    error: str = ""
    exports: list[str] = field(default_factory=list)
    bind: str = ""
    pid: int | None = None
    since: float = 0.0
    restarts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class NfsManager:
    """Capsule store → ganesha.conf → ganesha.nfsd, inside perceus-bus."""

    def __init__(
        self,
        paths: Paths,
        binary: str | None,
        *,
        config: Callable[[], MasterConfig],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.paths = paths
        self.files = NfsFiles(paths)
        self.binary = binary
        self.config = config
        self.clock = clock
        self.process: GaneshaProcess | None = None
        self.rendered = ""
        self.status = Status()
        self.failures = 0
        self.retry_at = 0.0

    def _fail(self, reason: str) -> None:
        self.failures += 1
        delay = min(BACKOFF_MAX, 2.0 ** (self.failures - 1))
        self.retry_at = self.clock() + delay
        if self.status.state != "failed" or self.status.error != reason:
            log.error("nfs_server_failed", reason=reason, retry_in_s=delay, exports=len(self.status.exports))
        self.status.state, self.status.error, self.status.pid = "failed", reason, None
        self.status.since = time.time()

    def _desired(self) -> tuple[str, GaneshaProcess | None, list[str]] | None:
        """(config text, process to run it, export names), or None when nothing should run."""
        cfg = self.config()
        exports = hybrid.exports(self.paths.vnfs)
        wanted = mode(cfg)
        if wanted == "no" or (wanted == "auto" and not exports):
            return None
        net = netsettings.from_system(cfg)
        plugins = ganesha_conf.plugins_dir()
        text = ganesha_conf.render(exports, bind=net.address.ip, network=net.network, recovery=self.files.recovery,
                                   plugins=plugins, ccache=self.files.ccache)  # fmt: skip
        f = self.files
        proc = GaneshaProcess(self.binary or "ganesha.nfsd", f.conf, logfile=f.log, pidfile=f.pidfile,
                              bind=str(net.address.ip), port=ganesha_conf.NFS_PORT)  # fmt: skip
        return text, proc, [e.name for e in exports]

    def sync(self, reason: str = "tick") -> None:
        """Bring ganesha in line with the capsule store (start, restart on a new config, stop, retry)."""
        if self.process is not None:
            died = self.process.exited()
            if died is not None:
                self.process = None
                self._fail(died)
        try:
            desired = self._desired()
        except (PerceusError, OSError, ValueError) as exc:
            self.stop()
            self.rendered = ""
            self._fail(f"not started: {exc}")
            return
        if desired is None:
            if self.process is not None or self.status.state != "off":
                self.stop()
                self.status = Status(restarts=self.status.restarts)
                self.rendered = ""
                log.info("nfs_server_not_needed", reason=reason)
            return
        text, proc, names = desired
        if self.binary is None:
            self._fail("no ganesha.nfsd (apt install nfs-ganesha nfs-ganesha-vfs)")
            return
        if text == self.rendered and self.process is not None:
            return
        if self.process is None and text == self.rendered and self.clock() < self.retry_at:
            return  # failed with this very config: wait for the back-off
        restart = self.process is not None
        self.stop()
        self.files.dir.mkdir(parents=True, exist_ok=True)
        self.files.recovery.mkdir(parents=True, exist_ok=True)
        self.files.ccache.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(self.files.conf, text.encode(), mode=0o644)
        self.rendered = text
        assert proc is not None
        self.status.exports, self.status.bind = names, proc.bind
        problem = proc.start()
        if problem is not None:
            self._fail(problem)
            return
        self.process = proc
        self.failures = 0
        if restart:
            self.status.restarts += 1
        self.status.state, self.status.error, self.status.pid = "running", "", proc.pid
        self.status.since = time.time()
        log.info("nfs_exports_served", exports=",".join(names) or "(none)", bind=proc.bind, reason=reason,
                 restart=restart)  # fmt: skip

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    # ------------------------------------------------------------------ control commands
    def reload(self, request: dict[str, Any]) -> dict[str, Any]:
        self.retry_at = 0.0  # an admin's change is worth an immediate attempt
        self.sync("nfs_reload")
        return {"ok": True, "nfs": self.status.as_dict()}

    def report(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "nfs": self.status.as_dict()}


def install(daemon: Daemon) -> None:
    """The perceus-bus feature entry point (features.py)."""
    try:
        wanted = mode(daemon.config)
    except ConfigError as exc:
        log.error("nfs_server_failed", reason=str(exc))
        return
    if wanted == "no":
        log.info("nfs_not_managed", reason="manage nfs = no")
        return
    manager = NfsManager(daemon.paths, find_ganesha(), config=lambda: daemon.dispatcher.config)
    daemon.server.control_handlers["nfs_status"] = manager.report
    daemon.server.control_handlers["nfs_reload"] = manager.reload
    daemon.on_close(manager.stop)
    daemon.server.add_ticker(TICK, manager.sync)
    manager.sync("start")
