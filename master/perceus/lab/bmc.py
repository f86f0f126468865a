"""BMCs for tests, benchmarks and the lab: OpenIPMI's `ipmi_sim` (IPMI 2.0, optionally the BMC of a QEMU node
through QEMU's `ipmi-bmc-extern` chardev) and sushy-tools' Redfish emulator (fake driver, behind gunicorn).

Configurations follow lab-recipes.md (cipher suite 3 with ipmitool, `-n` and a closed stdin for ipmi_sim,
bcrypt rounds 4 for the emulator's htpasswd, a fresh state directory per emulator).  Every process started
here runs in its own session and is stopped by its process group, never by name.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid as uuidlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from perceus.lab.lab import BRIDGE, Lab
from perceus.lab.netns import LabError, exec_prefix
from perceus.lab.qemu import Boot, node_mac, qemu_argv
from perceus.lab.serial import SerialLine, SerialLog
from perceus.master.power.consolelog import ConsoleLog

IPMI_USER, IPMI_PASSWORD = "admin", "Qz7-bmc-secret"
SOL_USER = "sol"  # SOL gets its own user: pyghmi shares one session per (bmc, user) and the two hang
REDFISH_USER, REDFISH_PASSWORD = "admin", "Qz7-bmc-secret"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 right now (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessGroup:
    """A child started in its own session, stopped by process group (ipmi_sim's QEMU dies with it)."""

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None):
        self.log = log
        self._fh = log.open("ab")
        self.popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=self._fh,
            stderr=self._fh,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(timeout)
                # The group may outlive its leader (QEMU started by ipmi_sim): make sure it is gone too.
                os.killpg(self.popen.pid, signal.SIGKILL)
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                pass
            break
        self._fh.close()


# ---------------------------------------------------------------------------------------------- IPMI


