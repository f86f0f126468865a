"""Console fan-out, debug-level filtering, the fatal-error screen and its exit codes."""

from __future__ import annotations

import io
import logging

import structlog

from perceus.agent import console
from perceus.agent.console import Console


def test_device_paths() -> None:
    assert console.device_paths(["tty0", "ttyS0,115200n8", "tty0", "null", "/dev/hvc0"]) == [
        "/dev/tty0", "/dev/ttyS0", "/dev/hvc0"]  # fmt: skip


def test_every_stream_gets_the_line_and_levels_filter() -> None:
    a, b = io.StringIO(), io.StringIO()
    con = Console([a, b], debug=0)
    con.emit(logging.INFO, "progress")
    con.emit(logging.WARNING, "warned")
    assert a.getvalue() == b.getvalue() == "warned\n"
    con.debug = 2
    con.emit(logging.DEBUG, "detail")
    assert a.getvalue().endswith("detail\n")
    assert list(con.ring) == ["progress", "warned", "detail"]


def test_structlog_goes_through_the_console() -> None:
    out = io.StringIO()
    con = Console([out], debug=1)
    console.configure_logging(con)
    try:
        structlog.get_logger("t").info("dhcp_lease", ip="10.0.0.5", iface="eth0")
        structlog.get_logger("t").debug("hidden_at_1")
    finally:
        structlog.reset_defaults()
    assert "perceus: dhcp_lease ip=10.0.0.5 iface=eth0" in out.getvalue()
    assert "hidden_at_1" not in out.getvalue() and "hidden_at_1" in con.ring[-1]


def test_fatal_shows_reason_and_history_then_shell_or_reboot() -> None:
    out = io.StringIO()
    con = Console([out], debug=0)
    con.emit(logging.INFO, "last thing before")
    assert console.fatal(con, "no network") == console.EXIT_REBOOT
    text = out.getvalue()
    assert "FATAL: no network" in text and "last thing before" in text and "rebooting" in text
    con.debug = 1
    assert console.fatal(con, "again") == console.EXIT_SHELL
