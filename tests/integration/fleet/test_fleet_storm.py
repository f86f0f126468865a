"""`perceus lab fleet` through the CLI: 24 emulated nodes boot from a real master, paced, every one ready."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from perceus.lab.bus import python_env

from .conftest import NEEDS

pytestmark = NEEDS


def test_24_nodes_boot_through_perceus_lab_fleet(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; from perceus.master.cli.main import main; sys.exit(main())",
            "lab", "fleet", "--nodes", "24", "--capsule-mb", "2", "--uplink", "60mbit", "--node-rate", "20mbit",
            "--timeout", "120", "--star", "--workdir", str(tmp_path), "--json"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, env=python_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout[: proc.stdout.rindex("}") + 1])
    assert data["nodes"] == 24 and data["failures"] == 0 and data["pacing"] is True
    assert "kexec is emulated" in data["kexec"]
    rows = data["timeline"]
    assert len(rows) == 24 and all(r["ready"] is not None and r["failed"] is None for r in rows)
    assert sorted(r["hostname"] for r in rows) == [f"n{i:04d}" for i in range(24)]  # enrolled by the master
    assert len({r["ip"] for r in rows}) == 24  # each its own DHCP lease from the bus's dnsmasq
    # 60/20 Mbit/s gives 4 slots: most of the storm waited its turn instead of pulling at once.
    assert sum(1 for r in rows if r["queue_wait"] and r["queue_wait"] > 0) >= 12
    for r in rows:  # the order of a boot, per node
        assert r["dhcp"] <= r["enrolled"] <= r["capsule_start"] <= r["kexec"] <= r["ready"]
    consoles = sorted((tmp_path / "run/nodes").glob("*/console.log"))
    assert len(consoles) == 24
    text = consoles[0].read_text()
    assert "capsule_signature_ok" in text and "kexec_emulated" in text and "mode=runtime" in text
    # PSS is the fleet's own; host_used_mb is a host-wide delta that other jobs on a shared machine move
    # either way (it went negative beside a QEMU run), so only its presence is checked.
    assert data["node_pss_mb"] > 0 and isinstance(data["host_used_mb"], float)
    assert os.path.exists(tmp_path / "run/var/perceus.db")
