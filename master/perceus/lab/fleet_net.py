"""The emulated fleet's network: a hub namespace with one bridge, the master and every node in its own namespace.

    master ns (up0 10.9x.0.1/16) ══ veth ══ hub ns: br0 ══ veth ══ node ns n0000 (eth0, DHCP) …

Each veth is shaped on both ends with tbf (the hub-side end limits what flows toward the namespace, the inner
end what flows out of it), so the master's uplink and every node's link have a finite rate in both directions.
Nothing touches the host's own interfaces; `close()` deletes every namespace this object created (by name,
only those).  Numbers behind the choices are in ../shared/docs/lab-recipes.md: a bridge holds at most 1023
ports, namespace creation costs ~15 ms, tbf on veths is cheap.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perceus.lab.netns import LabError, NetNS, namespace_exists
from perceus.lab.shaping import Rate, set_loss, shape

MAX_NODES = 1000  # one bridge: at most 1023 ports (lab-recipes.md)
MASTER_DEV = "up0"
NODE_DEV = "eth0"
NODE_TCP_CC = "cubic"  # CONFIG_DEFAULT_TCP_CONG of the stage-one (Debian) kernel


@dataclass(frozen=True)
class FleetAddressing:
    """10.<96+index>.0.0/16: the master at .0.1, the DHCP pool 10.x.1.0 - 10.x.7.254 (nodes get leases)."""

    index: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.index <= 31:
            raise ValueError(f"fleet index {self.index} outside 0..31")

    @property
    def net(self) -> str:
        return f"10.{96 + self.index}"

    @property
    def master_ip(self) -> str:
        return f"{self.net}.0.1"

    @property
    def prefixlen(self) -> int:
        return 16

    @property
    def dhcp_range(self) -> tuple[str, str]:
        return f"{self.net}.1.0", f"{self.net}.7.254"

    def node_mac(self, i: int) -> str:
        """Deterministic locally administered MAC of node `i`: 52:54:01:<index>:<hi>:<lo>."""
        if not 0 <= i < 1 << 16:
            raise ValueError(f"node index {i} outside 0..65535")
        return f"52:54:01:{self.index:02x}:{i >> 8:02x}:{i & 0xFF:02x}"


@dataclass
class FleetNetwork:
    """Namespaces and shaped veths of one fleet; a context manager that always cleans up."""

    tag: str
    uplink: Rate
    node_rate: Rate
    addressing: FleetAddressing = field(default_factory=FleetAddressing)
    loss: float = 0.0
    _spaces: list[NetNS] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)

    @property
    def hub(self) -> str:
        return f"{self.tag}-hub"

    @property
    def master(self) -> str:
        return f"{self.tag}-m"

    def node_ns(self, i: int) -> str:
        return f"{self.tag}-n{i:04d}"

    @staticmethod
    def hub_dev(i: int) -> str:
        return f"n{i:04d}h"

    def __enter__(self) -> FleetNetwork:
        try:
            self.create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _new(self, name: str) -> NetNS:
        if namespace_exists(name):
            raise LabError(f"network namespace {name} already exists (another fleet with tag {self.tag!r}?)")
        ns = NetNS(name)
        ns.create()
        self._spaces.append(ns)
        # TCP as a node's own kernel runs it: a new namespace inherits the host's congestion control (BBR on
        # this machine), the stage-one and Debian kernels default to CUBIC.  Under BBR, many flows through
        # 4 Mbit/s tbf queues retransmitted most of what they sent (a peer connection: 70 MB sent, 69 MB of it
        # again, 1 MB acked) and the swarm took that for dead peers.
        _allow_congestion_control(NODE_TCP_CC)
        subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", f"net.ipv4.tcp_congestion_control={NODE_TCP_CC}"],
                       capture_output=True, check=True)  # fmt: skip
        return ns

    def create(self) -> None:
        _roomy_neighbour_table()
        hub = self._new(self.hub)
        hub.ip("link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
        hub.ip("link", "set", "br0", "up")
        master = self._new(self.master)
        hub.ip("link", "add", "mup", "type", "veth", "peer", "name", MASTER_DEV, "netns", master.name)
        hub.ip("link", "set", "mup", "master", "br0", "up")
        a = self.addressing
        master.ip("addr", "add", f"{a.master_ip}/{a.prefixlen}", "dev", MASTER_DEV)
        master.ip("link", "set", MASTER_DEV, "up")
        # The master's uplink: what it sends toward the nodes (capsules) and what reaches it.  A short queue
        # (50 ms) on the master side, so a hello reply never sits behind seconds of queued chunk data.
        shape(master.name, MASTER_DEV, self.uplink, latency_ms=50)
        shape(hub.name, "mup", self.uplink, latency_ms=50)

    def add_nodes(self, count: int) -> list[str]:
        """Create `count` more node namespaces, each with `eth0` (its MAC fixed) on the bridge, shaped."""
        start = len(self.nodes)
        if start + count > MAX_NODES:
            raise LabError(f"{start + count} nodes: one bridge takes at most {MAX_NODES} (lab-recipes.md)")
        hub_cmds: list[str] = []
        hub_tc: list[str] = []
        for i in range(start, start + count):
            ns = self._new(self.node_ns(i))
            dev = self.hub_dev(i)
            mac = self.addressing.node_mac(i)
            hub_cmds.append(f"link add {dev} type veth peer name {NODE_DEV} address {mac} netns {ns.name}")
            hub_cmds.append(f"link set {dev} master br0 up")
            r = self.node_rate
            hub_tc.append(f"qdisc replace dev {dev} root tbf rate {int(r.mbit * 1000)}kbit "
                          f"burst {r.burst_bytes} latency 200ms")  # fmt: skip
            self.nodes.append(ns.name)
        _batch(["ip", "-n", self.hub, "-batch", "-"], hub_cmds)
        _batch(["tc", "-n", self.hub, "-batch", "-"], hub_tc)
        for i in range(start, start + count):
            name = self.node_ns(i)
            # The node's eth0 stays down: bringing it up is the agent's job (network.py), as on hardware.
            shape(name, NODE_DEV, self.node_rate, latency_ms=200)
            if self.loss > 0:
                set_loss(name, self.loss)
        return self.nodes[start:]

    def set_loss(self, probability: float, nodes: Sequence[str] | None = None) -> None:
        """Change packet loss on the given node namespaces (all by default)."""
        for name in nodes if nodes is not None else self.nodes:
            set_loss(name, probability)
        self.loss = probability

    def close(self) -> None:
        # Nodes first (their veth ends go with them), then master and hub.  `ip -batch` deletes fast.
        names = [ns.name for ns in reversed(self._spaces) if ns.created]
        if names:
            subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"netns delete {n}\n" for n in names),
                           capture_output=True, text=True, check=False)  # fmt: skip
        left = set(_namespaces())
        for ns in self._spaces:
            ns.created = ns.created and ns.name in left
            if ns.created:
                ns.delete()
        self._spaces.clear()


NEIGH = Path("/proc/sys/net/ipv4/neigh/default")
# One kernel's ARP table serves every namespace (gc_thresh3 = 1024 by default, host-wide): 100 swarm nodes that
# each talk to a few dozen peers need thousands of entries.  Past the limit the kernel logs "neighbor table
# overflow", a SYN to a new peer never leaves (SYN-SENT for minutes) and the swarm stalls — what a hundred
# machines, each with its own table, never see.
NEIGH_ROOM = {"gc_thresh1": 1024, "gc_thresh2": 8192, "gc_thresh3": 16384}


def _roomy_neighbour_table() -> None:
    """Raise the host's ARP table limits to NEIGH_ROOM where they are lower (never lowers them)."""
    for name, want in NEIGH_ROOM.items():
        path = NEIGH / name
        try:
            if int(path.read_text(encoding="ascii")) < want:
                path.write_text(f"{want}\n", encoding="ascii")
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot raise the host's ARP table limit {name} for the fleet: {exc}") from None


ALLOWED_CC = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control")


def _allow_congestion_control(name: str) -> None:
    """A namespace may pick only algorithms in the host's allowed list (here `reno bbr`): add `name` to it.  The list
    only permits; the host's own default stays what it was."""
    try:
        allowed = ALLOWED_CC.read_text(encoding="ascii").split()
        if name not in allowed:
            ALLOWED_CC.write_text(" ".join([*allowed, name]) + "\n", encoding="ascii")
    except OSError as exc:
        raise LabError(f"cannot allow TCP congestion control {name} for the fleet's namespaces: {exc}") from None


def _batch(argv: list[str], lines: list[str]) -> None:
    if not lines:
        return
    proc = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"{' '.join(argv[:3])} batch failed: {proc.stderr.strip()[:400]}")


def _namespaces() -> list[str]:
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]


def default_tag() -> str:
    """A short namespace prefix unique to this process (ifnames are ≤ 15 bytes, ns names are free)."""
    return f"plf{os.getpid() % 100000}"
