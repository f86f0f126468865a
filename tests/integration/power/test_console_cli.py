"""`perceus node console --capture` over real IPMI SOL (ipmi_sim attached to a TCP serial port) and
`perceus node log` merging the captured console with the agent's phase timeline — through the installed
entry point, in a subprocess (SOL and the power workers each want pyghmi to themselves)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from perceus.lab.bmc import IPMI_PASSWORD, SOL_USER, IpmiSim
from perceus.master.config import Paths
from perceus.master.power.consolelog import console_path, read
from perceus.master.store.models import NewNode, PhaseEvent
from perceus.master.store.sqlite import SQLiteStore


def cli(paths: Paths, *args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "perceus.master.cli.main",
        "--config-dir",
        str(paths.config_dir),
        "--state-dir",
        str(paths.state_dir),
        *args,
    ]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def sol_bmc(need_ipmi_sim: None, tmp_path: Path, serial_port: tuple[int, list[str]]) -> tuple[IpmiSim, list[str]]:
    port, sent = serial_port
    bmc = IpmiSim(tmp_path / "bmc", sol=f"telnet:127.0.0.1:{port}").start()
    yield bmc, sent  # type: ignore[misc]
    bmc.stop()


def test_sol_capture_is_printed_and_logged_then_shown_beside_the_timeline(
    paths: Paths, sol_bmc: tuple[IpmiSim, list[str]]
) -> None:
    bmc, sent = sol_bmc
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid="52:54:00:00:02:01", hostname="n0000"))
        now = time.time()
        store.record_events(
            [
                PhaseEvent("52:54:00:00:02:01", "boot1", "stage1", now - 5, done=False),
                PhaseEvent("52:54:00:00:02:01", "boot1", "stage1", now + 30),
            ]
        )
    # SOL gets its own BMC user (pyghmi shares one session per BMC and user).
    assert cli(paths, "-y", "node", "set", "bmc", f"ipmi://{SOL_USER}@127.0.0.1:{bmc.port}", "n0000").returncode == 0
    assert cli(paths, "-y", "node", "set", "bmc-password", "-", "n0000", stdin=IPMI_PASSWORD + "\n").returncode == 0

    r = cli(paths, "node", "console", "n0000", "--capture", "2")
    assert r.returncode == 0, r.stderr
    shown = [ln for ln in r.stdout.splitlines() if ln.startswith("serial says")]
    assert len(shown) >= 5 and all(ln.strip() in sent for ln in shown)
    logged = read(console_path(paths, "n0000"))
    texts = [ln.text for ln in logged]
    assert texts[0].startswith("-- perceus: SOL attached") and texts[-1] == "-- perceus: SOL detached --"
    assert sum(t.startswith("serial says") for t in texts) >= 5
    assert all(now - 60 < ln.t < time.time() + 1 for ln in logged)

    r = cli(paths, "node", "log", "n0000")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("n0000: boot boot1;")
    body = lines[1:]
    phase_rows = [i for i, ln in enumerate(body) if "* stage1" in ln]
    console_rows = [i for i, ln in enumerate(body) if "serial says" in ln]
    assert len(phase_rows) == 2 and console_rows
    # In time order: the phase start (5 s ago) before the console lines, its end (30 s ahead) after them.
    assert phase_rows[0] < console_rows[0] and console_rows[-1] < phase_rows[1]
    assert IPMI_PASSWORD not in r.stdout + r.stderr


def test_console_refuses_what_it_cannot_do(paths: Paths) -> None:
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid="52:54:00:00:02:02", hostname="n0001"))
    r = cli(paths, "node", "console", "n0001", "--capture", "1")
    assert r.returncode == 1 and r.stderr.strip() == "perceus: error: n0001: no BMC configured"
    r = cli(paths, "node", "console", "ghost", "--capture", "1")
    assert r.returncode == 1 and "node 'ghost' does not exist" in r.stderr
    assert cli(paths, "-y", "node", "set", "bmc", "redfish://a@127.0.0.1", "n0001").returncode == 0
    assert cli(paths, "-y", "node", "set", "bmc-password", "-", "n0001", stdin="x\n").returncode == 0
    r = cli(paths, "node", "console", "n0001", "--capture", "1")
    assert r.returncode == 1 and "consoles need IPMI SOL" in r.stderr
    assert cli(paths, "-y", "node", "set", "bmc", "ipmi://a@127.0.0.1:9", "n0001").returncode == 0
    r = cli(paths, "node", "console", "n0001")  # no terminal, no --capture
    assert r.returncode == 2 and "needs a terminal" in r.stderr
