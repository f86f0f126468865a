"""SerialLog: timestamped lines from a stream, waiting for markers (fed through an os.pipe)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perceus.lab.serial import SerialLog, SerialTimeout


@pytest.fixture
def pipe() -> Iterator[tuple[int, SerialLog]]:
    r, w = os.pipe()
    log = SerialLog("node0", os.fdopen(r, "rb"), time.monotonic())
    try:
        yield w, log
    finally:
        try:
            os.close(w)
        except OSError:
            pass
        log.join()


def test_wait_for_marker(pipe: tuple[int, SerialLog]) -> None:
    w, log = pipe
    os.write(w, b"[    1.0] kernel\r\nperceus-init: up (uptime 2.8s)\r\npython-ok\n")
    line = log.wait_for(r"^python-ok$", timeout=5)
    assert line.text == "python-ok" and line.index == 2 and line.t >= 0
    assert log.find("perceus-init: up") is not None
    assert log.find("python-ok", start=3) is None


def test_timeout_reports_the_tail(pipe: tuple[int, SerialLog]) -> None:
    w, log = pipe
    os.write(w, b"Kernel panic - not syncing\n")
    log.wait_for("panic", timeout=5)
    with pytest.raises(SerialTimeout, match=r"python-ok.*Kernel panic"):
        log.wait_for("python-ok", timeout=0.2)


def test_closed_stream_ends_the_wait_early(pipe: tuple[int, SerialLog]) -> None:
    w, log = pipe
    os.close(w)
    started = time.monotonic()
    with pytest.raises(SerialTimeout, match="QEMU exited") as info:
        log.wait_for("never", timeout=30)
    assert info.value.ended
    assert time.monotonic() - started < 5
    assert log.closed


def test_log_file(tmp_path: Path) -> None:
    r, w = os.pipe()
    log = SerialLog("n", os.fdopen(r, "rb"), time.monotonic(), tmp_path / "n.serial.log")
    os.write(w, b"hello\n")
    os.close(w)
    log.join()
    assert (tmp_path / "n.serial.log").read_text().split()[-1] == "hello"
