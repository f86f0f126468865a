"""A private network namespace with one bridge and per-node taps, driven with iproute2's ``ip``."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from perceus.errors import PerceusError


class LabError(PerceusError):
    """Setting up or using the lab (namespace, bridge, dnsmasq, QEMU) failed."""


@dataclass(frozen=True)
class Subnet:
    """Addressing of one lab: 10.77.<index>.0/24 and fd77:<index>::/64 on the bridge."""

    index: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.index <= 255:
            raise ValueError(f"subnet index {self.index} outside 0..255")

    @property
    def gateway(self) -> str:
        return f"10.77.{self.index}.1"

    @property
    def prefixlen(self) -> int:
        return 24

    @property
    def dhcp_range(self) -> tuple[str, str]:
        return f"10.77.{self.index}.100", f"10.77.{self.index}.199"

    @property
    def ipv6_prefix(self) -> str:
        return f"fd77:{self.index:x}::"

    @property
    def ipv6_gateway(self) -> str:
        return f"fd77:{self.index:x}::1"


def _ip(args: Sequence[str]) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def exec_prefix(name: str) -> list[str]:
    """argv prefix that runs a command inside namespace ``name``."""
    return ["ip", "netns", "exec", name]


class NetNS:
    """A namespace this process created; ``delete()`` removes it and everything in it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.created = False

    def create(self) -> None:
        # `ip netns add` fails if the name exists: we never adopt someone else's namespace.
        _ip(["netns", "add", self.name])
        self.created = True
        self.ip("link", "set", "lo", "up")

    def ip(self, *args: str) -> str:
        return _ip(["-n", self.name, *args])

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float | None = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace and capture its output."""
        proc = subprocess.run(
            [*exec_prefix(self.name), *argv], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise LabError(f"{' '.join(argv)} (in {self.name}) exited {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def add_bridge(self, bridge: str, subnet: Subnet) -> None:
        self.ip("link", "add", bridge, "type", "bridge")
        # No STP delay: ports forward at once, so PXE's first DHCPDISCOVER is not lost.
        self.ip("link", "set", bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0")
        self.ip("addr", "add", f"{subnet.gateway}/{subnet.prefixlen}", "dev", bridge)
        # An IPv6 address so dnsmasq can send router advertisements; without them
        # iPXE waits 12-16 s for IPv6 autoconfiguration on every boot.
        self.ip("-6", "addr", "add", f"{subnet.ipv6_gateway}/64", "dev", bridge, "nodad")
        self.ip("link", "set", bridge, "up")

    def add_tap(self, tap: str, bridge: str) -> None:
        self.ip("tuntap", "add", "dev", tap, "mode", "tap")
        self.ip("link", "set", tap, "master", bridge)
        self.ip("link", "set", tap, "up")

    def delete(self) -> None:
        if not self.created:
            return
        # Taps are deleted with the namespace too; deleting it is the one step that matters.
        _ip(["netns", "delete", self.name])
        self.created = False


def namespace_exists(name: str) -> bool:
    return any(line.split()[0] == name for line in _ip(["netns", "list"]).splitlines() if line.strip())
