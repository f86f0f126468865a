"""Bash completion through the real `perceus` entry point (argcomplete's protocol, as bash runs it), and
`perceusd --debug --foreground` starting the real bus."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from perceus.lab.bus import python_env
from perceus.master.bus.control import read_endpoints
from perceus.master.capsule.layout import Store
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore

_CLI = "import sys; from perceus.master.cli.main import main; sys.exit(main())"


@pytest.fixture
def cluster(paths: Paths) -> Paths:
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid="52:54:00:00:00:01", hostname="n0000", group="cluster"))
        store.add(NewNode(nodeid="52:54:00:00:00:02", hostname="n0001", group="gpu"))
    for name in ("debian12", "rocky9"):
        (Store(paths).vnfs / name / "rootfs").mkdir(parents=True)
    return paths


def complete(paths: Paths, line: str, tmp_path: Path) -> list[str]:
    """What bash would offer after `line` (argcomplete writes the words, vertical-tab separated)."""
    out = tmp_path / "completions"
    env = {**python_env(), "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "COMP_TYPE": "9", "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
           "PERCEUS_CONFIG_DIR": str(paths.config_dir), "PERCEUS_STATE_DIR": str(paths.state_dir)}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _CLI], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return sorted(w.strip() for w in out.read_text().split("\v") if w.strip())


CASES = [
    ("perceus no", ["node"]),
    ("perceus node sh", ["show"]),
    ("perceus node show ", ["--help", "n0000", "n0001"]),
    ("perceus node set ", ["--help", "boot", "debug", "desc", "enabled", "group", "hostname", "ip", "vnfs"]),
    ("perceus node set vnfs ", ["--help", "debian12", "rocky9"]),
    ("perceus node set vnfs rocky9 n", ["n0000", "n0001"]),
    ("perceus node set group ", ["--help", "cluster", "gpu"]),
    ("perceus vnfs delete ", ["--force", "--help", "debian12", "rocky9"]),
    ("perceus vnfs rebuild d", ["debian12"]),
    ("perceus group show ", ["--help", "cluster", "gpu"]),
    ("perceus vnfs import --ty", ["--type"]),
    ("perceus --js", ["--json"]),
]


@pytest.mark.parametrize(("line", "words"), CASES)
def test_completion(cluster: Paths, tmp_path: Path, line: str, words: list[str]) -> None:
    assert complete(cluster, line, tmp_path) == words


def test_perceusd_debug_foreground_runs_the_bus(paths: Paths) -> None:
    conf = paths.perceus_conf.read_text()
    paths.perceus_conf.write_text(conf + "\nbus address = 127.0.0.1\nbus port = 0\nevent port = 0\n")
    argv = [sys.executable, "-c", "import sys; from perceus.master.perceusd import main; sys.exit(main())",
            "--debug", "--foreground", "--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir),
            "--security", "none"]  # fmt: skip
    log = paths.logs / "perceusd.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=python_env())
    try:
        deadline = time.monotonic() + 20
        while read_endpoints(paths.run) is None:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert proc.poll() is None  # --foreground: still our child, not daemonised
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert "event=bus_listening" in text, text
    assert "event=bus_stopped" in text, text  # TERM: a clean stop, as 1.x's perceusd
