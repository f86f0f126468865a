"""The agent imports nothing from master/stage1/importers (house style), checked in a fresh interpreter, and
its resident memory stays within the issue's 40 MB: the long-lived stage-one process (everything up to kexec)
and the forked driver/network child (which alone imports pyudev and pyroute2)."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import agent_env

PROBE = """
import json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
import perceus.agent.__main__, perceus.agent.stage1, perceus.agent.runtime
import perceus.agent.network, perceus.agent.drivers, perceus.agent.isolate
lazy = sorted(m for m in ("pyroute2", "pyudev", "cffi") if m in sys.modules)
if sys.argv[1] == "parent":  # the stage-one process just before kexec
    import perceus.agent.capsule_fetch, perceus.agent.kexec
    perceus.agent.kexec._libc()
else:  # the forked child: what the parent had at fork time, plus the driver and network libraries
    import pyroute2, pyroute2.dhcp.client, pyudev, cffi
forbidden = sorted(m for m in sys.modules
                   if m.split(".")[0] == "psycopg" or m.startswith(("perceus.master", "perceus.stage1",
                                                                     "perceus.importers")))
print(json.dumps({"forbidden": forbidden, "lazy": lazy, "rss": rss()}))
"""


def _probe(which: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-W", "error", "-c", PROBE, which], env=agent_env(), capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_agent_imports_nothing_from_the_master_side_and_stays_small() -> None:
    parent, child = _probe("parent"), _probe("child")
    assert parent["forbidden"] == child["forbidden"] == []
    assert parent["lazy"] == []  # the heavy adapters import their library only when used
    mib = {k: int(str(v["rss"])) / 2**20 for k, v in (("parent", parent), ("child", child))}
    print(f"\nagent RSS: stage-one process {mib['parent']:.1f} MiB, driver/network child {mib['child']:.1f} MiB")
    assert mib["parent"] < 40
    assert mib["child"] < 40
