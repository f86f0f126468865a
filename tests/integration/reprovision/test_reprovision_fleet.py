"""`perceus node reprovision` through the real CLI against a real perceus-bus (Curve on, dnsmasq, HTTP boot)
and emulated nodes (perceus.lab.fleet: each the real agent in its own namespaces): batches advance only when
the previous one is ready on the new capsule; a hung node is power-cycled through a real ipmi_sim BMC and
comes back; a hung node without a BMC fails its batch and stops the run.

The emulator's one substitution stands: a process cannot kexec, so each node downloads and verifies the
stage-one files the bus serves (here random bytes, as the fleet's capsule kernel is) and
then starts stage one again in the same process with the key it handed over (perceus.agent.emulated).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perceus.lab.bmc import IPMI_PASSWORD, IpmiSim
from perceus.lab.bus import perceus_cli
from perceus.lab.fleet import FleetOptions, FleetRun

from ..fleet.conftest import NEEDS

pytestmark = [*NEEDS, pytest.mark.skipif(shutil.which("ipmi_sim") is None, reason="needs OpenIPMI's ipmi_sim")]

NODES = 4


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetRun]:
    """4 emulated nodes ready on capsule `fleet`, a second capsule `fleet2`, stage-one files on the bus."""
    workdir = tmp_path_factory.mktemp("reprov") / "run"
    conf = "capsule swarm = no\nbus session probe = 5\nbus kexec window = 15\nstage1 append = perceus.debug=1\n"
    options = FleetOptions(nodes=NODES, capsule_mb=2.0, timeout=120, index=9, master_conf=conf)
    with FleetRun(workdir, options, tag=f"prv{os.getpid() % 10000}") as run:
        tree = workdir.parent / "fleet2"
        shutil.copytree(workdir.parent / "fleet-cache" / f"capsule-{2 << 20}", tree)
        (tree / "etc/hostname").write_text("fleet2\n")
        imported = perceus_cli(run.paths, "-q", "vnfs", "import", str(tree), "--name", "fleet2", timeout=300)
        assert imported.returncode == 0, imported.stderr
        # Stand-ins for the stage-one image (an emulated node verifies them but never boots them), sized to fit
        # an emulated node's RAM: the fleet gives each node a tmpfs of 2.5 capsules + 64 MiB.
        (run.paths.tftp / "vmlinuz").write_bytes(os.urandom(4 << 20))
        (run.paths.tftp / "stage1.cpio.zst").write_bytes(os.urandom(12 << 20))
        run.storm()
        assert all(t.ready for t in run.tracks), [f"{t.name}: {t.step}" for t in run.tracks]
        yield run


def _cli(run: FleetRun, *args: str) -> tuple[int, list[dict[str, object]], str]:
    proc = perceus_cli(run.paths, "-y", "--json", "node", "reprovision", *args, timeout=400)
    rows = json.loads(proc.stdout) if proc.stdout.strip() else []
    return proc.returncode, rows, proc.stderr


def _by_host(run: FleetRun) -> dict[str, int]:
    return {t.hostname: i for i, t in enumerate(run.tracks)}


def _console(run: FleetRun, i: int) -> str:
    return run.tracks[i].console.read_text(errors="replace")


def _show(run: FleetRun, host: str) -> dict[str, object]:
    proc = perceus_cli(run.paths, "--json", "node", "show", host)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout)[0])


def test_batches_move_every_node_to_the_new_capsule_over_kexec(fleet: FleetRun) -> None:
    code, rows, progress = _cli(fleet, f"n000[0-{NODES - 1}]", "--vnfs", "fleet2", "--batch", "50%",
                                "--ack-timeout", "20", "--timeout", "120")  # fmt: skip
    assert code == 0, progress
    assert [(r["batch"], r["result"], r["how"], r["vnfs"]) for r in rows] == [
        (1, "ready", "kexec", "fleet2"), (1, "ready", "kexec", "fleet2"),
        (2, "ready", "kexec", "fleet2"), (2, "ready", "kexec", "fleet2"),
    ]  # fmt: skip
    # The health gate: batch 2 was sent only after both nodes of batch 1 were ready again.
    lines = progress.splitlines()
    sent2 = next(i for i, line in enumerate(lines) if "batch 2/2" in line and "reprovision sent" in line)
    for r in rows[:2]:
        assert any(f"{r['hostname']}: ready on fleet2" in line for line in lines[:sent2]), progress
    for r in rows[2:]:
        assert not any(f"{r['hostname']}: ready" in line for line in lines[:sent2]), progress
    index = _by_host(fleet)
    for r in rows:
        console = _console(fleet, index[str(r["hostname"])])
        assert "reprovision_loaded" in console and "target=stage1" in console  # verified, then "kexec"
        assert "session_reentered" in console  # stage one talked with the key provisiond handed over
        node = _show(fleet, str(r["hostname"]))
        assert node["vnfs"] == "fleet2" and node["status"] == "ready" and node["phase"] == "runtime"
    audit = (fleet.paths.logs / "audit.log").read_text()
    assert audit.count('"session_reentered"') == NODES and '"session_replaced"' not in audit
    assert audit.count('"event": "reprovision"') == NODES


class PowerHarness:
    """The emulated node behind an ipmi_sim BMC: power-on runs the BMC's startcmd, which notes it in a file;
    this thread then does what power does to a machine — the node stops (SIGKILL) and boots again."""

    def __init__(self, run: FleetRun, index: int, workdir: Path) -> None:
        self.run, self.index = run, index
        self.note = workdir / "power-on"
        self.bmc = IpmiSim(workdir / "bmc", startcmd=f"sh -c 'echo on >> {self.note}; exec sleep 100000'")
        self.cycles = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> PowerHarness:
        self.bmc.start()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.bmc.stop()

    def _watch(self) -> None:
        seen = 0
        while not self._stop.wait(0.2):
            lines = self.note.read_text().count("on") if self.note.exists() else 0
            if lines > seen:
                seen = lines
                self.cycles += 1
                self.run.kill(self.index)
                time.sleep(0.5)
                self.run.power_on(self.index)


def test_a_hung_node_is_power_cycled_through_its_bmc_and_comes_back(fleet: FleetRun, tmp_path: Path) -> None:
    index = _by_host(fleet)
    host = "n0003"
    i = index[host]
    with PowerHarness(fleet, i, tmp_path) as harness:
        pw = tmp_path / "bmc.pw"
        pw.write_text(IPMI_PASSWORD + "\n")
        pw.chmod(0o600)
        assert perceus_cli(fleet.paths, "-y", "node", "set", "bmc", harness.bmc.url, host).returncode == 0
        assert perceus_cli(fleet.paths, "-y", "node", "set", "bmc-password", f"@{pw}", host).returncode == 0
        os.killpg(fleet.tracks[i].pid, signal.SIGSTOP)  # hung: its provisiond will never answer
        code, rows, progress = _cli(fleet, host, "--vnfs", "fleet", "--ack-timeout", "5", "--timeout", "120")
        assert harness.cycles == 1
    assert code == 0, progress
    assert [(r["result"], r["how"], r["vnfs"]) for r in rows] == [("ready", "power", "fleet")]
    assert f"{host}: no acknowledgement within 5 s: power-cycled through {harness.bmc.url}" in progress
    assert "agent_starting" in _console(fleet, i) and _show(fleet, host)["vnfs"] == "fleet"
    audit = (fleet.paths.logs / "audit.log").read_text()
    assert '"power_cycle"' in audit and "reprovision: no acknowledgement within 5 s" in audit


def test_a_failing_batch_stops_the_run_and_leaves_the_rest_untouched(fleet: FleetRun) -> None:
    index = _by_host(fleet)
    hung = fleet.tracks[index["n0001"]]
    os.killpg(hung.pid, signal.SIGSTOP)
    try:
        code, rows, progress = _cli(fleet, f"n000[0-{NODES - 1}]", "--vnfs", "fleet", "--batch", "2",
                                    "--ack-timeout", "15", "--timeout", "60")  # fmt: skip
    finally:
        os.killpg(hung.pid, signal.SIGCONT)
    assert code == 1, progress
    got = {str(r["hostname"]): (r["batch"], r["result"], r["detail"]) for r in rows}
    assert got["n0000"][:2] == (1, "ready"), progress
    assert got["n0001"] == (1, "failed", "no acknowledgement within 15 s; no BMC configured: not power-cycled")
    assert got["n0002"] == got["n0003"] == (2, "untouched", "not started: an earlier batch failed")
    assert "batch 1/2: 1 failed: stopping" in progress and "batch 2/2" not in progress
