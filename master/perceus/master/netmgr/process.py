"""One supervised dnsmasq process: start, SIGHUP, restart with back-off when it dies, stop by pid.

The process runs in its own session (a Ctrl-C on perceus-bus's terminal is ours to handle) with stdout and
stderr appended to its log, so errors it prints before its own logging starts are kept too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from perceus.master.netmgr.stopping import stop_stale, terminate

log = structlog.get_logger("perceus.netmgr")

BACKOFF_MAX = 60.0
HEALTHY_AFTER = 30.0  # a run this long resets the back-off
START_WAIT = 3.0
_SBIN = ("/usr/sbin", "/sbin")


def find_dnsmasq() -> str | None:
    """The dnsmasq binary (Debian puts it in /usr/sbin, which a non-root PATH may lack)."""
    return shutil.which("dnsmasq", path=os.pathsep.join([os.environ.get("PATH", ""), *_SBIN]))


class DnsmasqProcess:
    """dnsmasq in the foreground (`--keep-in-foreground`), configured only by our generated file."""

    def __init__(
        self,
        binary: str,
        conf: Path,
        *,
        logfile: Path,
        pidfile: Path,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.binary = binary
        self.conf = conf
        self.logfile = logfile
        self.pidfile = pidfile
        self.clock = clock
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.failures = 0
        self.restart_at: float | None = None
        self.restarts = 0

    @property
    def argv(self) -> list[str]:
        # --conf-file also stops dnsmasq reading /etc/dnsmasq.conf and /etc/dnsmasq.d.
        return [self.binary, "--keep-in-foreground", f"--conf-file={self.conf}"]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def running(self) -> bool:
        return self.pid is not None

    def start(self, *, wait: float = START_WAIT) -> bool:
        """Spawn dnsmasq; with `wait`, wait until it wrote its pid file (or died). True when it runs."""
        self._stop_stale()
        self.pidfile.unlink(missing_ok=True)
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640)
        with os.fdopen(fd, "ab") as out:  # O_NOFOLLOW: the dnsmasq dir may belong to perceus-bus's user
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.started_at = self.clock()
        self.restart_at = None
        deadline = time.monotonic() + wait
        while wait and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.pidfile.exists():
                break
            time.sleep(0.02)
        if self.proc.poll() is not None:
            self._died()
            return False
        log.info("dnsmasq_started", pid=self.proc.pid, conf=str(self.conf), restarts=self.restarts)
        return True

    def _stop_stale(self) -> None:
        """Stop a dnsmasq left running by a perceus-bus that died without stopping it (SIGKILL, OOM): it runs in
        its own session, so it outlives its parent and would keep the DHCP and TFTP ports with an old config.
        Only a live dnsmasq whose command line names our config file is stopped."""
        if self.proc is not None:
            return
        pid = stop_stale(self.pidfile, b"dnsmasq", f"--conf-file={self.conf}".encode(), grace=3.0)
        if pid is not None:
            log.warning("dnsmasq_stale_stopped", pid=pid, conf=str(self.conf))

    def _died(self) -> None:
        assert self.proc is not None
        rc = self.proc.returncode
        ran = self.clock() - self.started_at
        self.failures = 0 if ran >= HEALTHY_AFTER else self.failures + 1
        delay = min(BACKOFF_MAX, 2.0 ** max(0, self.failures - 1))  # 1, 1, 2, 4 … 60 s
        self.restart_at = self.clock() + delay
        log.error(
            "dnsmasq_exited",
            rc=rc,
            ran_s=round(ran, 1),
            restart_in_s=delay,
            last_log=self.tail(),
        )
        self.proc = None

    def tick(self) -> None:
        """From the bus loop: notice a death, restart when its back-off is over."""
        if self.proc is not None and self.proc.poll() is not None:
            self._died()
        if self.proc is None and self.restart_at is not None and self.clock() >= self.restart_at:
            self.restarts += 1
            self.start(wait=0)

    def hup(self) -> bool:
        """Ask dnsmasq to re-read its hosts files; False when it is not running."""
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            return False
        except PermissionError:
            # perceus-bus dropped root (--user) and dnsmasq runs as another user: see docs/network.md.
            log.warning("dnsmasq_hup_denied", pid=pid, hint="set 'dnsmasq user' to perceus-bus's --user")
            return False
        return True

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM our child (by pid), SIGKILL after `timeout`; no restart afterwards."""
        self.restart_at = None
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        terminate(proc, timeout)
        log.info("dnsmasq_stopped", pid=proc.pid, rc=proc.returncode)
        return proc.returncode

    def tail(self, lines: int = 3) -> str:
        """The last lines of dnsmasq's log (why it died)."""
        try:
            with self.logfile.open("rb") as fh:
                fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
                text = fh.read().decode(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])
