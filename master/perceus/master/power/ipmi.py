"""The pyghmi adapter (the only module importing pyghmi): IPMI 2.0 / RMCP+ power control and Serial-over-LAN.

Power goes through raw chassis commands (Get Chassis Status, Chassis Control) rather than pyghmi's
`get_power`/`set_power`: those first probe the BMC's OEM identity (extra round trips) and `set_power(wait=True)`
deadlocks on a pyghmi lock when called from many threads (lab-recipes.md).  The runner bounds every call by
its own deadline; pyghmi's sessions run on pyghmi's own I/O thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pyghmi import exceptions as pyghmi_exc
from pyghmi.ipmi import command as ipmi_command
from pyghmi.ipmi import console as ipmi_console

from perceus.master.power.errors import BmcError
from perceus.master.power.records import BmcRecord

# IPMI Chassis Control (netfn 0 / cmd 2) data byte per action.
CONTROL = {"off": 0, "on": 1, "cycle": 2, "reset": 3, "soft": 5}
# What each action leaves the node in, as reported to the admin.
RESULT = {"off": "off", "on": "on", "cycle": "cycling", "reset": "reset", "soft": "soft-off requested"}


def power(record: BmcRecord, action: str) -> str:
    """Run one power action (`status` included) on an IPMI BMC; returns the state or what was requested."""
    cmd = _open(record)
    try:
        state = _status(cmd, record)
        if action == "status":
            return state
        if action == "cycle" and state == "off":
            action = "on"  # Chassis Control "cycle" on a powered-off chassis is refused (0xd5): power it on
        elif action in ("off", "on") and state == action:
            return state
        _raw(cmd, record, 0, 2, [CONTROL[action]])
        return RESULT[action]
    finally:
        _close(cmd)


def _open(record: BmcRecord) -> Any:
    try:
        return ipmi_command.Command(
            bmc=record.host.strip("[]"),
            userid=record.user,
            password=record.password,
            port=record.port,
            keepalive=False,
        )
    except pyghmi_exc.IpmiException as exc:
        raise _error(record, exc) from None
    except OSError as exc:
        raise BmcError("unreachable", record.url, exc.strerror or str(exc)) from None


def _status(cmd: Any, record: BmcRecord) -> str:
    data = _raw(cmd, record, 0, 1, [])
    if not data:
        raise BmcError("bmc", record.url, "empty Get Chassis Status reply")
    return "on" if data[0] & 1 else "off"


def _raw(cmd: Any, record: BmcRecord, netfn: int, command: int, data: list[int]) -> bytes:
    try:
        reply = cmd.raw_command(netfn=netfn, command=command, data=data)
    except pyghmi_exc.IpmiException as exc:
        raise _error(record, exc) from None
    if "error" in reply:
        code = reply.get("code", 0)
        kind = "unsupported" if code in (0xC1, 0xCC, 0xD5, 0xD6) else "bmc"
        raise BmcError(kind, record.url, f"{reply['error']} (completion code 0x{code:02x})")
    return bytes(reply.get("data", b""))


def _close(cmd: Any) -> None:
    try:
        cmd.ipmi_session.logout()
    except Exception:  # a session that broke is gone anyway; logout is courtesy to the BMC's session table
        pass


def _error(record: BmcRecord, exc: Exception) -> BmcError:
    text = str(exc) if exc.args and exc.args[0] else ""
    low = text.lower()
    if "password" in low or "unauthorized" in low or "username" in low or "privilege" in low:
        return BmcError("auth", record.url, f"login refused: {text}")
    if not text or "timeout" in low or "timed out" in low or "no longer connected" in low:
        return BmcError("unreachable", record.url, "no answer from the BMC (RMCP+ session not established)")
    return BmcError("bmc", record.url, text)


class SolConsole:
    """An IPMI Serial-over-LAN session: `on_data` gets console bytes, `on_note` session events as text.

    Give SOL its own BMC user when a power `Command` to the same BMC may be open in this process:
    pyghmi shares one session per (bmc, user) and the two then hang (lab-recipes.md).
    """

    def __init__(self, record: BmcRecord, on_data: Callable[[bytes], None], on_note: Callable[[str], None]) -> None:
        self.record = record
        self.on_data = on_data
        self.on_note = on_note
        self.broken = threading.Event()
        try:
            self._console = ipmi_console.Console(
                bmc=record.host.strip("[]"),
                userid=record.user,
                password=record.password,
                iohandler=self._handle,
                port=record.port,
                force=True,
            )
        except pyghmi_exc.IpmiException as exc:
            raise _error(record, exc) from None

    def _handle(self, data: Any) -> None:
        if isinstance(data, bytes | bytearray):
            self.on_data(bytes(data))
        elif isinstance(data, str):
            self.on_data(data.encode("utf-8", "replace"))
        elif isinstance(data, dict):
            if "error" in data:
                self.broken.set()
                self.on_note(f"SOL error: {data['error']}")
            elif "info" in data:
                self.on_note(str(data["info"]))

    def send(self, data: bytes) -> None:
        self._console.send_data(data)

    def run(self, until: Callable[[], bool], step: float = 0.2) -> None:
        """Drive pyghmi's event loop until `until()` is true or the session breaks."""
        while not until() and not self.broken.is_set() and not self._console.broken:
            ipmi_console.Console.wait_for_rsp(step)
            time.sleep(0)  # let the input thread in

    def close(self) -> None:
        try:
            self._console.close()
        except Exception:  # closing a broken session raises inside pyghmi; nothing is left to release
            pass
