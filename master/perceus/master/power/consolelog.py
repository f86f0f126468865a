"""Console logs: `<state>/log/console/<node>.log`, one timestamped line per console line, rotated by size.

Written by SOL sessions (`perceus node console`) and by the lab's serial capture; read by `perceus node log`.
Each line is one O_APPEND write, so two writers never interleave within a line.  Terminal escape sequences
(SeaBIOS, iPXE and the kernel draw with them) are dropped so the log reads as text.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from perceus.master.config import Paths

MAX_BYTES = 4 * 1024 * 1024
KEEP = 3
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>c78]|[\x00-\x08\x0b-\x1f\x7f]")
_STAMP = "%Y-%m-%dT%H:%M:%S"
# Where a boot begins on a console: a firmware banner (when the firmware prints to serial at all — SeaBIOS and
# iPXE in the lab draw on VGA only) or `perceus node power on|cycle|reset`'s own note in the log.  A kexec into
# the runtime OS prints a second "Linux version" but neither, so it stays part of the same boot.
FIRMWARE = re.compile(r"SeaBIOS \(version|iPXE initialising devices|BdsDxe: |Booting from ROM|Press ESC for boot menu")
BOOT_START = re.compile(FIRMWARE.pattern + r"|^-- perceus: power (on|cycle|reset) ")


def console_path(paths: Paths, node: str) -> Path:
    return paths.logs / "console" / f"{node}.log"


@dataclass(frozen=True)
class ConsoleLine:
    t: float
    text: str


def stamp(t: float) -> str:
    dt = datetime.fromtimestamp(t, UTC)
    return f"{dt.strftime(_STAMP)}.{dt.microsecond // 1000:03d}Z"


def parse_stamp(text: str) -> float | None:
    try:
        return datetime.strptime(text[:19], _STAMP).replace(tzinfo=UTC).timestamp() + int(text[20:23]) / 1000
    except ValueError:
        return None


class ConsoleLog:
    """Appends console output as timestamped lines; at `max_bytes` the file moves to `.1` (`.2` … `.keep`)."""

    def __init__(
        self, path: Path, *, max_bytes: int = MAX_BYTES, keep: int = KEEP, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.clock = clock
        self._partial = ""
        self.lines = 0
        path.parent.mkdir(parents=True, exist_ok=True)

    def feed(self, data: bytes) -> None:
        """Console bytes as they arrive; complete lines are written, a partial one waits for its end."""
        text = self._partial + data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
        *complete, self._partial = text.split("\n")
        for line in complete:
            self.line(line)

    def line(self, text: str, t: float | None = None) -> None:
        clean = _ESCAPES.sub("", text).rstrip()
        if not clean:
            return
        self._write(f"{stamp(self.clock() if t is None else t)} {clean}\n".encode())

    def note(self, text: str) -> None:
        """A line from Perceus itself (session attached, power action), marked so readers can tell."""
        self.line(f"-- perceus: {text} --")

    def flush(self) -> None:
        if self._partial:
            self.line(self._partial)
            self._partial = ""

    def _write(self, data: bytes) -> None:
        try:
            if self.path.stat().st_size + len(data) > self.max_bytes:
                self._rotate()
        except FileNotFoundError:
            pass
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.lines += 1

    def _rotate(self) -> None:
        for i in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))


def read(path: Path, *, rotated: bool = True, keep: int = KEEP) -> list[ConsoleLine]:
    """Every line of a console log, oldest first (rotated files before the current one)."""
    files = [path.with_name(f"{path.name}.{i}") for i in range(keep, 0, -1)] if rotated else []
    out: list[ConsoleLine] = []
    for f in [*files, path]:
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        for raw in text.splitlines():
            t = parse_stamp(raw)
            if t is not None:
                out.append(ConsoleLine(t, raw[25:]))
    return out


def last_boot(lines: Sequence[ConsoleLine]) -> list[ConsoleLine]:
    """The lines from the last boot start on (a firmware banner or a power note; all lines when neither)."""
    for i in range(len(lines) - 1, -1, -1):
        if BOOT_START.search(lines[i].text):
            return list(lines[i:])
    return list(lines)
