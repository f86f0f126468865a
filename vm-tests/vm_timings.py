"""Boot timings collected by vm tests and printed in pytest's terminal summary."""

from __future__ import annotations

# (what, unit, value) rows, in the order recorded.
TIMINGS: list[tuple[str, str, float]] = []


class BootTimes:
    """Collects named durations of one test for the end-of-run table."""

    def __init__(self, test: str, sink: list[tuple[str, str, float]]) -> None:
        self.test = test
        self.sink = sink

    def record(self, what: str, seconds: float) -> None:
        self.sink.append((f"{self.test}: {what}", "s", seconds))
        print(f"{self.test}: {what} {seconds:.1f} s")
