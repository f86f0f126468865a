"""Hybrid capsules on the node: mount the hybridized directories read-only over NFSv4 before provisiond starts.

The master packs `/etc/perceus/hybrid.conf` into a hybrid capsule's root (master/perceus/master/capsule/
hybrid.py): `export /perceus/<capsule>` and one `mount /<dir>` per hybridized directory, which the RAM image
holds only as an empty mount point.  The NFS server is the master this node talks to (perceus-bus runs
nfs-ganesha on the provisioning address).  Each directory is mounted with the kernel's NFSv4 client:
`mount -t nfs4 -o ro,vers=4.2,addr=IP IP:/perceus/<capsule>/<dir> /<dir>` (busybox has no mount.nfs, so the
address is passed as `addr=`).  A mount that fails leaves provisiond reporting the failure (runtime.py) instead
of running on a half root; it is retried at each check-in.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from perceus.errors import PerceusError

log = structlog.get_logger("perceus.agent.hybrid")

CONF = Path("etc/perceus/hybrid.conf")  # relative to the runtime root
FAILED_STATE = "hybrid_failed"  # the state provisiond reports while a hybridized directory is not mounted
MOUNT_TIMEOUT = 30.0
ATTEMPTS = 3
RETRY_DELAY = 2.0

Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class Plan:
    """What hybrid.conf says: the export's pseudo path and the directories to mount from it."""

    export: str
    paths: tuple[str, ...]


def parse(text: str) -> Plan:
    """hybrid.conf → Plan; ValueError names the first line that is not `export P` or `mount P`."""
    export = ""
    paths: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        value = value.strip()
        if not value.startswith("/") or ".." in value.split("/") or any(c.isspace() or c == "," for c in value):
            raise ValueError(f"line {n}: {line!r}: not an absolute path")
        if key == "export":
            export = value.rstrip("/")
        elif key == "mount":
            paths.append(value)
        else:
            raise ValueError(f"line {n}: {line!r}: expected 'export PATH' or 'mount PATH'")
    if not export:
        raise ValueError("no 'export' line")
    return Plan(export, tuple(paths))


def read_plan(root: Path) -> Plan | None:
    """The plan of this root, None for a capsule that is not hybrid."""
    try:
        text = (root / CONF).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return parse(text)


def server_address(host: str) -> str:
    """`addr=` needs an IP: a master given by name is resolved once here."""
    try:
        return str(socket.getaddrinfo(host, 2049, proto=socket.IPPROTO_TCP)[0][4][0])
    except (OSError, IndexError):
        return host


def mount_argv(server: str, export: str, path: str, target: str) -> list[str]:
    source = f"[{server}]:{export}{path}" if ":" in server else f"{server}:{export}{path}"
    return ["mount", "-t", "nfs4", "-o", f"ro,vers=4.2,addr={server}", source, target]


def mounted_nfs(mounts: Path = Path("/proc/mounts")) -> set[str]:
    """Mount points of NFS file systems now (a provisiond restart finds its mounts in place)."""
    try:
        lines = mounts.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return set()
    out = set()
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and fields[2].startswith("nfs"):
            out.add(fields[1].replace("\\040", " "))
    return out


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=MOUNT_TIMEOUT, check=False)


@dataclass
class Mounter:
    """Mounts one plan; `mount_all` returns None when every directory is mounted, else the one-line reason."""

    plan: Plan
    server: str
    root: Path = Path("/")  # tests run provisiond on a temp root: mount points are under it
    run: Runner = _run
    mounts: Path = Path("/proc/mounts")
    sleep: Callable[[float], None] = time.sleep
    attempts: int = ATTEMPTS

    def mount_all(self) -> str | None:
        started = time.monotonic()
        self._load_modules()
        done = mounted_nfs(self.mounts)
        for path in self.plan.paths:
            if self.target(path) in done:
                continue
            problem = self._mount(path)
            if problem is not None:
                log.error("hybrid_mount_failed", path=path, server=self.server, export=self.plan.export,
                          error=problem)  # fmt: skip
                return f"hybrid mount of {path} from {self.server}:{self.plan.export}{path} failed: {problem}"
            log.info("hybrid_mounted", path=path, source=f"{self.server}:{self.plan.export}{path}")
        log.info(
            "hybrid_mounts_done", paths=len(self.plan.paths), duration_ms=round((time.monotonic() - started) * 1000)
        )
        return None

    def target(self, path: str) -> str:
        return path if self.root == Path("/") else str(self.root / path.lstrip("/"))

    def _load_modules(self) -> None:
        """nfsv4 and its dependencies through the agent's own loader (it also loads the image's `.ko.xz`, which the
        kernel's call of modprobe for `fs-nfs4` could not); built-in or missing shows in the mount's error."""
        if self.root != Path("/"):
            return  # a test root: the host's modules are not ours to load
        from perceus.agent import drivers

        try:
            result = drivers.load_drivers(("nfsv4",), walk=list)
        except (PerceusError, OSError) as exc:
            log.warning("hybrid_modules_failed", error=str(exc))
            return
        log.info("hybrid_modules_loaded", summary=result.summary())

    def _mount(self, path: str) -> str | None:
        problem = ""
        for attempt in range(1, self.attempts + 1):
            try:
                result = self.run(mount_argv(self.server, self.plan.export, path, self.target(path)))
            except (OSError, subprocess.SubprocessError) as exc:
                problem = str(exc)
            else:
                if result.returncode == 0:
                    return None
                lines = ((result.stderr or "") + (result.stdout or "")).strip().splitlines()
                problem = lines[-1] if lines else f"mount exited {result.returncode}"
            if attempt < self.attempts:
                log.warning("hybrid_mount_retry", path=path, attempt=attempt, error=problem)
                self.sleep(RETRY_DELAY)
        return problem
