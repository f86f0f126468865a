"""The network-file-system check behind SQLiteStore's warning: statfs(2) read for real on this machine's mounts.

(No network file system can be mounted here, no NFS client in the kernel, so the warning itself is only seen
not firing on local disks; the magic table is linux/magic.h's.)
"""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from perceus.master.store.netfs import NETWORK_MAGIC, fs_magic, network_fs
from perceus.master.store.sqlite import SQLiteStore

PROC_SUPER_MAGIC = 0x9FA0
SYSFS_MAGIC = 0x62656572


def test_statfs_reads_the_real_magic() -> None:
    assert fs_magic(Path("/proc")) == PROC_SUPER_MAGIC
    assert fs_magic(Path("/sys")) == SYSFS_MAGIC
    assert fs_magic(Path("/nonexistent/x")) is None
    assert NETWORK_MAGIC[0x6969] == "nfs" and PROC_SUPER_MAGIC not in NETWORK_MAGIC


def test_local_disk_is_not_a_network_fs_and_the_store_opens_quietly(tmp_path: Path) -> None:
    assert network_fs(tmp_path) == "" and network_fs(tmp_path / "not" / "yet") == ""  # nearest existing parent
    with capture_logs() as logs, SQLiteStore(tmp_path / "db" / "perceus.db"):
        pass
    assert not [e for e in logs if e["event"] == "database_on_network_filesystem"]
