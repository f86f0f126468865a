"""The main job: a master in a private network namespace and QEMU nodes that PXE-boot end to end.

firmware PXE (QEMU's iPXE ROM) → dnsmasq (run by perceus-bus) → boot.ipxe → stage-one kernel + initramfs →
agent: drivers, DHCP, hello → auto-enrolled as n0000, n0001 … → capsule fetched and verified → kexec →
the runtime agent (provisiond) checks in.  Nothing leaves the namespace; everything started is stopped on
exit, error or Ctrl-C (the Lab context manager).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import structlog

from perceus.lab.bus import LabBus, start_bus
from perceus.lab.lab import Lab
from perceus.lab.netns import LabError
from perceus.lab.qemu import PxeBoot, QemuNode
from perceus.lab.web import start_web
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore

log = structlog.get_logger("perceus.demo")

CAPSULE = "mini"
# The capsule default plus `quiet`, as stage one boots: ~300 kernel lines on the serial console cost ~0.3 s
# of a TCG boot, and the console markers the demo times are the agent's, not the kernel's.
CAPSULE_KERNEL_ARGS = "ramdisk_blocksize=1024 quiet"
BUS_PORT = 9987
EVENT_PORT = 9988

# Console markers of each boot step, in order (the agent logs them at perceus.debug=1); each is looked for
# after the previous one, so the runtime agent's second `node_welcomed` is not taken for stage one's.
MARKERS: tuple[tuple[str, str], ...] = (
    ("kernel", r"\S"),
    ("stage1", r"agent_starting .*mode=stage1"),
    ("dhcp", r"dhcp_lease"),
    ("enrolled", r"node_welcomed"),
    ("capsule", r"phase_started phase=capsule"),
    ("kexec", r"kexec_started"),
    ("runtime", r"agent_starting .*mode=runtime"),
    # provisiond's first answered contact: its hello (periodic check-ins follow, jittered over the interval).
    ("ready", r"node_welcomed|checked_in"),
)
# What the live table says a node is doing once it passed a marker.
DOING = {
    "": "PXE (iPXE, TFTP)",
    "kernel": "stage-one kernel",
    "stage1": "agent: drivers, DHCP",
    "dhcp": "enrolling",
    "enrolled": "node scripts",
    "capsule": "capsule fetch+verify",
    "kexec": "kexec → runtime",
    "runtime": "provisiond starting",
    "ready": "ready (checked in)",
}


@dataclass
class NodeProgress:
    """One QEMU node's way through the markers, in seconds since QEMU started."""

    qemu: QemuNode
    times: dict[str, float] = field(default_factory=dict)
    _next: int = 0
    _scanned: int = 0
    hostname: str = ""
    ip: str = ""

    @property
    def mac(self) -> str:
        return self.qemu.mac.upper()

    @property
    def last(self) -> str:
        return MARKERS[self._next - 1][0] if self._next else ""

    @property
    def done(self) -> bool:
        return "ready" in self.times

    def scan(self) -> None:
        lines = self.qemu.serial.lines
        while self._scanned < len(lines) and self._next < len(MARKERS):
            line = lines[self._scanned]
            label, pattern = MARKERS[self._next]
            if re.search(pattern, line.text):
                self.times[label] = line.t
                self._next += 1
                continue  # the same line may also carry the next marker
            self._scanned += 1

    def in_phase(self, now: float) -> float:
        since = self.times.get(self.last, 0.0)
        return now - self.qemu.started - since

    def summary(self) -> dict[str, float | None]:
        t = self.times

        def span(a: str, b: str) -> float | None:
            return t[b] - t[a] if a in t and b in t else None

        return {
            "pxe": t.get("kernel"),
            "stage_one": span("kernel", "dhcp"),
            "enroll": span("dhcp", "enrolled"),
            "capsule": span("capsule", "kexec"),
            "kexec": span("kexec", "runtime"),
            "first_checkin": span("runtime", "ready"),
            "total": t.get("ready"),
        }


@dataclass
class DemoResult:
    nodes: list[NodeProgress]
    wall: float
    ok: bool


