"""The audit log: `<state>/log/audit.log`, one JSON object per line per enrollment, approval, revocation, refusal.

Separate from the daemon's log on purpose: it is what an operator reads after an incident, it is written by
both the CLI (approve, revoke) and perceus-bus (enrollment, refusals), and each line is one O_APPEND write,
so concurrent writers never interleave.  Refusals are throttled per (event, source) so a flood cannot fill
the disk through the audit log.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from perceus.master.config import Paths

log = structlog.get_logger("perceus.security")

# O_NOFOLLOW: log/ belongs to perceus-bus's user after `--user`; root (the CLI) must never follow a symlink
# that user put in place of the audit log (issue 14).
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
REFUSAL_EVERY = 60.0  # seconds between two audit lines for the same refusal from the same source
MAX_THROTTLE = 100_000


def audit_path(paths: Paths) -> Path:
    return paths.logs / "audit.log"


class AuditLog:
    """Appends audit records; never raises (a full disk must not stop enrollment, it is logged instead)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self.written = 0

    @classmethod
    def for_paths(cls, paths: Paths) -> AuditLog:
        return cls(audit_path(paths))

    def record(self, event: str, **fields: Any) -> None:
        line = json.dumps({"t": round(self.clock(), 3), "event": event, **fields}, sort_keys=False, default=str)
        try:
            try:
                fd = os.open(self.path, _FLAGS, 0o640)
            except FileNotFoundError:  # first record in a fresh state dir (not a mkdir per event)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, _FLAGS, 0o640)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
            self.written += 1
        except OSError as exc:
            log.error("audit_write_failed", path=str(self.path), error=exc.strerror, audit_event=event)

    def refusal(self, event: str, source: str, **fields: Any) -> None:
        """Like `record`, at most once per REFUSAL_EVERY for the same (event, source)."""
        now = self.clock()
        key = (event, source)
        if now - self._last.get(key, -1e18) < REFUSAL_EVERY:
            return
        if len(self._last) >= MAX_THROTTLE:
            self._last.clear()
        self._last[key] = now
        self.record(event, source=source, **fields)

    def throttled(self) -> int:
        """Entries in the refusal throttle (bounded by MAX_THROTTLE)."""
        return len(self._last)


def read(path: Path) -> list[dict[str, Any]]:
    """Every record of an audit log (tests, `perceus info`); unreadable lines are skipped."""
    out: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out
