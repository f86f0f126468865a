"""Stage-one console: every line to every `console=` device, debug levels, rescue shell, fatal-error exit.

Debug levels as 1.x (FAQ): 0 quiet (warnings and errors only), 1 progress, 2 every command and message, 3 as 2
plus a shell on the console before provisioning.  Every log line also goes to a ring buffer so a fatal error
can show what led to it.  /dev/console is only the *last* `console=` device, so we open each one ourselves
(1.x printed to /dev/console only, so a serial console missed the output when tty0 came last).

Fatal errors are handed to /init (stage1/perceus/stage1/init) as exit codes: 3 = shell, then power off
(debug >= 1, 1.x's "press ENTER for a shell"); 1 = print and reboot after a 10 s countdown (1.x `reboot30`).
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import MutableMapping, Sequence
from typing import Any, TextIO

import structlog

EXIT_POWEROFF = 0
EXIT_REBOOT = 1
EXIT_SHELL = 3
RING_LINES = 40

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
           "critical": logging.CRITICAL}  # fmt: skip
_THRESHOLD = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


def device_paths(consoles: Sequence[str]) -> list[str]:
    """`console=ttyS0,115200 console=tty0` → ["/dev/ttyS0", "/dev/tty0"] (deduplicated, order kept)."""
    out: list[str] = []
    for spec in consoles:
        name = spec.split(",", 1)[0]
        if not name or name == "null":
            continue
        path = name if name.startswith("/dev/") else f"/dev/{name}"
        if path not in out:
            out.append(path)
    return out


class Console:
    """Fans lines out to the consoles; filters by debug level; remembers the last lines for fatal errors."""

    def __init__(self, streams: Sequence[TextIO], debug: int = 0, *, paths: Sequence[str] = ()) -> None:
        self.streams = list(streams)
        self.debug = debug
        self.paths = list(paths)
        self.ring: collections.deque[str] = collections.deque(maxlen=RING_LINES)

    @staticmethod
    def _open_devices(paths: Sequence[str]) -> list[TextIO]:
        streams: list[TextIO] = []
        for path in paths:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
            except OSError:
                continue
            streams.append(os.fdopen(fd, "w", buffering=1, errors="replace"))
        return streams

    @classmethod
    def open(cls, consoles: Sequence[str], debug: int = 0, *, fallback: TextIO | None = None) -> Console:
        """Open each console device (O_NOCTTY: never become its controlling process); stdout if none opens."""
        paths = device_paths(consoles) or ["/dev/console"]
        streams = cls._open_devices(paths)
        return cls(streams or [fallback or sys.stdout], debug, paths=paths if streams else ())

    def reopen(self) -> None:
        """Open the devices afresh: when an interactive shell that owned the tty exits, the kernel hangs the
        line up and every descriptor opened before becomes useless (writes fail with EIO)."""
        if not self.paths:
            return
        fresh = self._open_devices(self.paths)
        if fresh:
            self.close()
            self.streams = fresh

    @property
    def threshold(self) -> int:
        return _THRESHOLD.get(self.debug, logging.DEBUG)

    def emit(self, level: int, line: str) -> None:
        self.ring.append(line)
        if level >= self.threshold:
            self.write(line)

    def write(self, line: str) -> None:
        for stream in self.streams:
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass  # a console that went away must not take the agent with it

    def close(self) -> None:
        for stream in self.streams:
            if stream not in (sys.stdout, sys.stderr):
                stream.close()


class _Sink:
    """structlog logger: one method per level, all writing to the Console."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __getattr__(self, name: str) -> Any:
        level = _LEVELS.get(name, logging.INFO)

        def write(message: str) -> None:
            self.console.emit(level, message)

        return write


def _render(_: Any, method: str, event: MutableMapping[str, Any]) -> str:
    """`[  12.34] event key=value …` — uptime-stamped like the kernel's own lines on the same console."""
    stamp = event.pop("_uptime", time.monotonic())
    name = event.pop("event", "")
    level = method if method in ("warning", "error", "critical") else ""
    event.pop("level", None)
    parts = [f"[{stamp:8.2f}] perceus:", *([level.upper()] if level else []), str(name)]
    parts.extend(f"{k}={v!r}" if isinstance(v, str) and (" " in v or not v) else f"{k}={v}"
                 for k, v in event.items())  # fmt: skip
    return " ".join(parts)


def configure_logging(console: Console) -> None:
    """structlog → Console (all levels into the ring; the console shows what the debug level allows)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.format_exc_info,
            _render,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=lambda *_: _Sink(console),
        cache_logger_on_first_use=False,
    )


def shell_argv() -> list[str]:
    """busybox `cttyhack` gives the shell the real console as controlling tty (job control, ^C)."""
    if shutil.which("cttyhack") and shutil.which("setsid"):
        return ["setsid", "cttyhack", "sh", "-l"]
    return ["sh", "-l"]


def debug_shell(console: Console, why: str) -> int:
    """Run an interactive shell on the console and wait for it; returns its exit status."""
    console.write(f"perceus: {why}")
    console.write("perceus: BEGIN INTERACTIVE SHELL (exit to continue)")
    structlog.get_logger("perceus.agent").info("debug_shell_started", reason=why)
    try:
        status = subprocess.call(shell_argv())
    except OSError as exc:
        console.write(f"perceus: cannot start a shell: {exc.strerror}")
        return 127
    console.reopen()
    structlog.get_logger("perceus.agent").info("debug_shell_exited", status=status)
    return status


def fatal(console: Console, reason: str) -> int:
    """Show the reason and the last log lines on every console; return /init's exit code for what is next."""
    console.write("")
    console.write(f"perceus: FATAL: {reason}")
    console.write(f"perceus: the last {len(console.ring)} log lines:")
    for line in console.ring:
        console.write("  " + line)
    if console.debug >= 1:
        console.write("perceus: dropping to a shell (debug >= 1); the node powers off when it exits")
        return EXIT_SHELL
    console.write("perceus: rebooting (set perceus.debug=1 for a rescue shell instead)")
    return EXIT_REBOOT
