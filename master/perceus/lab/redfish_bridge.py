"""A Redfish BMC for one QEMU lab node: sushy-tools' emulator with a systems driver whose one system is a QEMU
process (`python -m perceus.lab.redfish_bridge --config FILE`).

sushy-tools serves the Redfish tree (service root, Systems, Managers, Chassis, the ComputerSystem.Reset action,
basic auth) that sushy — and so `perceus node power` — already works against in the tests; only its drivers
(libvirt, Nova, Ironic, fake) do not fit: there is no libvirt here and the fake driver moves no machine.  It has
no plug-in point for a driver either (`Application.systems` picks one in an if-chain), so this process sets that
one property to a `QemuDriver` before it serves.  The driver:

- PowerState is "On" while the QEMU process lives, "Off" otherwise;
- On / ForceOn start QEMU (its command line comes from the config), ForceOff ends it (QMP `quit`, then a kill);
- ForceRestart and GracefulRestart reset it in place (QMP `system_reset`: firmware, PXE, stage one again);
- GracefulShutdown presses the ACPI power button (QMP `system_powerdown`; the guest decides); Nmi injects one.

QEMU runs in this process's group, so stopping the group (perceus.lab.bmc.ProcessGroup) ends both.  The config file is
sushy-tools' own (Flask pyfile) plus PERCEUS_QEMU_* keys (argv, uuid, name, mac, qmp socket, log).
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from sushy_tools import error
from sushy_tools.emulator import main as emulator
from sushy_tools.emulator.resources.systems.base import AbstractSystemsDriver


class QmpError(RuntimeError):
    """QEMU's monitor refused a command or did not answer."""


def qmp(path: Path, command: str, timeout: float = 5.0) -> dict[str, Any]:
    """Run one QMP command on QEMU's monitor socket (a fresh connection each time: the server takes one)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        stream = sock.makefile("rwb")
        json.loads(stream.readline())  # the greeting
        reply: dict[str, Any] = {}
        for cmd in ("qmp_capabilities", command):
            stream.write(json.dumps({"execute": cmd}).encode() + b"\n")
            stream.flush()
            while True:  # events may come first
                line = stream.readline()
                if not line:
                    raise QmpError(f"QEMU closed its monitor during {cmd}")
                reply = json.loads(line)
                if "return" in reply or "error" in reply:
                    break
            if "error" in reply:
                raise QmpError(f"{cmd}: {reply['error'].get('desc', reply['error'])}")
        return reply


class QemuMachine:
    """A QEMU process as a machine behind a power switch: start, monitor commands, stop."""

    def __init__(self, argv: list[str], qmp_path: Path, log: Path) -> None:
        self.argv = argv
        self.qmp_path = qmp_path
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        if self.running():
            return
        self.qmp_path.unlink(missing_ok=True)
        with self.log.open("ab") as fh:
            # Same process group as this bridge: stopping the bridge's group stops the VM too.
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh)

    def monitor(self, command: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.qmp_path.exists():  # QEMU creates its socket a moment after it starts
            if not self.running() or time.monotonic() > deadline:
                raise QmpError(f"no QMP socket at {self.qmp_path}")
            time.sleep(0.02)
        return qmp(self.qmp_path, command, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if not self.running():
            return
        assert self.popen is not None
        try:
            self.monitor("quit")
        except (OSError, QmpError, ValueError):
            self.popen.kill()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout)


class QemuDriver(AbstractSystemsDriver):  # type: ignore[misc]  # sushy-tools is untyped
    """sushy-tools' systems driver for one QemuMachine (see the module docstring for the reset mapping)."""

    _config: ClassVar[dict[str, Any]]
    _logger: ClassVar[Any]

    @classmethod
    def initialize(cls, config: dict[str, Any], logger: Any, *args: Any, **kwargs: Any) -> type[QemuDriver]:
        cls._config = config
        cls._logger = logger
        return cls

    def __init__(self) -> None:
        super().__init__()
        c = self._config
        self._uuid, self._name, self._mac = c["PERCEUS_QEMU_UUID"], c["PERCEUS_QEMU_NAME"], c["PERCEUS_QEMU_MAC"]
        self.machine = QemuMachine(
            list(c["PERCEUS_QEMU_ARGV"]), Path(c["PERCEUS_QEMU_QMP"]), Path(c["PERCEUS_QEMU_LOG"])
        )
        self._boot_device = "Pxe"

    def _check(self, identity: str) -> None:
        if identity not in (self._uuid, self._name):
            raise error.NotFound(f"no system {identity}")

    @property
    def driver(self) -> str:
        return "<perceus-qemu>"

    @property
    def systems(self) -> list[str]:
        return [self._uuid]

    def uuid(self, identity: str) -> str:
        self._check(identity)
        return str(self._uuid)

    def name(self, identity: str) -> str:
        self._check(identity)
        return str(self._name)

    def get_power_state(self, identity: str) -> str:
        self._check(identity)
        return "On" if self.machine.running() else "Off"

    def set_power_state(self, identity: str, state: str) -> None:
        self._check(identity)
        m = self.machine
        with m.lock:
            if state in ("On", "ForceOn"):
                m.start()
            elif state == "ForceOff":
                m.stop()
            elif state in ("ForceRestart", "GracefulRestart"):
                if m.running():
                    m.monitor("system_reset")
                else:
                    m.start()
            elif state == "GracefulShutdown":
                if m.running():
                    m.monitor("system_powerdown")
            elif state == "Nmi":
                if m.running():
                    m.monitor("inject-nmi")
            else:
                raise error.NotSupportedError(f"power state {state} is not supported")
        self._logger.info("qemu_power %s %s: running=%s", identity, state, m.running())

    def get_boot_device(self, identity: str) -> str:
        self._check(identity)
        return self._boot_device  # QEMU boots from its NIC (-boot n): reported, not changed

    def set_boot_device(self, identity: str, boot_source: str) -> None:
        self._check(identity)
        self._boot_device = boot_source

    def get_nics(self, identity: str) -> list[dict[str, str]]:
        self._check(identity)
        return [{"id": self._mac, "mac": self._mac}]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="perceus.lab.redfish_bridge", description=__doc__)
    parser.add_argument("--config", required=True, type=Path)
    ns = parser.parse_args(argv)
    app = emulator.app
    app.configure(config_file=str(ns.config))
    app.logger.setLevel(logging.INFO)  # one line per power action in the bridge's log
    driver = QemuDriver.initialize(app.config, app.logger)()
    # The one override: sushy-tools chooses its systems driver in this property (no plug-in point).
    type(app).systems = property(lambda _app: driver)
    try:
        app.run(
            host=app.config.get("SUSHY_EMULATOR_LISTEN_IP", "127.0.0.1"),
            port=int(app.config["SUSHY_EMULATOR_LISTEN_PORT"]),
            threaded=True,
        )
    finally:
        driver.machine.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
