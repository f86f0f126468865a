"""Helpers for module integration tests: agent subprocesses with a log reader, enrolled nodes, CLI runs."""

from __future__ import annotations

import io
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perceus.lab.bus import RunningBus
from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore

from ..agent.conftest import agent_argv, agent_env, host_port


class Agent:
    """A `python -m perceus.agent` subprocess whose stdout lines are collected by a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(agent_argv(*args), env=agent_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, ""):
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def count(self, needle: str) -> int:
        return sum(needle in line for line in list(self.lines))

    def wait_for(self, needle: str, *, count: int = 1, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.count(needle) < count:
            assert time.monotonic() < deadline, f"no {needle!r} x{count}:\n{self.text()}"
            assert self.proc.poll() is None, f"agent exited {self.proc.returncode}:\n{self.text()}"
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        code = self.proc.wait()
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    started: list[Agent] = []
    yield started
    for agent in started:
        agent.stop()


def add_nodes(paths: Paths, *nodes: NewNode) -> None:
    with SQLiteStore(paths.database) as store:
        for node in nodes:
            store.add(node)


def cli(paths: Paths, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), context=CliContext(paths=paths, stdout=out, stderr=err, stdin=io.StringIO()))
    return code, out.getvalue(), err.getvalue()


def set_interval(paths: Paths, seconds: int) -> None:
    conf = paths.perceus_conf
    conf.write_text(conf.read_text().replace("checkin interval = 300", f"checkin interval = {seconds}"))


def runtime_line(bus: RunningBus, mac: str) -> str:
    return (f"perceus.mode=runtime perceus.master={host_port(bus.endpoint)} perceus.events={host_port(bus.events)} "
            f"perceus.node={mac}")  # fmt: skip


def read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
