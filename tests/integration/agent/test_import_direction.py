"""The agent imports nothing from master/stage1/importers (house style), measured in a fresh interpreter,
and its resident memory after importing everything a node uses stays within the issue's 40 MB."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import agent_env

PROBE = """
import json, sys
import perceus.agent.__main__, perceus.agent.stage1, perceus.agent.runtime
import perceus.agent.network, perceus.agent.drivers, perceus.agent.kexec, perceus.agent.capsule_fetch
import pyroute2, pyudev, cffi, pyroute2.dhcp.client
forbidden = sorted(m for m in sys.modules
                   if m.split(".")[0] == "psycopg" or m.startswith(("perceus.master", "perceus.stage1",
                                                                     "perceus.importers")))
rss = 0
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        rss = int(line.split()[1]) * 1024
print(json.dumps({"forbidden": forbidden, "rss": rss}))
"""


def test_agent_imports_nothing_from_the_master_side() -> None:
    out = subprocess.run([sys.executable, "-W", "error", "-c", PROBE], env=agent_env(), capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    probe = json.loads(out.stdout)
    assert probe["forbidden"] == []
    print(f"\nagent RSS after all node imports: {probe['rss'] / 2**20:.1f} MiB")
    assert probe["rss"] < 40 * 2**20
