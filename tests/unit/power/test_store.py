"""The BMC file: 0600 in a 0700 directory, merged entries, passwords only from stdin or a file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from perceus.errors import UsageError
from perceus.master.config import Paths
from perceus.master.power.records import BmcRecord
from perceus.master.power.store import BmcStore, read_password
from perceus.master.store.models import Node


def test_saved_0600_and_reloaded(paths: Paths) -> None:
    store = BmcStore.for_paths(paths)
    with store.editing() as s:
        s.update("nodes", "aa", {"protocol": "ipmi", "host": "10.0.0.1", "password": "pw"})
        s.update("groups", "cluster", {"user": "admin"})
    path = paths.state_dir / "bmc" / "bmc.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = BmcStore.for_paths(paths)
    node = Node(nodeid="aa", hostname="n0", group="cluster")
    assert again.resolve(node) == BmcRecord("ipmi", "10.0.0.1", 623, "admin", "pw")
    shown = again.public(node)
    assert shown["password"] == "set" and "pw" not in json.dumps(shown)


def test_an_empty_value_removes_a_field_and_an_empty_entry(paths: Paths) -> None:
    store = BmcStore.for_paths(paths)
    with store.editing() as s:
        s.update("nodes", "aa", {"host": "h", "user": "u"})
        s.update("nodes", "aa", {"user": ""})
        assert s.nodes["aa"] == {"host": "h"}
        s.update("nodes", "aa", {"host": ""})
        assert "aa" not in s.nodes


def test_passwords_come_from_stdin_or_a_file_never_the_command_line(tmp_path: Path) -> None:
    assert read_password("-", lambda: "s3cret\n") == "s3cret"
    f = tmp_path / "pw"
    f.write_text("fromfile\nignored\n")
    assert read_password(f"@{f}", lambda: "") == "fromfile"
    with pytest.raises(UsageError, match="never on the command line"):
        read_password("s3cret", lambda: "")
    with pytest.raises(UsageError, match="empty"):
        read_password("-", lambda: "\n")
