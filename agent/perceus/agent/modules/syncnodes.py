"""syncnodes on the node: reboot when the capsule or enabled flag changed and nobody is logged in, else warn.

The assignment seen first in this boot is kept in /run (per boot, as a reboot applies the new one).  Who
is logged in comes from utmp USER_PROCESS records with a live pid (what `who` shows); 1.x looked for any
process with uid ≥ 500 instead, and its disabled check never fired (1.x ref §8.2).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from perceus.errors import ConfigError
from perceus.fsatomic import replace_file

log = structlog.get_logger("perceus.agent.modules")

_UTMP = struct.Struct("<hxxi32s4s32s256shhiii4i20x")  # glibc x86-64/aarch64 `struct utmp`, 384 bytes
USER_PROCESS = 7


def logged_in(utmp: Path, alive: Callable[[int], bool] | None = None) -> list[str]:
    """User names of live login sessions in `utmp`."""
    alive = alive or _alive
    try:
        data = utmp.read_bytes()
    except OSError:
        return []
    users = []
    for off in range(0, len(data) - _UTMP.size + 1, _UTMP.size):
        rec = _UTMP.unpack_from(data, off)
        if rec[0] == USER_PROCESS and alive(rec[1]):
            users.append(rec[4].split(b"\0", 1)[0].decode(errors="replace"))
    return users


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pack_utmp(user: str, pid: int, line: str = "pts/0") -> bytes:
    """One USER_PROCESS record (tests and the lab write utmp with it)."""
    return _UTMP.pack(USER_PROCESS, pid, line.encode(), b"", user.encode(), b"", 0, 0, 0, 0, 0, 0, 0, 0, 0)


@dataclass
class SyncNodes:
    root: Path
    reboot: Callable[[], None]
    wall: Callable[[str], None]
    utmp: Path | None = None

    @property
    def state_file(self) -> Path:
        return self.root / "run" / "perceus" / "syncnodes"

    def apply(self, data: Any) -> str:
        if not isinstance(data, dict) or not isinstance(data.get("vnfs"), str):
            raise ConfigError("syncnodes: expected {vnfs, enabled}")
        now = f"{data['vnfs']}\n{1 if data.get('enabled') else 0}\n"
        try:
            first = self.state_file.read_text()
        except FileNotFoundError:
            replace_file(self.state_file, now.encode())
            return "recorded"
        if first == now and data.get("enabled"):
            return "unchanged"
        users = logged_in(self.utmp or self.root / "run" / "utmp")
        why = "disabled" if not data.get("enabled") else f"capsule changed to {data['vnfs']!r}"
        if users:
            self.wall(f"Perceus: this node needs a reboot ({why}); users logged in: {', '.join(sorted(set(users)))}")
            log.warning("reboot_postponed", reason=why, users=",".join(sorted(set(users))))
            return "warned"
        log.warning("reboot_requested", reason=why)
        self.reboot()
        return "rebooting"