def prepare_master(paths: Paths, *, stage1_level: int, progress: Callable[[str], None]) -> None:
    """perceus.conf for the lab, the stage-one image into the TFTP root, capsule `mini` imported."""
    from perceus.stage1 import build

    paths.ensure()
    paths.perceus_conf.write_text(
        "# perceus demo: a master on the lab bridge (a private network namespace)\n"
        "master network device = br0\n"
        "manage dnsmasq = yes\n"
        "dnsmasq user = root\n"
        f"bus port = {BUS_PORT}\n"
        f"event port = {EVENT_PORT}\n"
        "checkin interval = 60\n"
        "stage1 append = panic=-1 perceus.debug=1\n"
    )
    paths.defaults_conf.write_text(f"Node Name = n####\nGroup Name = cluster\nVnfs Name = {CAPSULE}\nEnabled = 1\n")
    progress("building stage one (cached after the first run)")
    image = build(paths.tftp, level=stage1_level)
    progress(f"stage one: {image.initrd_size / 1e6:.1f} MB initramfs{' (cached)' if image.cached else ''}")
    if not (paths.vnfs / CAPSULE).is_dir():
        progress(f"importing capsule {CAPSULE!r} (a small runtime: busybox, CPython, provisiond, NIC modules)")
        # Through the `perceus` command line, as an admin would (and the lab stays a client of the CLI, not
        # a module it imports back).
        argv = [sys.executable, "-m", "perceus.master.cli.main", "-q", "--config-dir", str(paths.config_dir),
                "--state-dir", str(paths.state_dir), "vnfs", "import", str(image.initrd), "--kernel", str(image.kernel),
                "--name", CAPSULE, "--kernel-args", CAPSULE_KERNEL_ARGS]  # fmt: skip
        if subprocess.run(argv, check=False, stdin=subprocess.DEVNULL).returncode != 0:
            raise LabError("importing the demo capsule failed (see the error above)")


_last_line: dict[int, str] = {}


def render(nodes: list[NodeProgress], started: float, out: TextIO, *, tty: bool) -> None:
    """The live table on a terminal (redrawn in place); elsewhere one line whenever a node moves on."""
    now = time.monotonic()
    if tty:
        rows = [
            f"{'node':<8} {'hostname':<9} {'MAC':<17} {'phase':<22} {'in phase':>8}   elapsed {now - started:5.1f}s"
        ]
        for n in nodes:
            rows.append(
                f"{n.qemu.name:<8} {n.hostname or '-':<9} {n.mac:<17} {DOING[n.last]:<22} {n.in_phase(now):7.1f}s"
            )
        out.write("\x1b[H\x1b[J" + "\n".join(rows) + "\n")
    else:
        line = "  ".join(f"{n.qemu.name}[{n.hostname or '-'}]: {DOING[n.last]}" for n in nodes)
        if _last_line.get(id(out)) == line:
            return
        _last_line[id(out)] = line
        out.write(f"[{now - started:6.1f}s] {line}\n")
    out.flush()


def summary_table(result: DemoResult) -> str:
    cols = ("pxe", "stage_one", "enroll", "capsule", "kexec", "first_checkin", "total")
    head = f"{'node':<8} {'hostname':<9} {'ip':<15} " + " ".join(f"{c:>13}" for c in cols)
    lines = [head, "-" * len(head)]
    for n in result.nodes:
        s = n.summary()
        cells = " ".join(f"{s[c]:>12.1f}s" if s[c] is not None else f"{'-':>13}" for c in cols)
        lines.append(f"{n.qemu.name:<8} {n.hostname or '-':<9} {n.ip or '-':<15} {cells}")
    lines.append(f"{len(result.nodes)} nodes, wall time {result.wall:.1f}s (PXE to first check-in, TCG)")
    return "\n".join(lines)


def _refresh_store(paths: Paths, nodes: list[NodeProgress]) -> None:
    if not paths.database.exists():
        return
    with SQLiteStore(paths.database) as store:
        for n in nodes:
            row = store.get(n.mac)
            if row is not None:
                n.hostname, n.ip = row.hostname, row.ip


