"""`perceus node exec` (xcpu) against a real perceus-bus and two stage-one agents that stay without a capsule."""

from __future__ import annotations

import json
import time
from pathlib import Path

from perceus.lab.bus import RunningBus
from perceus.master.store.models import NewNode

from ..agent.conftest import host_port
from .conftest import Agent, add_nodes, cli

MACS = ("52:54:00:7C:00:01", "52:54:00:7C:00:02", "52:54:00:7C:00:03")


def _stage1(bus: RunningBus, tmp_path: Path, mac: str) -> Agent:
    line = (f"perceus.master={host_port(bus.endpoint)} perceus.events={host_port(bus.events)} perceus.node={mac} "
            "perceus.debug=1")  # fmt: skip
    return Agent("--no-hardware", "--run-dir", str(tmp_path / mac.replace(":", "")), "--cmdline", line)


def test_node_exec_runs_on_xcpu_nodes_and_reports_each(bus: RunningBus, tmp_path: Path, agents: list[Agent]) -> None:
    add_nodes(bus.paths, *(NewNode(nodeid=m, hostname=f"n000{i + 1}") for i, m in enumerate(MACS)))
    assert cli(bus.paths, "module", "activate", "xcpu")[0] == 0
    agents.extend(_stage1(bus, tmp_path, mac) for mac in MACS[:2])  # n0003 is never started
    for agent in agents:
        agent.wait_for("xcpu_serving")
    time.sleep(0.5)  # slow joiner: let the SUB connections settle before the PUB

    code, out, err = cli(bus.paths, "node", "exec", "n000[1-2]", "--", "sh", "-c", "echo out-$0; echo err >&2", "x")
    assert (code, err) == (0, ""), out + err
    assert out == "n0001: exit 0\n   out-x\n   err\nn0002: exit 0\n   out-x\n   err\n"

    code, out, _ = cli(bus.paths, "--json", "node", "exec", "n0001", "n0002", "--", "sh", "-c", "exit 3")
    assert code == 1 and [r["status"] for r in json.loads(out)] == [3, 3]

    code, out, _ = cli(bus.paths, "node", "exec", "--timeout", "2", "n000[1-3]", "--", "true")
    assert code == 1
    assert out == "n0001: exit 0\nn0002: exit 0\nn0003: timed out\n   no answer (timed out)\n"

    code, out, _ = cli(bus.paths, "node", "exec", "n0001", "--", "/no/such/program")
    assert code == 1 and "n0001: exit 127" in out
    assert all("exec_done" in agent.text() for agent in agents)


def test_node_exec_usage_errors(bus: RunningBus) -> None:
    add_nodes(bus.paths, NewNode(nodeid=MACS[0], hostname="n0001"))
    assert cli(bus.paths, "node", "exec", "n0001", "true")[0] == 2
    assert cli(bus.paths, "node", "exec", "nope", "--", "true")[2].startswith("perceus: error: node 'nope'")
