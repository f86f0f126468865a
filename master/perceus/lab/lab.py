"""The ``Lab`` context manager: namespace + bridge + dnsmasq + QEMU nodes, all torn down on exit."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import structlog

from perceus.lab.dnsmasq import DnsmasqConfig
from perceus.lab.netns import LabError, NetNS, Subnet, exec_prefix
from perceus.lab.procs import ManagedProcess
from perceus.lab.qemu import QEMU, Boot, QemuNode, node_mac, qemu_argv

BRIDGE = "br0"
_counter = itertools.count()
log = structlog.get_logger("perceus.lab")


def lab_name() -> str:
    """A namespace name unique to this process and lab: perceus-lab-<pid>[-n]."""
    n = next(_counter)
    return f"perceus-lab-{os.getpid()}" + (f"-{n}" if n else "")


def missing_tools() -> list[str]:
    """Host binaries the lab needs that are not installed."""
    return [t for t in ("ip", QEMU, "dnsmasq") if shutil.which(t) is None]


class Lab:
    """A private network for QEMU nodes; nothing it does is visible outside its namespace.

    ::

        with Lab(workdir=tmp) as lab:
            lab.start_dnsmasq(tftp_root=tftp, boot_file="boot.ipxe")
            node = lab.add_node(PxeBoot())
            node.wait_for("python-ok", timeout=180)

    On exit (normal, exception, Ctrl-C or SIGTERM) it stops every QEMU, dnsmasq
    and spawned process by pid, then deletes the namespace (with bridge and taps).
    """

    def __init__(self, *, workdir: Path | None = None, index: int = 0, name: str | None = None) -> None:
        self.name = name or lab_name()
        self.subnet = Subnet(index)
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.netns = NetNS(self.name)
        self.nodes: list[QemuNode] = []
        self.processes: list[ManagedProcess] = []
        self.dnsmasq: ManagedProcess | None = None
        self.dnsmasq_config: DnsmasqConfig | None = None
        self._old_sigterm: Any = None

    # -- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces, taps)")
        if missing := missing_tools():
            raise LabError(f"the lab needs {', '.join(missing)} installed")
        self._trap_sigterm()
        try:
            self.netns.create()
            self.netns.add_bridge(BRIDGE, self.subnet)
        except BaseException:
            self.close()
            raise
        log.info(
            "lab_created",
            netns=self.name,
            bridge=BRIDGE,
            gateway=self.subnet.gateway,
            workdir=str(self.workdir),
        )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _trap_sigterm(self) -> None:
        # SIGTERM becomes KeyboardInterrupt so `with Lab()` unwinds and tears down,
        # exactly like Ctrl-C.  Signal handlers can only be set from the main thread.
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        self._old_sigterm = signal.signal(signal.SIGTERM, handler)

    def close(self) -> None:
        """Stop what this lab started, newest first, then delete its namespace. Idempotent."""
        errors: list[str] = []
        for node in reversed(self.nodes):
            try:
                node.stop()
            except Exception as exc:  # keep tearing down the rest  # noqa: BLE001
                errors.append(f"{node.name}: {exc}")
        for proc in reversed(self.processes):
            try:
                proc.stop()
            except Exception as exc:  # noqa: BLE001 - an error boundary: any failure here is one line and the caller goes on
                errors.append(f"{proc.name}: {exc}")
        self.nodes.clear()
        self.processes.clear()
        self.dnsmasq = None
        try:
            self.netns.delete()
        except Exception as exc:  # noqa: BLE001 - an error boundary: any failure here is one line and the caller goes on
            errors.append(f"netns {self.name}: {exc}")
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None
        log.info("lab_removed", netns=self.name, errors=errors or None)
        if errors:
            raise LabError(f"lab teardown incomplete: {'; '.join(errors)}")

    # -- services ----------------------------------------------------------------------------
    @property
    def gateway(self) -> str:
        """The bridge's IPv4 address: where services in the namespace listen for nodes."""
        return self.subnet.gateway

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float | None = 60) -> str:
        """Run a short command inside the namespace; return its stdout."""
        return self.netns.run(argv, check=check, timeout=timeout).stdout

    def spawn(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> ManagedProcess:
        """Start a long-running process (e.g. perceus-bus) in the namespace; logs to <workdir>/<name>.log."""
        proc = ManagedProcess(name, [*exec_prefix(self.name), *argv], log=self.workdir / f"{name}.log", env=env)
        self.processes.append(proc)
        log.info("lab_process_started", name=name, pid=proc.pid)
        return proc

    def start_dnsmasq(
        self, *, tftp_root: Path | None = None, boot_file: str | None = None, extra: tuple[str, ...] = ()
    ) -> ManagedProcess:
        """Start dnsmasq on the bridge: DHCPv4 + RAs, plus TFTP/boot file for PXE when given."""
        if self.dnsmasq is not None:
            raise LabError("dnsmasq already running in this lab")
        config = DnsmasqConfig(BRIDGE, self.subnet, self.workdir, tftp_root=tftp_root, boot_file=boot_file, extra=extra)
        proc = self.spawn("dnsmasq", config.argv())
        self._wait_for_file(config.pidfile, proc, timeout=10)
        self.dnsmasq, self.dnsmasq_config = proc, config
        return proc

    def _wait_for_file(self, path: Path, proc: ManagedProcess, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if not proc.running():
                raise LabError(f"{proc.name} exited with {proc.popen.returncode}; see {proc.log}")
            if time.monotonic() > deadline:
                raise LabError(f"{proc.name} did not write {path} within {timeout} s")
            time.sleep(0.05)

    # -- nodes -------------------------------------------------------------------------------
    def add_node(
        self, boot: Boot, *, nic: str = "virtio-net-pci", memory_mb: int = 512, extra: tuple[str, ...] = ()
    ) -> QemuNode:
        """Create a tap on the bridge and start a QEMU node on it."""
        index = len(self.nodes)
        name = f"node{index}"
        tap = f"tap{index}"
        mac = node_mac(self.subnet.index, index)
        self.netns.add_tap(tap, BRIDGE)
        argv = qemu_argv(name=name, mac=mac, tap=tap, boot=boot, nic=nic, memory_mb=memory_mb, extra=extra)
        node = QemuNode(name, mac, tap, [*exec_prefix(self.name), *argv], self.workdir)
        self.nodes.append(node)
        log.info("lab_node_started", node=name, mac=mac, pid=node.process.pid, boot=type(boot).__name__)
        return node

    def leases(self) -> str:
        """dnsmasq's lease file (empty when none)."""
        if self.dnsmasq_config is None or not self.dnsmasq_config.leasefile.exists():
            return ""
        return self.dnsmasq_config.leasefile.read_text()
