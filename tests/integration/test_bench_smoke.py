"""Every benchmark still runs: `python -m bench.<name> --smoke` completes and prints its last line.

Only that is checked — benchmarks are never timed tests.  Each smoke run takes seconds (tiny sizes, one round)
and runs through the installed package, as a user runs it (`python -m bench.<name>` from the checkout).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PERCEUS_PG_BIN", "/usr/lib/postgresql/15/bin"))

# module, extra arguments, the keys its last line must carry
BENCHES = [
    ("checkin", [], ["checkin_vs_echo", "storm_s", "storm_nodes", "storm_lost"]),
    ("legacy", [], ["legacy_conn_per_s", "processes_conn_per_s", "ideal_conn_per_s", "vs_ideal"]),
    ("curve", [], ["checkin_curve_ratio", "storm_curve_s", "storm_curve_lost", "storm_nodes"]),
    ("fleet", [], ["fleet_spread", "fleet_spread_nojitter", "fleet_p99_ms", "fleet_agents", "security"]),
    ("capsule", [], ["serve1_vs_nginx", "serve16_vs_nginx", "fetch_vs_curl", "capsule_mib", "security"]),
    ("multimaster", ["--masters", "1"], ["pg_1m", "failover_p50_s", "lost", "security"]),
    ("web", [], ["web_page_s", "web_api_p95_ms", "sse_clients", "checkin_ratio", "nodes"]),
    ("power", [], ["power_vs_ipmitool_loop", "power_vs_curl_loop", "power_1000_s"]),
    ("fleet_boot", [], ["fleet_nodes", "paced_last_s", "bound_s", "paced_vs_bound", "failures"]),
    ("swarm_sim", [], ["sim_last_s", "sim_p50_s", "sim_p99_s", "master_bytes_ratio"]),
    ("swarm", [], ["swarm_vs_star", "master_bytes_ratio", "sim10k_p50_s", "sim10k_p99_s", "sim_calibration_err"]),
]
NEEDS = {
    "capsule": ["nginx", "curl", "zstd", "tar", "openssl"],
    "legacy": ["perl"],
    "power": ["ipmi_sim", "ipmitool", "curl"],
    "fleet_boot": ["ip", "tc", "iptables", "dnsmasq"],
    "swarm": ["ip", "tc", "iptables", "dnsmasq"],
}


@pytest.mark.parametrize(("name", "extra", "keys"), BENCHES, ids=[b[0] for b in BENCHES])
def test_bench_smoke(name: str, extra: list[str], keys: list[str]) -> None:
    missing = [tool for tool in NEEDS.get(name, []) if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    if name in ("fleet_boot", "swarm") and os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    if name == "multimaster":
        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"needs the PostgreSQL server binaries in {PG_BIN}")
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            pytest.skip("needs runuser to start PostgreSQL as root")
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--smoke", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    found = dict(re.findall(r"(\w+)=(\S+)", last))
    assert set(keys) <= set(found), last
