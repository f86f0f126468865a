"""Node side passwd/group: merge keeps the node's system accounts and root, validation refuses and keeps the old
file, writes are atomic (no temp files left, mode kept)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from perceus.agent.modules import accounts
from perceus.agent.modules.apply import Applier
from perceus.errors import ConfigError
from perceus.protocol.messages import Action

LOCAL = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sshd:x:105:65534::/run/sshd:/usr/sbin/nologin
olduser:x:1500:1500::/home/olduser:/bin/sh
"""
ALICE = ["alice", "x", 1000, 1000, "Alice", "/home/alice", "/bin/bash"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(LOCAL)
    os.chmod(tmp_path / "etc" / "passwd", 0o644)
    return tmp_path


def test_merge_keeps_system_accounts_and_replaces_users(root: Path) -> None:
    master_root = ["root", "x", 0, 0, "master root", "/root", "/bin/zsh"]
    master_sshd = ["sshd", "x", 74, 74, "", "/var/empty", "/sbin/nologin"]
    out = accounts.apply(root, "passwd", [master_root, master_sshd, ALICE, ["pg", "x", 26, 26, "", "/", "/bin/sh"]])
    assert out.changed
    lines = (root / "etc" / "passwd").read_text().splitlines()
    assert lines == [*LOCAL.splitlines()[:3], "alice:x:1000:1000:Alice:/home/alice:/bin/bash",
                     "pg:x:26:26::/:/bin/sh"]  # fmt: skip
    assert out.skipped == 2  # the master's root and sshd never replace the node's
    assert oct((root / "etc" / "passwd").stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["passwd"]
    assert not accounts.apply(
        root, "passwd", [master_root, master_sshd, ALICE, ["pg", "x", 26, 26, "", "/", "/bin/sh"]]
    ).changed


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        ([["alice", "x", 1000, 1000, "", "/h"]], "7 fields"),
        ([["alice", "x", "1000", 1000, "", "/h", "/bin/sh"]], "numbers"),
        ([["al:ice", "x", 1000, 1000, "", "/h", "/bin/sh"]], "bad user name"),
        ([["alice", "x", 1000, 1000, "a\nroot::0:0", "/h", "/bin/sh"]], "contains"),
        ([["alice", "$6$hash", 1000, 1000, "", "/h", "/bin/sh"]], "password hashes"),
        ([ALICE, ["alice", "x", 1001, 1001, "", "/h", "/bin/sh"]], "duplicate name 'alice'"),
        ([ALICE, ["bob", "x", 1000, 1001, "", "/h", "/bin/sh"]], "duplicate id 1000"),
        ("alice:x:1000", "must be a list"),
    ],
)
def test_validation_refuses_and_keeps_the_old_file(root: Path, entries: object, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        accounts.apply(root, "passwd", entries)
    assert (root / "etc" / "passwd").read_text() == LOCAL


def test_group_merge_and_validation(root: Path) -> None:
    (root / "etc" / "group").write_text("root:x:0:\nsudo:x:27:admin\nold:x:1500:\n")
    accounts.apply(root, "group", [["sudo", "x", 27, ["alice"]], ["alice", "x", 1000, ["alice"]]])
    assert (root / "etc" / "group").read_text() == "root:x:0:\nsudo:x:27:admin\nalice:x:1000:alice\n"
    with pytest.raises(ConfigError, match="bad member"):
        accounts.apply(root, "group", [["g", "x", 2000, ["bad,member"]]])


def test_applier_logs_a_refused_file_and_goes_on(root: Path) -> None:
    applier = Applier(root=root)
    actions = [
        Action(module="passwdfile", kind="passwd", data={"entries": [ALICE, ALICE]}),
        Action(module="hostname", kind="set", data={"hostname": "n0001"}),
    ]
    with capture_logs() as logs:
        outcomes = applier.apply(actions)
    assert outcomes["passwdfile.passwd"].startswith("failed: passwd: duplicate name")
    assert outcomes["hostname.set"] == "set"
    assert (root / "etc" / "hostname").read_text() == "n0001\n"
    assert (root / "etc" / "passwd").read_text() == LOCAL
    (failed,) = [e for e in logs if e["event"] == "module_failed"]
    assert failed["module"] == "passwdfile" and failed["log_level"] == "error"
    assert applier.failures == 1