def _link_consoles(paths: Paths, nodes: list[NodeProgress]) -> None:
    """<state>/log/console/<hostname>.log → the node's serial log, so the dashboard's node page shows it."""
    for n in nodes:
        link = paths.logs / "console" / f"{n.hostname}.log"
        qemu_log = n.qemu.process.log
        if n.hostname and qemu_log is not None and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(qemu_log.with_name(f"{n.qemu.name}.serial.log"))  # beside it (lab/qemu.py)


def run_demo(
    workdir: Path,
    *,
    nodes: int = 3,
    stagger: float = 2.0,
    timeout: float = 600.0,
    preadd: tuple[str, str] | None = None,
    stage1_level: int = 19,
    out: TextIO = sys.stdout,
    memory_mb: int = 1024,
    keep_web: bool = False,
) -> DemoResult:
    """Boot `nodes` QEMU nodes by PXE against a fresh master; returns per-node timings.

    `preadd=(hostname, ip)` adds the last node to the store before it boots, so it gets that name and a
    static lease instead of being auto-enrolled.  The dashboard (perceus-web) runs while nodes boot; with
    `keep_web` everything stays up afterwards until Ctrl-C.
    """
    paths = Paths(config_dir=workdir / "etc", state_dir=workdir / "var")
    tty = out.isatty()

    def say(text: str) -> None:
        out.write(f"demo: {text}\n")
        out.flush()

    prepare_master(paths, stage1_level=stage1_level, progress=say)
    with Lab(workdir=workdir / "lab") as lab:
        if preadd is not None:
            from perceus.lab.qemu import node_mac

            mac = node_mac(lab.subnet.index, nodes - 1).upper()
            with SQLiteStore(paths.database) as store:
                store.add(NewNode(nodeid=mac, hostname=preadd[0], ip=preadd[1], group="cluster", vnfs=CAPSULE))
            say(f"pre-added {preadd[0]} ({mac}) with static address {preadd[1]}")
        bus: LabBus = start_bus(lab, paths, port=BUS_PORT)
        say(f"perceus-bus listening on {bus.endpoint} in namespace {lab.name} (dnsmasq: DHCP, TFTP, iPXE)")
        dashboard = start_web(lab, paths)
        say(f"dashboard: {dashboard.login_url()}  (admin sign-in; perceus-web in the namespace, forwarded)")
        started = time.monotonic()
        progress: list[NodeProgress] = []
        for i in range(nodes):
            progress.append(NodeProgress(lab.add_node(PxeBoot(), memory_mb=memory_mb)))
            if i + 1 < nodes:
                _wait(progress, stagger, paths, started, out, tty)
        deadline = started + timeout
        while not all(n.done for n in progress):
            if time.monotonic() > deadline:
                render(progress, started, out, tty=tty)
                raise LabError(
                    f"not every node checked in within {timeout:.0f} s: "
                    + ", ".join(f"{n.qemu.name} at {DOING[n.last]!r}" for n in progress if not n.done)
                    + f"; logs in {lab.workdir}"
                )
            for n in progress:
                if not n.qemu.process.running() and not n.done:
                    raise LabError(f"{n.qemu.name} stopped at {DOING[n.last]!r}; console log {n.qemu.serial}")
            _wait(progress, 1.0, paths, started, out, tty)
        wall = max(n.times["ready"] + n.qemu.started for n in progress) - started
        _refresh_store(paths, progress)
        render(progress, started, out, tty=tty)
        if keep_web:
            say(f"--web: the master, the nodes and the dashboard stay up: {dashboard.login_url()}  (Ctrl-C stops)")
            while all(n.qemu.process.running() for n in progress):
                time.sleep(1.0)
                _link_consoles(paths, progress)
        dashboard.close()
        return DemoResult(progress, wall, True)


def _wait(nodes: list[NodeProgress], seconds: float, paths: Paths, started: float, out: TextIO, tty: bool) -> None:
    end = time.monotonic() + seconds
    while True:
        for n in nodes:
            n.scan()
        _refresh_store(paths, nodes)
        _link_consoles(paths, nodes)
        render(nodes, started, out, tty=tty)
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(1.0, left))
