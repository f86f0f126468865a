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
import time
import urllib.error
import urllib.request
import uuid as uuidlib
from collections.abc import Sequence
from pathlib import Path

from perceus.lab.netns import LabError, exec_prefix

IPMI_USER, IPMI_PASSWORD = "admin", "Qz7-bmc-secret"
SOL_USER = "sol"  # SOL gets its own user: pyghmi shares one session per (bmc, user) and the two hang
REDFISH_USER, REDFISH_PASSWORD = "admin", "Qz7-bmc-secret"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 right now (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Group:
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
    `sol` a `telnet:HOST:PORT` serial port SOL attaches to."""

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
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port(socket.SOCK_DGRAM)
        self.vm_port = vm_port or free_port()
        self.startcmd = startcmd
        self.sol = sol
        self.netns = netns
        self.poweroff_wait = poweroff_wait
        self.name = name
        self.process: _Group | None = None

    @property
    def url(self) -> str:
        return f"ipmi://{IPMI_USER}@127.0.0.1:{self.port}"

    def lan_conf(self) -> str:
        sol = f'  sol "{self.sol}" 115200\n' if self.sol else ""
        auths = "none md2 md5 straight"
        return (
            f'name "{self.name}"\n'
            "set_working_mc 0x20\n"
            "  startlan 1\n"
            f"    addr 127.0.0.1 {self.port}\n"
            "    priv_limit admin\n"
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
        emu.write_text("mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n")
        argv = ["ipmi_sim", "-n", "-c", str(conf), "-f", str(emu), "-s", str(self.workdir / "state")]
        if self.netns:
            argv = [*exec_prefix(self.netns), *argv]
        self.process = _Group(argv, self.workdir / "ipmi_sim.log", cwd=self.workdir)
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
        self.process: _Group | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def system_path(self, i: int) -> str:
        return f"/redfish/v1/Systems/{self.uuids[i]}"

    def url(self, i: int, user: str = REDFISH_USER) -> str:
        """The `perceus node set bmc` URL of system `i`."""
        return f"redfish+http://{user}@127.0.0.1:{self.port}{self.system_path(i)}"

    def start(self, timeout: float = 30.0) -> SushyEmulator:
        import bcrypt

        self.workdir.mkdir(parents=True, exist_ok=True)
        hashed = bcrypt.hashpw(REDFISH_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        (self.workdir / "htpasswd").write_text(f"{REDFISH_USER}:{hashed}\n")
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
        self.process = _Group(argv, self.workdir / "emulator.log", env=env, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/redfish/v1/", timeout=1):
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


def curl_argv(emulator: SushyEmulator, i: int) -> list[str]:
    """curl of one system's resource the way an admin script reads PowerState."""
    return ["curl", "-s", "-f", "-u", f"{REDFISH_USER}:{REDFISH_PASSWORD}", f"{emulator.base}{emulator.system_path(i)}"]


def _mac(i: int) -> str:
    return f"52:54:01:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"


def shell_join(argv: Sequence[str]) -> str:
    return shlex.join(argv)
