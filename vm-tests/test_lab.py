"""The lab harness cleans up after itself and keeps traffic inside its namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from perceus.lab import Lab
from perceus.lab.netns import namespace_exists

pytestmark = pytest.mark.vm


def test_teardown_removes_namespace_and_processes(vm_host: None, tmp_path: Path) -> None:
    host_links = sorted(os.listdir("/sys/class/net"))
    with Lab(workdir=tmp_path) as lab:
        dnsmasq = lab.start_dnsmasq()
        sleeper = lab.spawn("sleeper", ["sleep", "600"])
        assert namespace_exists(lab.name)
        assert "10.77.0.1/24" in lab.run(["ip", "-br", "addr", "show", "br0"])
        lab.netns.add_tap("tap9", "br0")
        # Bridge and taps exist only inside the namespace: the host's links are untouched.
        assert sorted(os.listdir("/sys/class/net")) == host_links
        name = lab.name
        pids = [dnsmasq.pid, sleeper.pid]
    assert not namespace_exists(name)
    assert sorted(os.listdir("/sys/class/net")) == host_links
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie_free(pid)


def test_teardown_on_exception(vm_host: None, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), Lab(workdir=tmp_path) as lab:
        name = lab.name
        lab.spawn("sleeper", ["sleep", "600"])
        raise RuntimeError("boom")
    assert not namespace_exists(name)


def _is_zombie_free(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


LAB_SCRIPT = """
import sys, time
from pathlib import Path
from perceus.lab import Lab
from perceus.logsetup import configure
configure()  # logs to stderr; stdout carries only the line the test reads
with Lab(workdir=Path(sys.argv[1])) as lab:
    proc = lab.spawn("sleeper", ["sleep", "600"])
    print(lab.name, proc.pid, flush=True)
    time.sleep(600)
"""


def test_sigterm_tears_the_lab_down(vm_host: None, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(repo / d) for d in ("agent", "stage1", "master"))}
    with subprocess.Popen(
        [sys.executable, "-c", LAB_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    ) as owner:
        assert owner.stdout is not None
        name, pid = owner.stdout.readline().split()
        assert namespace_exists(name)
        owner.send_signal(signal.SIGTERM)
        owner.wait(30)
    assert not namespace_exists(name)
    assert _is_zombie_free(int(pid)) and not Path(f"/proc/{pid}/cmdline").exists()
