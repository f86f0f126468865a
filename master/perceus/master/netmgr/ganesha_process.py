"""One supervised nfs-ganesha process: start (ready when its NFS port accepts), stop by pid, the reason it died.

`ganesha.nfsd -F` (foreground) in its own session, configured only by our generated file, with its log, pid
file and recovery directory under the state dir.  Ready takes ~1 s; a bad config or a taken port makes it exit
at once, and the reason is its last CRIT/FATAL log line.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import structlog

from perceus.master.netmgr.stopping import stop_stale, terminate

log = structlog.get_logger("perceus.nfs")

START_WAIT = 10.0
_SBIN = ("/usr/bin", "/usr/sbin", "/sbin")
# Harmless at every start on a machine without dbus, Kerberos or UDP (lab-recipes.md): never "the reason".
_NOISE = ("dbus", "DBUS", "krb5", "KRB5", "UDP", "gssd", "Kerberos")


def find_ganesha() -> str | None:
    return shutil.which("ganesha.nfsd", path=os.pathsep.join([os.environ.get("PATH", ""), *_SBIN]))


class GaneshaProcess:
    """ganesha.nfsd in the foreground, listening on `bind`:`port`."""

    def __init__(self, binary: str, conf: Path, *, logfile: Path, pidfile: Path, bind: str, port: int) -> None:
        self.binary = binary
        self.conf = conf
        self.logfile = logfile
        self.pidfile = pidfile
        self.bind = bind
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def argv(self) -> list[str]:
        return [self.binary, "-F", "-f", str(self.conf), "-L", str(self.logfile), "-p", str(self.pidfile)]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def running(self) -> bool:
        return self.pid is not None

    def start(self, *, wait: float = START_WAIT) -> str | None:
        """Spawn ganesha and wait until its port accepts; None when it serves, else the one-line reason."""
        self._stop_stale()
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        offset = self.logfile.stat().st_size if self.logfile.exists() else 0
        fd = os.open(self.logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640)
        with os.fdopen(fd, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        self.started_at = time.monotonic()
        deadline = self.started_at + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                reason = f"ganesha.nfsd exited with status {self.proc.returncode}: {self.reason(offset)}"
                self.proc = None
                return reason
            if self._accepts():
                log.info("nfs_server_started", pid=self.proc.pid, bind=self.bind, port=self.port, conf=str(self.conf),
                         ready_ms=round((time.monotonic() - self.started_at) * 1000))  # fmt: skip
                return None
            time.sleep(0.05)
        self.stop()
        return f"ganesha.nfsd did not listen on {self.bind}:{self.port} within {wait:.0f} s: {self.reason(offset)}"

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.bind, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def _stop_stale(self) -> None:
        """A ganesha left by a perceus-bus that died without stopping it (it has its own session) would keep the
        port with an old config: stopped when its command line names our config file."""
        if self.proc is not None:
            return
        pid = stop_stale(self.pidfile, b"ganesha.nfsd", str(self.conf).encode(), grace=5.0)
        if pid is not None:
            log.warning("nfs_server_stale_stopped", pid=pid, conf=str(self.conf))

    def exited(self) -> str | None:
        """The reason, once, when our running ganesha has died since the last call."""
        if self.proc is None or self.proc.poll() is None:
            return None
        rc, self.proc = self.proc.returncode, None
        return f"ganesha.nfsd exited with status {rc}: {self.reason()}"

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        terminate(proc, timeout)
        log.info("nfs_server_stopped", pid=proc.pid, rc=proc.returncode)

    def reason(self, offset: int = 0) -> str:
        """The last CRIT/FATAL line ganesha logged since `offset` (its message part), else its last line."""
        try:
            with self.logfile.open("rb") as fh:
                fh.seek(max(offset, fh.seek(0, os.SEEK_END) - 16384))
                lines = fh.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return "no log"

        def level(ln: str, name: str) -> bool:
            return f":{name} :" in ln and not any(n in ln for n in _NOISE)

        # A FATAL line is the cause ("Error binding to V6 interface"), except the generic one after config errors,
        # where the last CRIT line names it ("1 (invalid param value) errors found block NFS_Core_Param").
        crit = [ln.split(":CRIT :", 1)[1] for ln in lines if level(ln, "CRIT")]
        fatal = [ln.split(":FATAL :", 1)[1] for ln in lines if level(ln, "FATAL")]
        if fatal and not (fatal[-1].startswith("Fatal errors") and crit):
            pick = fatal[-1]
        else:
            pick = crit[-1] if crit else (lines[-1] if lines else "no log output")
        return pick.strip()[:300]
