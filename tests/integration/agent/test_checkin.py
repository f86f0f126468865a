"""The stage-one flow (without drivers, network and kexec) and provisiond against a real perceus-bus."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from perceus.lab.bus import RunningBus
from perceus.master.bus.control import poke
from perceus.master.store.models import Node, PhaseEvent
from perceus.master.store.sqlite import SQLiteStore

from .conftest import agent_argv, agent_env, host_port, run_agent

MAC = "52:54:00:7A:00:01"


def _committed(bus: RunningBus, ready: Callable[[Node, list[PhaseEvent]], bool]) -> tuple[Node, list[PhaseEvent]]:
    """The node and its timeline once the bus has group-committed what the test waits for."""
    deadline = time.monotonic() + 10
    while True:
        with SQLiteStore(bus.paths.database) as store:
            node = store.get(MAC)
            events = store.events(MAC, node.boot_id) if node is not None else []
        if node is not None and ready(node, events):
            return node, events
        assert time.monotonic() < deadline, (node, events)
        time.sleep(0.05)


def _enroll(bus: RunningBus, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    line = f"perceus.master={host_port(bus.endpoint)} perceus.node={MAC} perceus.nodename=n0042 perceus.debug=2"
    return run_agent("--no-hardware", "--once", "--run-dir", str(tmp_path / "run"), "--cmdline", line, *extra)


def test_stage1_hello_enrolls_the_node_and_reports_its_phases(bus: RunningBus, tmp_path: Path) -> None:
    started = time.time()
    result = _enroll(bus, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "master_says_wait reason=no_capsule" in result.stdout
    node, events = _committed(bus, lambda node, events: node.status == "init" and len(events) >= 3)
    assert node.hostname == "n0042"
    assert [(e.phase, e.done) for e in events] == [("boot", False), ("boot", True), ("enroll", False)]
    assert all(started - 1 <= e.t <= time.time() for e in events)


def test_bad_cmdline_is_one_line_and_nonzero(tmp_path: Path) -> None:
    result = run_agent("--no-hardware", "--cmdline", "perceus.debug=9")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "perceus-agent: error: kernel command line: perceus.debug='9': out of range 0..3"]  # fmt: skip


def test_runtime_checks_in_on_sync_and_says_goodbye(bus: RunningBus, tmp_path: Path) -> None:
    assert _enroll(bus, tmp_path).returncode == 0
    line = (f"perceus.mode=runtime perceus.master={host_port(bus.endpoint)} "
            f"perceus.events={host_port(bus.events)} perceus.node={MAC}")  # fmt: skip
    proc = subprocess.Popen(agent_argv("--run-dir", str(tmp_path / "run"), "--cmdline", line),
                            env=agent_env(RUNLEVEL="0"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()

    def wait_for(event: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not any(f"event={event}" in line for line in lines):
            assert time.monotonic() < deadline, f"no {event}: {''.join(lines)}"
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.05)

    try:
        wait_for("node_welcomed")
        time.sleep(0.3)  # the SUB connection needs a moment before a PUB reaches it (slow joiner)
        assert poke(bus.paths.control_socket, "sync", nodes=[MAC]) == {"ok": True, "nodes": 1}
        wait_for("checked_in")
        _committed(bus, lambda node, _: node.status == "ready")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    proc.stdout.close()  # type: ignore[union-attr]
    assert any("event=last_state_sent state=halt" in line for line in lines), "".join(lines)
    _committed(bus, lambda node, _: node.status == "halt")
