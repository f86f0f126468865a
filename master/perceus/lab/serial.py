"""A node's serial console: lines read from QEMU's stdout, timestamped, searchable while they arrive."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from perceus.lab.netns import LabError


@dataclass(frozen=True)
class SerialLine:
    """One console line and when it arrived, in seconds since the node was started."""

    t: float
    text: str
    index: int


class SerialTimeout(LabError):
    """A marker did not appear on a node's console in time; the message carries the last lines."""

    def __init__(self, node: str, pattern: str, timeout: float, tail: list[SerialLine], *, ended: bool = False) -> None:
        lines = " | ".join(f"{line.t:.1f}s {line.text}" for line in tail)
        why = "before the console closed (QEMU exited)" if ended else f"within {timeout:.0f} s"
        super().__init__(f"{node}: no {pattern!r} on the serial console {why}; last lines: {lines}")
        self.ended = ended
        self.node = node
        self.pattern = pattern
        self.timeout = timeout
        self.tail = tail


class SerialLog:
    """Collects lines from ``stream`` in a thread; ``wait_for`` blocks until a line matches."""

    def __init__(self, node: str, stream: IO[bytes], started: float, log_path: Path | None = None) -> None:
        self.node = node
        self.started = started
        self.lines: list[SerialLine] = []
        self._cond = threading.Condition()
        self._closed = False
        self._log = log_path.open("w", encoding="utf-8", buffering=1) if log_path else None
        self._thread = threading.Thread(target=self._read, args=(stream,), name=f"serial-{node}", daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        try:
            for raw in iter(stream.readline, b""):
                text = raw.decode("utf-8", "replace").rstrip("\r\n").replace("\r", "")
                t = time.monotonic() - self.started
                with self._cond:
                    self.lines.append(SerialLine(t, text, len(self.lines)))
                    self._cond.notify_all()
                if self._log is not None:
                    self._log.write(f"{t:8.3f} {text}\n")
        finally:
            stream.close()
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            if self._log is not None:
                self._log.close()

    @property
    def closed(self) -> bool:
        """True once QEMU closed its end (the node is gone)."""
        with self._cond:
            return self._closed

    def find(self, pattern: str | re.Pattern[str], start: int = 0) -> SerialLine | None:
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        with self._cond:
            return next((line for line in self.lines[start:] if regex.search(line.text)), None)

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float, start: int = 0) -> SerialLine:
        """Wait for a line matching the regex ``pattern`` (searched from line ``start``)."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = start
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line.text):
                        return line
                seen = max(seen, len(self.lines))
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    tail = self.lines[-12:]
                    raise SerialTimeout(self.node, regex.pattern, timeout, tail, ended=self._closed)
                self._cond.wait(remaining)

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)
