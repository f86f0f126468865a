"""The emulated fleet's master: perceus.conf for the fleet network, a test capsule, perceus-bus in its namespace.

The bus runs exactly as in production — Curve on, dnsmasq supervised by the bus (DHCP on the master's uplink
`up0`), capsules signed — only its namespace is a lab one.  The capsule is generated: a kernel-sized file and
incompressible data up to the requested size, imported with the real `perceus vnfs import`.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from perceus.lab.bus import busd_argv, perceus_cli, python_env, wait_listening
from perceus.lab.fleet_net import MASTER_DEV, FleetAddressing
from perceus.lab.netns import LabError, exec_prefix
from perceus.lab.procs import ManagedProcess
from perceus.master.bus.control import ENDPOINTS_FILE
from perceus.master.config import Paths

CAPSULE = "fleet"
BUS_PORT = 9987
EVENT_PORT = 9988
KERNEL_BYTES = 1 << 20


@dataclass(frozen=True)
class MasterSettings:
    """What the fleet's perceus.conf says beyond the defaults (pacing is what the benchmark varies)."""

    addressing: FleetAddressing
    uplink_mbit: float
    node_mbit: float
    pacing: bool = True
    checkin_interval: int = 60
    extra: str = ""  # more perceus.conf lines (tests)

    def perceus_conf(self) -> str:
        a = self.addressing
        start, end = a.dhcp_range
        return (
            "# perceus lab fleet: a master on its own namespace's uplink (up0), nodes behind a bridge\n"
            f"master network device = {MASTER_DEV}\n"
            "manage dnsmasq = yes\n"
            "dnsmasq user = root\n"
            f"bus port = {BUS_PORT}\n"
            f"event port = {EVENT_PORT}\n"
            f"checkin interval = {self.checkin_interval}\n"
            f"dhcp range start = {start}\n"
            f"dhcp range end = {end}\n"
            f"capsule pacing = {'yes' if self.pacing else 'no'}\n"
            f"capsule uplink = {self.uplink_mbit:g}mbit\n"
            f"capsule node rate = {self.node_mbit:g}mbit\n"
            f"{self.extra}"
        )


def make_capsule_tree(root: Path, size: int, *, seed: int = 18) -> None:
    """A capsule root of about `size` bytes that zstd cannot shrink (the wire carries all of it)."""
    rng = random.Random(seed)  # noqa: S311 - jitter and ids, never a secret
    (root / "boot").mkdir(parents=True, exist_ok=True)
    (root / "boot/vmlinuz-fleet").write_bytes(rng.randbytes(min(KERNEL_BYTES, size // 4)))
    rest = max(0, size - min(KERNEL_BYTES, size // 4))
    data = root / "usr/share/fleet"
    data.mkdir(parents=True, exist_ok=True)
    part = 0
    while rest > 0:
        n = min(rest, 1 << 20)
        (data / f"blob{part:04d}").write_bytes(rng.randbytes(n))
        rest -= n
        part += 1
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/hostname").write_text("fleet\n")


def prepare(paths: Paths, settings: MasterSettings, capsule_bytes: int, cache: Path) -> None:
    """Config, defaults and the capsule (imported once per size into `cache`, then copied by state)."""
    paths.ensure()
    paths.perceus_conf.write_text(settings.perceus_conf())
    paths.defaults_conf.write_text(f"Node Name = n####\nGroup Name = cluster\nVnfs Name = {CAPSULE}\nEnabled = 1\n")
    if (paths.vnfs / CAPSULE).is_dir():
        return
    tree = cache / f"capsule-{capsule_bytes}"
    if not (tree / "etc/hostname").exists():
        make_capsule_tree(tree, capsule_bytes)
    proc = perceus_cli(paths, "-q", "vnfs", "import", str(tree), "--name", CAPSULE, timeout=600)
    if proc.returncode != 0:
        raise LabError(f"importing the fleet capsule failed: {proc.stderr.strip()[-400:]}")


def capsule_wire_bytes(paths: Paths) -> int:
    """Bytes a node pulls for the capsule: the sum of its distinct chunks as stored (compressed)."""
    from perceus.master.capsule.layout import Store
    from perceus.master.capsule.pack import current

    manifest = current(Store(paths).existing(CAPSULE))
    if manifest is None:
        raise LabError("the fleet capsule has no current manifest")
    return sum(ref.size for ref in {r.hash: r for r in manifest.all_chunks()}.values())


@dataclass
class FleetBus:
    """perceus-bus running in the master namespace."""

    paths: Paths
    process: ManagedProcess
    endpoint: str

    def key_hex(self, name: str) -> str:
        path = self.paths.config_dir / "keys" / name
        return path.read_text().strip() if path.exists() else ""

    def node_cmdline(self, debug: int = 1) -> str:
        """The stage-one kernel command line a PXE-booted node gets from this master's boot.ipxe.

        The image's key overlay (etc/perceus/master.pub, sign.pub) becomes `perceus.masterkey=` /
        `perceus.signkey=`: an emulated node shares the host's /etc, so the keys travel on its command line.
        """
        script = self.paths.tftp / "boot.ipxe"
        words: list[str] = []
        if script.exists():
            for line in script.read_text().splitlines():
                if line.startswith("kernel "):
                    words = [w for w in line.split()[2:] if not w.startswith("console=")]
        if not words:
            host = self.endpoint.removeprefix("tcp://")
            words = [f"perceus.master={host}"]
        words = [re.sub(r"\$\{perceus-debug\}", str(debug), w) for w in words]
        words += ["console=null", f"perceus.masterkey={self.key_hex('bus.pub')}",
                  f"perceus.signkey={self.key_hex('sign.pub')}"]  # fmt: skip
        return " ".join(w for w in words if not w.endswith("="))

    def stop(self) -> None:
        self.process.stop(timeout=10)

    def kill(self) -> None:
        """SIGKILL (a crash: no goodbye, no flush), then reap it and close its log."""
        if self.process.running():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process.stop()


def start_bus(paths: Paths, netns: str, addressing: FleetAddressing, *, timeout: float = 30) -> FleetBus:
    """perceus-bus (Curve on: the product default) bound to the master's uplink address in `netns`."""
    paths.ensure()
    (paths.run / ENDPOINTS_FILE).unlink(missing_ok=True)
    ip = addressing.master_ip
    argv = [*exec_prefix(netns), *busd_argv(paths, f"tcp://{ip}:{BUS_PORT}", f"tcp://{ip}:{EVENT_PORT}")]
    log = paths.logs / "perceus-bus.log"
    proc = ManagedProcess("perceus-bus", argv, log=log, env=python_env())
    try:
        endpoints = wait_listening(paths, proc.running, log, timeout)
    except LabError:
        proc.stop()
        raise LabError(f"perceus-bus did not start: {log.read_text(errors='replace')[-600:]}") from None
    deadline = time.monotonic() + 10  # dnsmasq writes boot.ipxe when it starts; give it a moment
    while not (paths.tftp / "boot.ipxe").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return FleetBus(paths, proc, endpoints[0])
