"""A small progress renderer for long capsule operations: one self-overwriting line on a terminal's stderr.

Not a dependency (rich) because all we draw is one bar; when stderr is not a terminal nothing is drawn, so
logs and CLI table tests stay clean.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

WIDTH = 28


class ProgressLine:
    """`bar(label, total)` returns a callback taking byte counts; bars replace each other on one line."""

    def __init__(self, stream: TextIO, *, enabled: bool | None = None, clock: Callable[[], float] = time.monotonic):
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.clock = clock
        self._open = False

    def bar(self, label: str, total: int) -> Callable[[int], None]:
        self.finish()
        state = {"done": 0, "drawn": 0.0, "start": self.clock()}

        def update(n: int) -> None:
            state["done"] += n
            now = self.clock()
            if self.enabled and (now - state["drawn"] >= 0.1 or state["done"] >= total):
                state["drawn"] = now
                self._draw(label, int(state["done"]), total, now - state["start"])

        return update

    def _draw(self, label: str, done: int, total: int, elapsed: float) -> None:
        frac = min(1.0, done / total) if total > 0 else 1.0
        filled = int(frac * WIDTH)
        rate = done / elapsed / 1e6 if elapsed > 0 else 0.0
        self.stream.write(
            f"\r{label:<8} [{'#' * filled}{'.' * (WIDTH - filled)}] {frac * 100:5.1f}% "
            f"{done / 2**20:8.1f} MiB {rate:7.1f} MB/s"
        )
        self.stream.flush()
        self._open = True

    def finish(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
