"""The node side of hybrid capsules: hybrid.conf parsing, the mount command line, what counts as mounted, and
the one-line reason when a mount fails.  The real NFS mount runs in vm-tests/test_hybrid.py (this host's
kernel has no NFS client); here `mount` is replaced by a recorder, which is all a unit test can run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from perceus.agent import hybrid_mount
from perceus.agent.hybrid_mount import Mounter, Plan

CONF = """# Perceus hybrid capsule demo
export /perceus/demo
mount /usr/share
mount /opt/data
"""


def test_parse_reads_the_master_written_file() -> None:
    assert hybrid_mount.parse(CONF) == Plan("/perceus/demo", ("/usr/share", "/opt/data"))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("mount /usr/share\n", "no 'export' line"),
        ("export /perceus/x\nmount usr/share\n", "not an absolute path"),
        ("export /perceus/x\nmount /usr/../etc\n", "not an absolute path"),
        ("export /perceus/x\nmount /a,b\n", "not an absolute path"),
        ("export /perceus/x\nbind /usr/share\n", "expected 'export PATH' or 'mount PATH'"),
    ],
)
def test_parse_refuses_what_the_master_never_writes(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        hybrid_mount.parse(text)


def test_read_plan_is_none_for_a_capsule_that_is_not_hybrid(tmp_path: Path) -> None:
    assert hybrid_mount.read_plan(tmp_path) is None
    (tmp_path / "etc/perceus").mkdir(parents=True)
    (tmp_path / "etc/perceus/hybrid.conf").write_text(CONF)
    assert hybrid_mount.read_plan(tmp_path) == Plan("/perceus/demo", ("/usr/share", "/opt/data"))


def test_mount_argv_passes_addr_for_busybox() -> None:
    assert hybrid_mount.mount_argv("10.0.0.1", "/perceus/demo", "/usr/share", "/usr/share") == [
        "mount", "-t", "nfs4", "-o", "ro,vers=4.2,addr=10.0.0.1", "10.0.0.1:/perceus/demo/usr/share", "/usr/share"
    ]  # fmt: skip
    assert hybrid_mount.mount_argv("fd00::1", "/perceus/d", "/x", "/x")[5] == "[fd00::1]:/perceus/d/x"


def test_mounted_nfs_reads_proc_mounts(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "rootfs / rootfs rw 0 0\n10.0.0.1:/perceus/demo/usr/share /usr/share nfs4 ro,vers=4.2 0 0\n"
        "proc /proc proc rw 0 0\n"
    )
    assert hybrid_mount.mounted_nfs(mounts) == {"/usr/share"}


class Recorder:
    """Stands in for busybox `mount` (no NFS client on this host): records argv, answers from a script."""

    def __init__(self, answers: list[tuple[int, str]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        rc, err = self.answers.pop(0) if self.answers else (0, "")
        return subprocess.CompletedProcess(argv, rc, "", err)


def test_mounter_mounts_every_directory_under_its_root(tmp_path: Path) -> None:
    run = Recorder([])
    m = Mounter(hybrid_mount.parse(CONF), "10.0.0.1", root=tmp_path, run=run, mounts=tmp_path / "none")
    assert m.mount_all() is None
    assert [c[-1] for c in run.calls] == [str(tmp_path / "usr/share"), str(tmp_path / "opt/data")]


def test_mounter_skips_what_is_mounted_and_retries_then_gives_one_line(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text("10.0.0.1:/perceus/demo/usr/share /usr/share nfs4 ro 0 0\n")
    failure = "mount: mounting 10.0.0.1:/perceus/demo/opt/data on /opt/data failed: Connection refused"
    run = Recorder([(255, failure)] * 3)
    slept: list[float] = []
    m = Mounter(hybrid_mount.parse(CONF), "10.0.0.1", run=run, mounts=mounts, sleep=slept.append)
    m._load_modules = lambda: None  # type: ignore[method-assign]  # the real root: no module loading in a unit test
    problem = m.mount_all()
    assert problem == f"hybrid mount of /opt/data from 10.0.0.1:/perceus/demo/opt/data failed: {failure}"
    assert [c[-1] for c in run.calls] == ["/opt/data"] * 3 and slept == [hybrid_mount.RETRY_DELAY] * 2
