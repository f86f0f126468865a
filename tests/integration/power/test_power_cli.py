"""`perceus node power|bmc` and `node set bmc…` through `main(argv)` against real ipmi_sim BMCs and sushy-tools'
Redfish emulator on 127.0.0.1, including every bad input the issue names (one line each, nothing hangs)."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from perceus.lab.bmc import IPMI_PASSWORD, IpmiSim, SushyEmulator
from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.security.audit import audit_path, read
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore

SECRET = IPMI_PASSWORD  # the emulators' password: must never appear in any output or the database


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float


def run(paths: Paths, *argv: str, stdin: str = "") -> Run:
    out, err = io.StringIO(), io.StringIO()
    ctx = CliContext(paths=paths, stdin=io.StringIO(stdin), stdout=out, stderr=err)
    t = time.monotonic()
    code = main(list(argv), context=ctx)
    return Run(code, out.getvalue(), err.getvalue(), time.monotonic() - t)


@pytest.fixture
def cluster(paths: Paths) -> Paths:
    with SQLiteStore(paths.database) as store:
        for i in range(8):
            store.add(NewNode(nodeid=f"52:54:00:00:01:{i:02x}", hostname=f"n{i:04d}", group="cluster"))
    return paths


def set_bmc(paths: Paths, url: str, nodes: str, password: str = SECRET) -> None:
    r = run(paths, "-y", "node", "set", "bmc", url, nodes)
    assert r.code == 0, r.err
    r = run(paths, "-y", "node", "set", "bmc-password", "-", nodes, stdin=password + "\n")
    assert r.code == 0, r.err


def rows(r: Run) -> dict[str, dict[str, object]]:
    return {o["node"]: o for o in json.loads(r.out)}


def test_bmc_records_are_kept_0600_outside_the_db_and_never_printed(
    cluster: Paths, ipmi_bmcs: list[IpmiSim], redfish: SushyEmulator
) -> None:
    set_bmc(cluster, ipmi_bmcs[0].url, "n0000")
    set_bmc(cluster, redfish.url(0), "n0001")
    bmc_file = cluster.state_dir / "bmc" / "bmc.json"
    assert stat.S_IMODE(bmc_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(bmc_file.parent.stat().st_mode) == 0o700
    assert SECRET in bmc_file.read_text()
    assert SECRET.encode() not in cluster.database.read_bytes()
    outputs = [
        run(cluster, "node", "bmc"),
        run(cluster, "--json", "node", "bmc"),
        run(cluster, "node", "show", "n0000"),
        run(cluster, "--json", "node", "power", "status", "n000[0-1]"),
        run(cluster, "node", "power", "status", "n000[0-1]"),
    ]
    for r in outputs:
        assert SECRET not in r.out + r.err
    listing = {row["hostname"]: row for row in json.loads(outputs[1].out)}
    assert listing["n0000"]["url"] == ipmi_bmcs[0].url and listing["n0001"]["url"]
    assert listing["n0000"]["password"] == "set" and listing["n0002"]["problem"] == "no BMC configured"
    assert SECRET not in audit_path(cluster).read_text()
    # A password on the command line is refused, so it never reaches shell history or `ps`.
    r = run(cluster, "-y", "node", "set", "bmc-password", SECRET, "n0000")
    assert r.code == 2 and "never on the command line" in r.err
    r = run(cluster, "-y", "node", "set", "bmc", f"ipmi://admin:{SECRET}@10.0.0.1", "n0000")
    assert r.code == 2 and SECRET not in r.err


def test_power_status_on_off_cycle_over_ipmi_and_redfish(
    cluster: Paths, ipmi_bmcs: list[IpmiSim], redfish: SushyEmulator
) -> None:
    set_bmc(cluster, ipmi_bmcs[0].url, "n0000")
    set_bmc(cluster, ipmi_bmcs[1].url, "n0001")
    set_bmc(cluster, redfish.url(1), "n0002")
    r = run(cluster, "-y", "node", "power", "off", "n000[0-2]")
    assert r.code == 0, r.out + r.err
    ipmi = ["n0000", "n0001"]
    deadline = time.monotonic() + 15
    while True:  # ipmi_sim turns off after poweroff_wait (1 s) with no VM attached; the fake Redfish 1–11 s
        status = rows(run(cluster, "--json", "node", "power", "status", "n000[0-2]"))
        if all(status[n]["state"] == "off" for n in status):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    r = run(cluster, "-y", "node", "power", "on", "n000[0-2]")
    assert r.code == 0, r.out
    lines = r.out.splitlines()
    assert [ln.split()[0] for ln in lines[2:5]] == ["n0000", "n0001", "n0002"]
    assert all(ln.split()[1] == "on" for ln in lines[2:5]), r.out
    status = rows(run(cluster, "--json", "node", "power", "status", *ipmi))
    assert [status[n]["state"] for n in ipmi] == ["on", "on"]
    r = run(cluster, "--json", "-y", "node", "power", "cycle", "n0000")
    assert rows(r)["n0000"]["state"] == "cycling" and r.code == 0
    # ipmi_sim with no VM on its VM codec refuses Chassis Control "reset" (0xcc): an exact one-line failure.
    # (A real reset of a running QEMU node is in vm-tests/test_power.py.)
    r = run(cluster, "--json", "-y", "node", "power", "reset", "n0001")
    assert r.code == 1 and rows(r)["n0001"]["kind"] == "unsupported", r.out
    assert "completion code 0xcc" in str(rows(r)["n0001"]["error"])
    audit = [rec for rec in read(audit_path(cluster)) if rec["event"].startswith("power_")]
    assert {(rec["event"], rec["hostname"]) for rec in audit} >= {("power_on", "n0002"), ("power_cycle", "n0000")}
    assert all(rec["ok"] for rec in audit if rec["event"] != "power_reset")


def test_bad_input_gives_one_line_per_node_and_nothing_waits_past_the_timeout(
    cluster: Paths,
    ipmi_bmcs: list[IpmiSim],
    redfish: SushyEmulator,
    silent_tcp: int,
    silent_udp: int,
    tmp_path: Path,
) -> None:
    set_bmc(cluster, ipmi_bmcs[0].url, "n0000")  # good
    set_bmc(cluster, redfish.url(2), "n0001")  # good
    set_bmc(cluster, ipmi_bmcs[1].url, "n0002", password="wrong")  # wrong credentials (IPMI)
    set_bmc(cluster, redfish.url(0), "n0003", password="wrong")  # wrong credentials (Redfish)
    set_bmc(cluster, f"ipmi://admin@127.0.0.1:{silent_udp}", "n0004")  # slow: never answers
    set_bmc(cluster, f"redfish+http://admin@127.0.0.1:{silent_tcp}/redfish/v1/Systems/x", "n0005")  # slow
    closed = SushyEmulator(tmp_path, systems=1).port  # nothing listens there: unreachable
    set_bmc(cluster, f"redfish+http://admin@127.0.0.1:{closed}/redfish/v1/Systems/x", "n0006")
    # n0007 has no BMC at all; "ghost" is no node.
    timeout = 3.0
    r = run(cluster, "--json", "node", "power", "status", "n*", "ghost", "--timeout", str(timeout))
    assert r.code == 1
    out = rows(r)
    assert len(out) == 9
    assert out["n0000"]["ok"] and out["n0001"]["ok"]
    assert out["n0000"]["seconds"] < 2.0 and out["n0001"]["seconds"] < 2.0  # not held up by the slow ones
    assert out["n0002"]["kind"] == "auth" and out["n0003"]["kind"] == "auth"
    assert out["n0004"]["kind"] == "timeout" and out["n0005"]["kind"] in ("timeout", "unreachable")
    assert out["n0006"]["kind"] == "unreachable"
    assert out["n0007"]["error"] == "no BMC configured" and out["ghost"]["error"] == "unknown node"
    assert r.seconds < timeout + 2.0, r.seconds
    # The table: a header, a rule, one line per node, a summary; each failure on its own single line.
    text = run(cluster, "node", "power", "status", "n*", "ghost", "--timeout", str(timeout))
    body = text.out.splitlines()[2:-1]
    assert len(body) == 9 and sum("FAILED" in ln for ln in body) == 7
    assert text.out.splitlines()[-1] == "status: 2 ok, 7 failed"


def test_group_defaults_and_address_ranges(cluster: Paths, ipmi_bmcs: list[IpmiSim], tmp_path: Path) -> None:
    secret = tmp_path / "bmc.pw"
    secret.write_text(SECRET + "\n")
    r = run(cluster, "group", "set", "bmc-password", f"@{secret}", "cluster")
    assert r.code == 0, r.err
    r = run(cluster, "group", "set", "bmc-user", "admin", "cluster")
    assert r.code == 0, r.err
    r = run(cluster, "-y", "node", "set", "bmc", "ipmi://127.0.0.[1-2]", "n000[0-1]")
    assert r.code == 0, r.err
    listing = {row["hostname"]: row for row in json.loads(run(cluster, "--json", "node", "bmc", "n000*").out)}
    assert listing["n0000"]["url"] == "ipmi://admin@127.0.0.1:623"
    assert listing["n0001"]["url"] == "ipmi://admin@127.0.0.2:623"
    assert listing["n0002"]["problem"] == "no BMC configured"  # the group gives user and password, no address
    # Own port per node, user and password from the group: the real BMC answers.
    for node, bmc in zip(("n0000", "n0001"), ipmi_bmcs, strict=True):
        assert run(cluster, "-y", "node", "set", "bmc", f"ipmi://127.0.0.1:{bmc.port}", node).code == 0
    out = rows(run(cluster, "--json", "node", "power", "status", "n000[0-1]"))
    assert out["n0000"]["ok"] and out["n0001"]["ok"], out
    r = run(cluster, "-y", "node", "set", "bmc", "ipmi://10.0.0.[1-3]", "n000[0-1]")
    assert r.code == 2 and "names 3 hosts for 2 nodes" in r.err


def test_the_installed_entry_point_exits_at_its_deadline_with_a_bmc_still_silent(
    cluster: Paths, silent_udp: int
) -> None:
    """Abandoned BMC threads must not keep `perceus` alive: the process ends right after the timeout."""
    set_bmc(cluster, f"ipmi://admin@127.0.0.1:{silent_udp}", "n0000")
    argv = [sys.executable, "-m", "perceus.master.cli.main", "--config-dir", str(cluster.config_dir),
            "--state-dir", str(cluster.state_dir), "node", "power", "status", "n0000", "--timeout", "1.5"]  # fmt: skip
    t = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    took = time.monotonic() - t
    assert proc.returncode == 1, proc.stderr
    assert "no answer within 1.5 s" in proc.stdout
    assert took < 6.0, took
