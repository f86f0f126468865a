"""A QEMU lab node behind a Redfish BMC: perceus.lab.redfish_bridge (sushy-tools' emulator driving a QEMU
process) in the lab's namespace, off until powered on through Redfish.

The lab-side twin of perceus.lab.bmc.BmcNode: the same QEMU line made for a BMC (resets in place, serial port on a
chardev that appends to a raw log the lab follows and copies to the node's console log), plus a QMP socket for
the bridge.  The BMC listens on 127.0.0.1:`port` inside the namespace: run `perceus node power …` there.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid as uuidlib
from pathlib import Path

from perceus.lab.bmc import REDFISH_USER, FollowFile, ProcessGroup, as_bmc_node, write_htpasswd
from perceus.lab.bus import python_env
from perceus.lab.lab import BRIDGE, Lab
from perceus.lab.netns import LabError, exec_prefix
from perceus.lab.qemu import Boot, node_mac, qemu_argv
from perceus.lab.serial import SerialLine, SerialLog
from perceus.master.power.consolelog import ConsoleLog


class RedfishNode:
    """A powered-off QEMU node whose BMC speaks Redfish (`url` is its `perceus node set bmc` URL)."""

    def __init__(
        self,
        lab: Lab,
        boot: Boot,
        *,
        index: int = 0,
        memory_mb: int = 1024,
        nic: str = "virtio-net-pci",
        console_log: Path | None = None,
    ) -> None:
        self.lab = lab
        self.name = f"rfnode{index}"
        self.tap = f"rtap{index}"
        self.mac = node_mac(lab.subnet.index, 220 + index)
        self.port = 9300 + 10 * index
        self.uuid = str(uuidlib.uuid4())
        self.workdir = lab.workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.raw_console = self.workdir / "serial.raw"
        self.pidfile = self.workdir / "qemu.pid"
        extra = (
            "-chardev",
            f"file,id=ser0,path={self.raw_console},append=on",
            "-qmp",
            f"unix:{self.workdir / QMP_SOCKET},server=on,wait=off",
            "-pidfile",
            str(self.pidfile),
        )
        argv = qemu_argv(
            name=self.name, mac=self.mac, tap=self.tap, boot=boot, nic=nic, memory_mb=memory_mb, extra=extra
        )
        self.argv = as_bmc_node(argv, "chardev:ser0")
        lab.netns.add_tap(self.tap, BRIDGE)
        self.process: ProcessGroup | None = None
        self.started = time.monotonic()
        self._follow = FollowFile(self.raw_console, ConsoleLog(console_log) if console_log else None)
        self.serial = SerialLog(self.name, self._follow, self.started)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return bridge_url(self.port, self.uuid)

    def __enter__(self) -> RedfishNode:
        conf = self.workdir / "emulator.conf"
        conf.write_text(
            bridge_config(self.workdir, port=self.port, argv=self.argv, uuid=self.uuid, name=self.name, mac=self.mac)
        )
        self.process = start_bridge(conf, self.workdir, netns=self.lab.name, port=self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def qemu_pid(self) -> int | None:
        """QEMU's pid while the VM is on (its pidfile names a live QEMU), else None."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"qemu" in cmdline else None

    def wait_for(self, pattern: str, timeout: float = 180.0, start: int = 0) -> SerialLine:
        return self.serial.wait_for(pattern, timeout, start)

    def close(self) -> None:
        if self.process is not None:
            self.process.stop()  # its process group: the bridge and the QEMU it started
            self.process = None
        pid = self.qemu_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        self._follow.stopped.set()
        self.serial.join()
        self._follow.close()


QMP_SOCKET = "qmp.sock"


def bridge_url(port: int, uuid: str) -> str:
    """The `perceus node set bmc` URL of the bridge's one system."""
    return f"redfish+http://{REDFISH_USER}@127.0.0.1:{port}/redfish/v1/Systems/{uuid}"


def bridge_config(workdir: Path, *, port: int, argv: list[str], uuid: str, name: str, mac: str) -> str:
    """sushy-tools' config (a Flask pyfile) plus the bridge's PERCEUS_QEMU_* keys; writes the htpasswd.  `argv`
    must give QEMU `-qmp unix:WORKDIR/qmp.sock,server=on,wait=off`."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_htpasswd(workdir / "htpasswd")
    values = {
        "SUSHY_EMULATOR_LISTEN_IP": "127.0.0.1",
        "SUSHY_EMULATOR_LISTEN_PORT": port,
        "SUSHY_EMULATOR_AUTH_FILE": str(workdir / "htpasswd"),
        "SUSHY_EMULATOR_STATE_DIR": str(workdir / "state"),
        "PERCEUS_QEMU_ARGV": argv,
        "PERCEUS_QEMU_UUID": uuid,
        "PERCEUS_QEMU_NAME": name,
        "PERCEUS_QEMU_MAC": mac,
        "PERCEUS_QEMU_QMP": str(workdir / QMP_SOCKET),
        "PERCEUS_QEMU_LOG": str(workdir / "qemu.log"),
    }
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())  # JSON literals are Python here


def start_bridge(conf: Path, workdir: Path, *, port: int, netns: str = "", timeout: float = 30.0) -> ProcessGroup:
    """`python -m perceus.lab.redfish_bridge` in its own session (in `netns` if given), once it listens."""
    argv = [sys.executable, "-m", "perceus.lab.redfish_bridge", "--config", str(conf)]
    if netns:
        argv = [*exec_prefix(netns), *argv]
    process = ProcessGroup(argv, workdir / "bridge.log", env=python_env(), cwd=workdir)
    deadline = time.monotonic() + timeout
    while not _tcp_listening(process.pid, port):
        if not process.running():
            raise LabError(f"the Redfish bridge exited; see {process.log}")
        if time.monotonic() > deadline:
            process.stop()
            raise LabError(f"the Redfish bridge did not listen on {port} within {timeout} s; see {process.log}")
        time.sleep(0.05)
    return process


def _tcp_listening(pid: int, port: int) -> bool:
    """Whether a TCP socket listens on `port` in the network namespace of `pid` (/proc/PID/net/tcp)."""
    try:
        text = Path(f"/proc/{pid}/net/tcp").read_text()
    except OSError:
        return False
    want = f":{port:04X}"
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1].endswith(want) and fields[3] == "0A":  # 0A: LISTEN
            return True
    return False
