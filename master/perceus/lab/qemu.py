"""QEMU nodes for the lab: TCG only, one vCPU, NIC on a tap, serial console on stdio."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from perceus.lab.procs import ManagedProcess
from perceus.lab.serial import SerialLine, SerialLog, SerialTimeout

QEMU = "qemu-system-x86_64"
OVMF = Path("/usr/share/ovmf/OVMF.fd")  # Debian ovmf: code and variables in one read-only image


@dataclass(frozen=True)
class DirectBoot:
    """Boot with ``-kernel/-initrd/-append`` (no firmware PXE): the fast path for most tests."""

    kernel: Path
    initrd: Path
    append: str


@dataclass(frozen=True)
class PxeBoot:
    """Boot from the network: DHCP, then whatever dnsmasq hands out.

    ``firmware="bios"``: SeaBIOS runs the NIC's iPXE option ROM (``-boot n``), which asks for boot.ipxe at
    once.  ``"uefi"``: OVMF (Debian ``ovmf``) with no NIC option ROM, so the firmware's own PXE client loads
    ``ipxe.efi`` over TFTP first, as on a real UEFI server (lab-recipes.md; OVMF lacks e1000: use virtio).
    """

    firmware: Literal["bios", "uefi"] = "bios"


Boot = DirectBoot | PxeBoot


def node_mac(lab_index: int, node_index: int) -> str:
    """Deterministic MAC of node ``node_index`` in lab ``lab_index``: 52:54:00:77:XX:YY."""
    if not (0 <= lab_index <= 255 and 0 <= node_index <= 255):
        raise ValueError(f"lab {lab_index} / node {node_index} outside 0..255")
    return f"52:54:00:77:{lab_index:02x}:{node_index:02x}"


def qemu_argv(
    *,
    name: str,
    mac: str,
    tap: str,
    boot: Boot,
    nic: str = "virtio-net-pci",
    memory_mb: int = 512,
    extra: tuple[str, ...] = (),
    binary: str = QEMU,
) -> list[str]:
    """The QEMU command line of one node (see vm-boot-notes.md section 6)."""
    argv = [
        binary,
        "-name", name,
        # /dev/kvm here is kvm_pvm, under which Debian's kernel hangs: always TCG.
        "-accel", "tcg",
        "-cpu", "max",  # ~0.6 s faster to Python than qemu64 under TCG
        "-smp", "1",
        "-m", str(memory_mb),
        "-nodefaults",
        "-display", "none",
        # A guest reset or panic (with panic=-1) ends QEMU instead of looping.
        "-no-reboot",
        "-serial", "stdio",
        "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
    ]  # fmt: skip
    device = f"{nic},netdev=n0,mac={mac}"
    if isinstance(boot, DirectBoot):
        argv += ["-device", device, "-kernel", str(boot.kernel), "-initrd", str(boot.initrd), "-append", boot.append]
    elif boot.firmware == "uefi":
        # No option ROM (romfile=): OVMF's own virtio-net driver and PXE client; bootindex, not -boot n.
        argv += ["-bios", str(OVMF), "-device", f"{device},romfile=,bootindex=1"]
    else:
        argv += ["-device", device, "-boot", "n"]
    return argv + list(extra)


class QemuNode:
    """A running QEMU node; its console is ``serial`` (timestamped lines from QEMU start)."""

    def __init__(self, name: str, mac: str, tap: str, argv: list[str], workdir: Path) -> None:
        self.name = name
        self.mac = mac
        self.tap = tap
        self.argv = argv
        self.started = time.monotonic()
        self.process = ManagedProcess(
            name, argv, log=workdir / f"{name}.qemu.log", stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        stdout = self.process.popen.stdout
        assert stdout is not None  # stdout=PIPE above
        self.serial = SerialLog(name, stdout, self.started, workdir / f"{name}.serial.log")

    def wait_for(self, pattern: str, timeout: float = 180.0, start: int = 0) -> SerialLine:
        """Wait for a console line matching regex ``pattern``; raises SerialTimeout with the tail.

        When QEMU itself died (bad option, tap busy), its own error output is added to
        the message, since the console then shows nothing useful.
        """
        try:
            return self.serial.wait_for(pattern, timeout, start)
        except SerialTimeout as exc:
            if exc.ended and self.process.log is not None and self.process.log.exists():
                qemu_said = " ".join(self.process.log.read_text(errors="replace").split()[-60:])
                if qemu_said:
                    exc.message = f"{exc.message}; qemu: {qemu_said}"
            raise

    def type_line(self, line: str) -> None:
        """Type ``line`` and Enter on the serial console (e.g. into a debug shell).

        Enter is sent as CR, like a real terminal: busybox's line editor keeps the tty
        raw and ignores a bare LF, while a cooked tty maps CR to LF anyway.
        """
        self.send(line + "\r")

    def send(self, text: str) -> None:
        """Send raw ``text`` to the serial console."""
        stdin = self.process.popen.stdin
        if stdin is None:
            raise RuntimeError(f"{self.name}: no console input")
        stdin.write(text.encode())
        stdin.flush()

    def wait_exit(self, timeout: float = 60.0) -> int:
        """Wait for QEMU to end (guest poweroff gives 0); returns its exit status."""
        rc = self.process.wait(timeout)
        self.serial.join()
        return rc

    def stop(self) -> None:
        if self.process.popen.stdin is not None and not self.process.popen.stdin.closed:
            try:
                self.process.popen.stdin.close()
            except BrokenPipeError:
                pass
        self.process.stop()
        self.serial.join()