class IpmiSim:
    """One `ipmi_sim` BMC on 127.0.0.1:`port` (UDP).  `startcmd` is what power-on runs (a QEMU node, or
    `sleep` for a BMC without a machine); `vm_port` is the TCP port QEMU's ipmi-bmc-extern connects to,
    `sol` a `telnet:HOST:PORT` serial port SOL attaches to.

    `lan_address` / `lan_mac` are what the BMC says its LAN channel's IP and MAC are (LAN configuration
    parameters 3 and 5, static source): ipmi_sim reads those through its `lan_config_program`, which without
    one answers 0.0.0.0.  They are what a node reads of its own BMC (perceus.agent.bmc_self); the BMC itself
    still listens on 127.0.0.1:`port`."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        startcmd: str = "sleep 100000",
        vm_port: int | None = None,
        sol: str = "",
        netns: str = "",
        poweroff_wait: int = 1,
        name: str = "bmc",
        lan_address: str = "192.0.2.1",
        lan_mac: str = "02:00:00:00:19:01",
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port(socket.SOCK_DGRAM)
        self.vm_port = vm_port or free_port()
        self.startcmd = startcmd
        self.sol = sol
        self.netns = netns
        self.poweroff_wait = poweroff_wait
        self.name = name
        self.lan_address = lan_address
        self.lan_mac = lan_mac
        self.process: ProcessGroup | None = None

    @property
    def url(self) -> str:
        return f"ipmi://{IPMI_USER}@127.0.0.1:{self.port}"

    def lan_control(self) -> str:
        """ipmi_sim's `lan_config_program` (`PROG get PARM…` prints `PARM:VALUE` lines; sets refused)."""
        values = {
            "ip_addr": self.lan_address,
            "ip_addr_src": "static",
            "mac_addr": self.lan_mac,
            "subnet_mask": "255.255.255.0",
            "default_gw_ip_addr": "0.0.0.0",  # noqa: S104 - a value the BMC reports, not a bind address
            "default_gw_mac_addr": "00:00:00:00:00:00",
            "backup_gw_ip_addr": "0.0.0.0",  # noqa: S104 - as above
            "backup_gw_mac_addr": "00:00:00:00:00:00",
        }
        cases = "".join(f"    {k}) echo {k}:{v} ;;\n" for k, v in values.items())
        return (
            "#!/bin/sh\n# The lab BMC's LAN settings for ipmi_sim (get only).\n"
            '[ "$2" = get ] || exit 1\nshift 2\nfor p; do\n  case $p in\n'
            f"{cases}    *) exit 1 ;;\n  esac\ndone\n"
        )

    def lan_conf(self) -> str:
        sol = f'  sol "{self.sol}" 115200\n' if self.sol else ""
        auths = "none md2 md5 straight"
        return (
            f'name "{self.name}"\n'
            "set_working_mc 0x20\n"
            "  startlan 1\n"
            f"    addr 127.0.0.1 {self.port}\n"
            "    priv_limit admin\n"
            f'    lan_config_program "{self.workdir / "lancontrol"} lan0"\n'
            f"    allowed_auths_callback {auths}\n    allowed_auths_user {auths}\n"
            f"    allowed_auths_operator {auths}\n    allowed_auths_admin {auths}\n"
            "    guid a123456789abcdefa123456789abcdef\n"
            "  endlan\n"
            f"  serial 15 127.0.0.1 {self.vm_port} codec VM\n"
            f"{sol}"
            f"  startcmd {json.dumps(self.startcmd)}\n"
            "  startnow false\n"
            f"  poweroff_wait {self.poweroff_wait}\n"
            "  kill_wait 2\n"
            f'  user 2 true "{IPMI_USER}" "{IPMI_PASSWORD}" admin 10 {auths}\n'
            f'  user 3 true "{SOL_USER}" "{IPMI_PASSWORD}" admin 10 {auths}\n'
        )

    def start(self, timeout: float = 10.0) -> IpmiSim:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "state").mkdir(exist_ok=True)
        conf, emu = self.workdir / "lan.conf", self.workdir / "bmc.emu"
        conf.write_text(self.lan_conf())
        control = self.workdir / "lancontrol"
        control.write_text(self.lan_control())
        control.chmod(0o755)
        emu.write_text("mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n")
        argv = ["ipmi_sim", "-n", "-c", str(conf), "-f", str(emu), "-s", str(self.workdir / "state")]
        if self.netns:
            argv = [*exec_prefix(self.netns), *argv]
        self.process = ProcessGroup(argv, self.workdir / "ipmi_sim.log", cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while not _udp_bound(self.process.pid, self.port):
            if not self.process.running():
                raise LabError(f"ipmi_sim exited {self.process.popen.returncode}; see {self.process.log}")
            if time.monotonic() > deadline:
                raise LabError(f"ipmi_sim did not bind UDP {self.port} within {timeout} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def _udp_bound(pid: int, port: int) -> bool:
    """Whether a UDP socket on `port` exists in the network namespace of `pid` (/proc/PID/net/udp)."""
    try:
        text = Path(f"/proc/{pid}/net/udp").read_text()
    except OSError:
        return False
    want = f":{port:04X}"
    return any(line.split()[1].endswith(want) for line in text.splitlines()[1:] if len(line.split()) > 1)


def ipmitool_argv(bmc: IpmiSim, *args: str) -> list[str]:
    """ipmitool against `bmc` the way admins call it (lanplus, cipher suite 3: no -C stalls 10 s)."""
    return [
        "ipmitool",
        "-I",
        "lanplus",
        "-C",
        "3",
        "-H",
        "127.0.0.1",
        "-p",
        str(bmc.port),
        "-U",
        IPMI_USER,
        "-P",
        IPMI_PASSWORD,
        *args,
    ]


# ---------------------------------------------------------------------------------------------- Redfish


class SushyEmulator:
    """sushy-tools' Redfish emulator with `systems` fake systems on 127.0.0.1:`port`, basic auth.

    `workers` > 0 runs it under gunicorn (`workers` processes × `threads` threads); 0 runs its own Flask
    server (one process)."""

    def __init__(
        self,
        workdir: Path,
        *,
        systems: int = 1,
        port: int | None = None,
        workers: int = 0,
        threads: int = 4,
        power_state: str = "Off",
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.workers = workers
        self.threads = threads
        self.uuids = [str(uuidlib.uuid4()) for _ in range(systems)]
        self.power_state = power_state
        self.process: ProcessGroup | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def system_path(self, i: int) -> str:
        return f"/redfish/v1/Systems/{self.uuids[i]}"

    def url(self, i: int, user: str = REDFISH_USER) -> str:
        """The `perceus node set bmc` URL of system `i`."""
        return f"redfish+http://{user}@127.0.0.1:{self.port}{self.system_path(i)}"

    def start(self, timeout: float = 30.0) -> SushyEmulator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_htpasswd(self.workdir / "htpasswd")
        systems = [
            {"uuid": u, "name": f"node{i}", "power_state": self.power_state, "nics": [{"mac": _mac(i)}]}
            for i, u in enumerate(self.uuids)
        ]
        conf = self.workdir / "emulator.conf"
        conf.write_text(
            "SUSHY_EMULATOR_FAKE_DRIVER = True\n"
            f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}\n"
            f"SUSHY_EMULATOR_STATE_DIR = {str(self.workdir / 'state')!r}\n"
            f"SUSHY_EMULATOR_AUTH_FILE = {str(self.workdir / 'htpasswd')!r}\n"
            "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n"
            f"SUSHY_EMULATOR_LISTEN_PORT = {self.port}\n"
        )
        env = {**os.environ, "SUSHY_EMULATOR_CONFIG": str(conf)}
        if self.workers:
            argv = [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--no-control-socket",
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "sushy_tools.emulator.main:app",
            ]
        else:
            argv = [sys.executable, "-m", "sushy_tools.emulator.main", "--config", str(conf)]
        self.process = ProcessGroup(argv, self.workdir / "emulator.log", env=env, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/redfish/v1/", timeout=1):  # noqa: S310 - a URL on a fixed http(s) base
                    return self
            except (urllib.error.URLError, OSError):
                pass
            if not self.process.running():
                raise LabError(f"the Redfish emulator exited; see {self.process.log}")
            if time.monotonic() > deadline:
                raise LabError(f"the Redfish emulator did not answer within {timeout} s; see {self.process.log}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def write_htpasswd(path: Path) -> None:
    """The emulator's basic-auth file for REDFISH_USER (bcrypt only; rounds 4: 6 ms a request, not 129)."""
    import bcrypt

    hashed = bcrypt.hashpw(REDFISH_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"{REDFISH_USER}:{hashed}\n")


def curl_argv(emulator: SushyEmulator, i: int) -> list[str]:
    """curl of one system's resource the way an admin script reads PowerState."""
    return ["curl", "-s", "-f", "-u", f"{REDFISH_USER}:{REDFISH_PASSWORD}", f"{emulator.base}{emulator.system_path(i)}"]


def _mac(i: int) -> str:
    return f"52:54:01:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"


def shell_join(argv: Sequence[str]) -> str:
    return shlex.join(argv)


# ---------------------------------------------------------------------------------------------- a lab node


class FollowFile:
    """Lines of a file another process appends to (QEMU's chardev `logfile=`), as a blocking stream that
    SerialLog can read; each line is also written, timestamped, to the node's console log."""

    def __init__(self, path: Path, console: ConsoleLog | None) -> None:
        self.path = path
        self.console = console
        self.stopped = threading.Event()
        self._fh: IO[bytes] | None = None
        self._buf = b""

    def readline(self) -> bytes:
        while True:
            if b"\n" in self._buf:
                line, _, self._buf = self._buf.partition(b"\n")
                if self.console is not None:
                    self.console.feed(line + b"\n")
                return line + b"\n"
            if self._fh is None and self.path.exists():
                self._fh = self.path.open("rb")
            chunk = self._fh.read(65536) if self._fh is not None else b""
            if chunk:
                self._buf += chunk
                continue
            if self.stopped.wait(0.05):
                return b""

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class BmcNode:
    """A QEMU lab node behind an `ipmi_sim` BMC, as a server behind its BMC: off until powered on over IPMI.

    ipmi_sim runs in the lab's namespace and starts QEMU (its `startcmd`) on power-on; QEMU's
    `ipmi-bmc-extern` chardev connects back to ipmi_sim, so power off/reset/cycle act on the VM, and the
    node's serial port is a telnet server that ipmi_sim's SOL attaches to.  QEMU also appends everything the
    serial port says to a raw log, which `serial` follows (timestamped, searchable, like QemuNode.serial) and
    copies to `console_log` (`<state>/log/console/<node>.log`).  The BMC listens on 127.0.0.1:`lan_port`
    inside the namespace: run `perceus node power …` there (`lab.run`).
    """

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
        self.name = f"bmcnode{index}"
        self.tap = f"btap{index}"
        self.mac = node_mac(lab.subnet.index, 200 + index)
        base = 9100 + 10 * index
        self.lan_port, self.vm_port, self.serial_port = base + 1, base + 2, base + 3
        self.workdir = lab.workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.raw_console = self.workdir / "serial.raw"
        self.pidfile = self.workdir / "qemu.pid"
        argv = qemu_argv(
            name=self.name, mac=self.mac, tap=self.tap, boot=boot, nic=nic, memory_mb=memory_mb, extra=self._bmc_args()
        )
        self.argv = as_bmc_node(argv, "chardev:ser0")
        lab.netns.add_tap(self.tap, BRIDGE)
        self.bmc = IpmiSim(
            self.workdir / "bmc",
            port=self.lan_port,
            startcmd=shlex.join(self.argv),
            vm_port=self.vm_port,
            sol=f"telnet:127.0.0.1:{self.serial_port}",
            netns=lab.name,
            poweroff_wait=3,
            name=self.name,
            # What the node reads of its own BMC (TEST-NET-1: never routed, never contacted).
            lan_address=f"192.0.2.{10 + index}",
            lan_mac=f"02:00:00:00:19:{index:02x}",
        )
        self.started = time.monotonic()
        self._follow = FollowFile(self.raw_console, ConsoleLog(console_log) if console_log else None)
        self.serial = SerialLog(self.name, self._follow, self.started)  # type: ignore[arg-type]

    def _bmc_args(self) -> tuple[str, ...]:
        return (
            "-chardev",
            f"socket,id=ipmi0,host=127.0.0.1,port={self.vm_port},reconnect=10",
            "-device",
            "ipmi-bmc-extern,id=bmc0,chardev=ipmi0",
            "-device",
            "isa-ipmi-kcs,bmc=bmc0",
            "-chardev",
            f"socket,id=ser0,host=127.0.0.1,port={self.serial_port},server=on,wait=off,telnet=on,"
            f"logfile={self.raw_console},logappend=on",
            "-pidfile",
            str(self.pidfile),
        )

    def __enter__(self) -> BmcNode:
        self.bmc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"ipmi://{IPMI_USER}@127.0.0.1:{self.lan_port}"

    def qemu_pid(self) -> int | None:
        """QEMU's pid while the VM is on (its pidfile names a live process), else None."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def wait_for(self, pattern: str, timeout: float = 180.0, start: int = 0) -> SerialLine:
        return self.serial.wait_for(pattern, timeout, start)

    def close(self) -> None:
        self.bmc.stop()  # its process group: ipmi_sim and the QEMU it started
        pid = self.qemu_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        self._follow.stopped.set()
        self.serial.join()
        self._follow.close()


def as_bmc_node(argv: list[str], serial: str) -> list[str]:
    """A lab node's QEMU line made for a BMC: the serial port on `serial` instead of stdio (SOL and the log
    read it there), and guest resets reset the VM (`-no-reboot` would make IPMI reset an off)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "-no-reboot":
            i += 1
            continue
        if argv[i] == "-serial" and i + 1 < len(argv):
            out += ["-serial", serial]
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out
