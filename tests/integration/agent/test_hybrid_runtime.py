"""provisiond on a hybrid capsule whose NFS mount fails, against a real perceus-bus: one line on the console,
state `hybrid_failed` on the master (`perceus node status`) with the reason in the node's timeline, no `ready`.

The mount is the real `mount -t nfs4 …` of this host, on mount points under a temp root; nothing serves NFS
here (the successful mount is vm-tests/test_hybrid.py, in a QEMU node with the kernel's NFS client).
"""

from __future__ import annotations

import io
import signal
import subprocess
import time
from pathlib import Path

from perceus.lab.bus import RunningBus
from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.store.sqlite import SQLiteStore

from .conftest import agent_argv, agent_env, host_port, run_agent

MAC = "52:54:00:7A:22:01"


def test_a_failed_hybrid_mount_is_one_console_line_and_a_status_on_the_master(bus: RunningBus, tmp_path: Path) -> None:
    line = f"perceus.master={host_port(bus.endpoint)} perceus.node={MAC} perceus.nodename=n0022"
    assert run_agent("--no-hardware", "--once", "--run-dir", str(tmp_path / "run"), "--cmdline", line).returncode == 0
    root = tmp_path / "root"
    (root / "etc/perceus").mkdir(parents=True)
    (root / "usr/share").mkdir(parents=True)
    (root / "etc/perceus/hybrid.conf").write_text("export /perceus/hyb\nmount /usr/share\n")
    proc = subprocess.Popen(
        agent_argv("--run-dir", str(tmp_path / "run"), "--root", str(root), "--no-hardware",
                   "--cmdline", f"perceus.mode=runtime {line}"),
        env=agent_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with SQLiteStore(bus.paths.database) as store:
                node = store.get(MAC)
                events = store.events(MAC, node.boot_id) if node is not None else []
            failed = [e for e in events if e.phase == "runtime" and not e.ok]
            if node is not None and node.status == "hybrid_failed" and failed:
                break
            assert proc.poll() is None and time.monotonic() < deadline, (node, events)
            time.sleep(0.1)
        assert "hybrid mount of /usr/share from 127.0.0.1:/perceus/hyb/usr/share failed: " in failed[0].detail
        out = io.StringIO()
        assert main(["node", "status"], context=CliContext(paths=bus.paths, stdout=out, stderr=io.StringIO())) == 0
        assert "hybrid_failed" in out.getvalue()
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=15)
    errors = [ln for ln in stderr.splitlines() if ln.startswith("perceus-agent: error: ")]
    assert len(errors) == 1 and "hybrid mount of /usr/share from 127.0.0.1:/perceus/hyb/usr/share failed" in errors[0]
    assert "event=hybrid_mount_failed" in stdout and "event=node_welcomed" in stdout
