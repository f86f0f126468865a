"""`perceus lab fleet`: N emulated nodes boot from a real master over shaped links, all on this machine.

Each node is a process in its own network namespace (perceus.lab.fleet_node) running the real stage-one agent:
DHCP against the dnsmasq perceus-bus supervises, hello, enrollment, node scripts, the Curve-encrypted, signed
and BLAKE3-verified capsule fetch into its own tmpfs, then provisiond's check-ins.  The one substitution is
kexec (a process cannot): the agent records the command line it would boot and carries on as provisiond.
The master sits in its own namespace behind a shaped uplink; every node link is shaped on both ends (tbf) and
may lose packets (iptables statistic).  Ctrl-C or any error stops the nodes, the bus and the namespaces.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from perceus.lab.bus import python_env
from perceus.lab.fleet_console import NodeTrack
from perceus.lab.fleet_master import FleetBus, MasterSettings, capsule_wire_bytes, prepare, start_bus
from perceus.lab.fleet_net import FleetAddressing, FleetNetwork, default_tag
from perceus.lab.netns import LabError
from perceus.lab.shaping import Rate, link_bytes
from perceus.master.config import Paths

KEXEC_NOTE = "kexec is emulated: each node records the kernel command line it would boot, then runs provisiond"


@dataclass(frozen=True)
class FleetOptions:
    """One fleet run."""

    nodes: int = 24
    capsule_mb: float = 8.0
    uplink: Rate = field(default_factory=lambda: Rate(200))
    node_rate: Rate = field(default_factory=lambda: Rate(20))
    loss: float = 0.0
    pacing: bool = True
    stagger: float = 0.01  # seconds between power-ons: a storm, but spawn order stays the boot order
    timeout: float = 600.0
    index: int = 0
    debug: int = 1
    master_conf: str = ""  # extra perceus.conf lines for the fleet's master


class Zygote:
    """The node-side process that forks emulated nodes (see fleet_node.py)."""

    def __init__(self, log: Path) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "perceus.lab.fleet_node"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, env=python_env(), start_new_session=True,
        )  # fmt: skip
        self.pids: dict[str, int] = {}
        self.exits: dict[str, int] = {}
        self._cond = threading.Condition()
        self._ready = False
        self._reader = threading.Thread(target=self._read, name="fleet-zygote", daemon=True)
        self._reader.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self._ready or self.proc.poll() is not None, timeout=60):
                raise LabError("the fleet node zygote did not start within 60 s")
        if not self._ready:
            raise LabError(f"the fleet node zygote exited {self.proc.returncode}; see {log}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                ev = json.loads(raw)
            except ValueError:
                continue
            with self._cond:
                if ev.get("ev") == "ready":
                    self._ready = True
                elif ev.get("ev") == "spawned":
                    self.pids[ev["name"]] = int(ev["pid"])
                elif ev.get("ev") == "exited":
                    self.exits[ev["name"]] = int(ev["status"])
                    if self.pids.get(ev["name"]) == int(ev["pid"]):
                        del self.pids[ev["name"]]
                self._cond.notify_all()

    def spawn(self, name: str, netns: str, node_dir: Path, cmdline: str, *, tmpfs_mb: int, wait: bool = True) -> int:
        """Power on one node; with `wait=False` the pid is filled in later (`pid_of`), so a storm is not
        serialised on the zygote's answers."""
        cmd = {"op": "spawn", "name": name, "netns": netns, "dir": str(node_dir), "cmdline": cmdline,
               "tmpfs_mb": tmpfs_mb}  # fmt: skip
        assert self.proc.stdin is not None
        with self._cond:
            self.exits.pop(name, None)
            self.pids.pop(name, None)
            self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
            self.proc.stdin.flush()
        return self.pid_of(name) if wait else 0

    def pid_of(self, name: str, timeout: float = 30) -> int:
        with self._cond:
            if not self._cond.wait_for(lambda: name in self.pids or name in self.exits, timeout=timeout):
                raise LabError(f"node {name} did not start")
            return self.pids.get(name, 0)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal one node — its process group (the node's session, made by the zygote), found by its pid:
        a powered-off node leaves no helper process behind."""
        pid = self.pids.get(name)
        if pid is not None:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass

    def stop_all(self, sig: int = signal.SIGKILL, timeout: float = 10) -> None:
        """Signal every node (by pid) and wait until the zygote has reaped them all."""
        with self._cond:
            pids = list(self.pids.values())
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        with self._cond:
            self._cond.wait_for(lambda: not self.pids, timeout=timeout)

    def close(self) -> None:
        with self._cond:
            pids = list(self.pids.values())
        for pid in pids:  # provisiond sends its last state on SIGTERM
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        with self._cond:
            self._cond.wait_for(lambda: not self.pids, timeout=5)
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the zygote SIGKILLs what is left and exits
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


def mem_available_mb() -> float:
    """The host's MemAvailable: its drop while a fleet runs is what the fleet costs, kernel and tmpfs included."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_of(pids: list[int]) -> tuple[float, float]:
    """Mean (RSS, PSS) in MB of the given processes (smaps_rollup; shared pages split fairly in PSS)."""
    rss: list[float] = []
    pss: list[float] = []
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = {ln.split(":")[0]: ln.split()[1] for ln in text.splitlines()[1:] if ":" in ln}
        rss.append(int(fields.get("Rss", 0)) / 1024)
        pss.append(int(fields.get("Pss", 0)) / 1024)
    return (sum(rss) / len(rss) if rss else 0.0, sum(pss) / len(pss) if pss else 0.0)


@dataclass
class FleetResult:
    """What a fleet run measured; `as_dict()` is the `--json` output."""

    options: FleetOptions
    tracks: list[NodeTrack]
    origin: float
    wall: float
    capsule_bytes: int
    wire_bytes: int
    node_rss_mb: float = 0.0
    node_pss_mb: float = 0.0
    master_rss_mb: float = 0.0
    notes: list[str] = field(default_factory=list)
    host_used_mb: float = 0.0  # drop of the host's MemAvailable since set-up: nodes, tmpfs, kernel, master

    @property
    def max_nodes_24g(self) -> int:
        """How many such nodes 24 GB would hold, from the measured host memory per node."""
        per_node = self.host_used_mb / max(1, len(self.tracks))
        return int(24 * 1024 / per_node) if per_node > 0 else 0

    @property
    def ready_times(self) -> list[float]:
        return sorted(t.times["ready"] - self.origin for t in self.tracks if t.ready)

    @property
    def failures(self) -> int:
        return sum(1 for t in self.tracks if not t.ready)

    @property
    def bound(self) -> float:
        """The physical bound: every node's capsule through the master's uplink, back to back."""
        return len(self.tracks) * self.capsule_bytes / self.options.uplink.bytes_per_s

    def percentile(self, q: float) -> float | None:
        times = self.ready_times
        if not times:
            return None
        return times[min(len(times) - 1, round(q * (len(times) - 1)))]

    def as_dict(self) -> dict[str, Any]:
        o = self.options
        return {
            "nodes": o.nodes, "capsule_bytes": self.capsule_bytes, "uplink_mbit": o.uplink.mbit,
            "node_mbit": o.node_rate.mbit, "loss": o.loss, "pacing": o.pacing, "wall_s": round(self.wall, 3),
            "bound_s": round(self.bound, 3), "last_ready_s": self.percentile(1.0), "p50_s": self.percentile(0.5),
            "p99_s": self.percentile(0.99), "failures": self.failures,
            "retries": sum(t.retries for t in self.tracks), "chunk_retries": sum(t.chunk_retries for t in self.tracks),
            "wire_bytes": self.wire_bytes, "node_rss_mb": round(self.node_rss_mb, 1),
            "node_pss_mb": round(self.node_pss_mb, 1), "master_rss_mb": round(self.master_rss_mb, 1),
            "host_used_mb": round(self.host_used_mb, 1), "max_nodes_in_24gb": self.max_nodes_24g,
            "kexec": KEXEC_NOTE, "notes": self.notes,
            "timeline": [t.summary(self.origin) for t in self.tracks],
        }  # fmt: skip


Progress = Callable[["FleetRun", bool], None]


class FleetRun:
    """A fleet being run: network, master, zygote and the nodes' tracks (tests drive faults through it)."""

    def __init__(self, workdir: Path, options: FleetOptions, *, tag: str | None = None) -> None:
        self.workdir = workdir
        self.options = options
        self.net = FleetNetwork(tag or default_tag(), options.uplink, options.node_rate,
                                FleetAddressing(options.index), loss=options.loss)  # fmt: skip
        self.paths = Paths(config_dir=workdir / "etc", state_dir=workdir / "var")
        self.bus: FleetBus | None = None
        self.zygote: Zygote | None = None
        self.tracks: list[NodeTrack] = []
        self.origin = 0.0
        self.capsule_bytes = 0
        self.cmdline = ""
        self._bytes0 = 0
        self.wire_bytes = 0
        self.rate_samples: list[tuple[float, int]] = []
        self.mem_available_start = 0.0

    # ------------------------------------------------------------------ set-up and tear-down
    def __enter__(self) -> FleetRun:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def settings(self, pacing: bool) -> MasterSettings:
        o = self.options
        return MasterSettings(self.net.addressing, o.uplink.mbit, o.node_rate.mbit, pacing=pacing, extra=o.master_conf)

    def start(self) -> None:
        o = self.options
        self.mem_available_start = mem_available_mb()
        self.workdir.mkdir(parents=True, exist_ok=True)
        prepare(self.paths, self.settings(o.pacing), int(o.capsule_mb * (1 << 20)), self.workdir.parent / "fleet-cache")
        self.capsule_bytes = capsule_wire_bytes(self.paths)
        pristine = self.workdir / "var.pristine"
        shutil.rmtree(pristine, ignore_errors=True)
        shutil.copytree(self.paths.state_dir, pristine, symlinks=True)
        self.net.create()
        self.start_bus()
        self.net.add_nodes(o.nodes)
        self.zygote = Zygote(self.workdir / "zygote.log")

    def start_bus(self) -> None:
        self.bus = start_bus(self.paths, self.net.master, self.net.addressing)
        self.cmdline = self.bus.node_cmdline(self.options.debug)

    def kill_bus(self) -> None:
        """The master crashes (SIGKILL); `start_bus()` brings it back on the same state."""
        if self.bus is not None:
            self.bus.kill()
            self.bus = None

    def stop_bus(self) -> None:
        if self.bus is not None:
            self.bus.stop()
            self.bus = None

    def new_round(self, *, pacing: bool) -> None:
        """Power every node off and start over against a fresh master state (same keys, capsule, network),
        with pacing on or off: the benchmark compares both in one emulator run."""
        assert self.zygote is not None
        self.zygote.stop_all()
        self.stop_bus()
        shutil.rmtree(self.paths.state_dir)
        shutil.copytree(self.workdir / "var.pristine", self.paths.state_dir, symlinks=True)
        self.paths.perceus_conf.write_text(self.settings(pacing).perceus_conf())
        for i in range(len(self.net.nodes)):  # a powered-off node keeps no address
            ns = self.net.node_ns(i)
            subprocess.run(["ip", "-n", ns, "addr", "flush", "dev", "eth0"], capture_output=True, check=False)
            subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "down"], capture_output=True, check=False)
        self.options = dataclasses.replace(self.options, pacing=pacing)
        self.tracks, self.rate_samples, self.wire_bytes = [], [], 0
        self.start_bus()

    def close(self) -> None:
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None
        self.stop_bus()
        self.net.close()

    # ------------------------------------------------------------------ nodes
    def power_on(self, i: int, *, wait: bool = True) -> NodeTrack:
        """Start node `i` (again, after a kill: a reboot with a fresh tmpfs)."""
        assert self.zygote is not None
        name = f"node{i:04d}"
        node_dir = self.workdir / "nodes" / name
        node_dir.mkdir(parents=True, exist_ok=True)
        tmpfs_mb = int(self.options.capsule_mb * 2.5) + 64
        track = NodeTrack(name, node_dir / "console.log", time.monotonic())
        if (node_dir / "console.log").exists():
            track._offset = (node_dir / "console.log").stat().st_size  # a reboot: read only the new boot
        track.pid = self.zygote.spawn(name, self.net.node_ns(i), node_dir, self.cmdline, tmpfs_mb=tmpfs_mb, wait=wait)
        if i < len(self.tracks):
            self.tracks[i] = track
        else:
            self.tracks.append(track)
        return track

    def kill(self, i: int) -> None:
        assert self.zygote is not None
        self.zygote.kill(self.tracks[i].name)

    def poll(self) -> None:
        assert self.zygote is not None
        for track in self.tracks:
            track.poll()
            status = self.zygote.exits.get(track.name)
            if status is not None and track.pid not in self.zygote.pids.values():
                track.exit_status = status
        rx_tx = link_bytes(self.net.hub)
        total = sum(tx for dev, (_, tx) in rx_tx.items() if dev.startswith("n") and dev.endswith("h"))
        if not self.rate_samples:
            self._bytes0 = total
        self.wire_bytes = total - self._bytes0
        self.rate_samples.append((time.monotonic(), self.wire_bytes))
        del self.rate_samples[:-10]

    def rate(self) -> float:
        """Bytes/s toward the nodes over the last few samples."""
        if len(self.rate_samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self.rate_samples[0], self.rate_samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def storm(self, progress: Progress | None = None, *, until: Callable[[FleetRun], bool] | None = None) -> None:
        """Power on every node (a storm), then watch until all are ready (or failed, or the timeout)."""
        o = self.options
        self.poll()
        self.origin = time.monotonic()
        for i in range(o.nodes):
            self.power_on(i, wait=False)
            if o.stagger:
                time.sleep(o.stagger)
        assert self.zygote is not None
        for track in self.tracks:
            track.pid = self.zygote.pid_of(track.name)
        self.watch(progress, until=until)

    def watch(
        self,
        progress: Progress | None = None,
        *,
        until: Callable[[FleetRun], bool] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Poll the nodes until all are ready (or failed, or exited), `until` says so, or the deadline passes
        (`timeout` seconds from now, else the options' timeout from the storm's start)."""
        deadline = time.monotonic() + timeout if timeout is not None else self.origin + self.options.timeout
        while True:
            self.poll()
            if progress is not None:
                progress(self, False)
            if until is not None and until(self):
                return
            if all(t.ready or t.failed or t.exit_status is not None for t in self.tracks):
                return
            if time.monotonic() > deadline:
                return
            if self.bus is not None and not self.bus.process.running():
                raise LabError(f"perceus-bus died; see {self.paths.logs / 'perceus-bus.log'}")
            time.sleep(0.5)

    def result(self) -> FleetResult:
        assert self.zygote is not None
        rss, pss = memory_of(list(self.zygote.pids.values()))
        master_rss = memory_of([self.bus.process.pid])[0] if self.bus is not None else 0.0
        ends = [t.times["ready"] for t in self.tracks if t.ready]
        wall = (max(ends) if ends else time.monotonic()) - self.origin
        used = self.mem_available_start - mem_available_mb()
        return FleetResult(self.options, list(self.tracks), self.origin, wall, self.capsule_bytes, self.wire_bytes,
                           rss, pss, master_rss, [KEXEC_NOTE], host_used_mb=used)  # fmt: skip


def run_fleet(workdir: Path, options: FleetOptions, *, out: TextIO | None = None) -> FleetResult:
    """Set up, storm, measure, tear down; live progress on `out` (redrawn in place on a terminal)."""
    from perceus.lab.fleet_view import Live

    live = Live(out) if out is not None else None
    with FleetRun(workdir, options) as run:
        if live is not None:
            live.say(f"master: perceus-bus (Curve) on {run.bus.endpoint if run.bus else '?'} in namespace "
                     f"{run.net.master}; {options.nodes} nodes on {run.net.hub}; {KEXEC_NOTE}")  # fmt: skip
        run.storm(live.update if live is not None else None)
        result = run.result()
        if live is not None:
            live.update(run, True)
        return result
