"""passwdfile/groupfile: the original's concatenation (all, vnfs, group, node) for every scope combination."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from perceus.errors import ConfigError
from perceus.master.modules import accounts
from perceus.master.store.models import Node

SCOPES = ("all", "vnfs", "group", "node")
LINE = {
    "all": "root:x:0:0:root:/root:/bin/bash",
    "vnfs": "vuser:x:2001:2001::/home/vuser:/bin/sh",
    "group": "guser:x:2002:2002::/home/guser:/bin/sh",
    "node": "nuser:x:2003:2003::/home/nuser:/bin/sh",
}


def _write(base: Path, scope: str) -> None:
    path = {"all": base / "all", "vnfs": base / "vnfs" / "deb12", "group": base / "group" / "gpu",
            "node": base / "node" / "n0001"}[scope]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {scope}\n{LINE[scope]}\n\n")


@pytest.mark.parametrize(
    "present", [combo for k in range(len(SCOPES) + 1) for combo in itertools.combinations(SCOPES, k)]
)
@pytest.mark.parametrize("has_group_vnfs", [True, False])
def test_concatenation_order_for_every_combination(
    tmp_path: Path, present: tuple[str, ...], has_group_vnfs: bool
) -> None:
    for scope in present:
        _write(tmp_path, scope)
    node = Node(nodeid="52:54:00:00:00:01", hostname="n0001", group="gpu" if has_group_vnfs else "",
                vnfs="deb12" if has_group_vnfs else "")  # fmt: skip
    entries = accounts.passwd_from_files(accounts.merge_parts(tmp_path, node))
    reachable = [s for s in SCOPES if s in present and (has_group_vnfs or s in ("all", "node"))]
    assert [e[0] for e in entries] == [LINE[s].split(":")[0] for s in reachable]


def test_other_nodes_files_are_not_merged(tmp_path: Path) -> None:
    _write(tmp_path, "node")
    other = Node(nodeid="52:54:00:00:00:02", hostname="n0002", group="gpu", vnfs="deb12")
    assert accounts.passwd_from_files(accounts.merge_parts(tmp_path, other)) == ()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a:x:1000:1000::/h\n", "7 fields"),
        ("a:x:one:1000::/h:/bin/sh\n", "numbers"),
        ("bad name:x:1:1::/h:/bin/sh\n", "bad user name"),
        ("a:x:1000:1000::/h:/bin/sh\na:x:1001:1001::/h:/bin/sh\n", "duplicate user name 'a'"),
        ("a:x:1000:1000::/h:/bin/sh\nb:x:1000:1001::/h:/bin/sh\n", "duplicate user id 1000"),
    ],
)
def test_bad_passwd_files_are_refused_with_their_place(tmp_path: Path, text: str, error: str) -> None:
    (tmp_path / "all").write_text(text)
    with pytest.raises(ConfigError, match=error):
        accounts.passwd_from_files([tmp_path / "all"])


def test_group_files_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "all").write_text("wheel:x:10:alice,bob\nusers:x:100:\n")
    assert accounts.group_from_files([tmp_path / "all"]) == (
        ("wheel", "x", 10, ("alice", "bob")),
        ("users", "x", 100, ()),
    )
    (tmp_path / "all").write_text("wheel:x:10:\nwheel:x:11:\n")
    with pytest.raises(ConfigError, match="duplicate group name"):
        accounts.group_from_files([tmp_path / "all"])


def test_nss_view_has_no_shadow_and_is_cached() -> None:
    calls = []

    def getpwall() -> list:  # type: ignore[type-arg]
        import pwd

        calls.append(1)
        return [pwd.struct_passwd(("alice", "$6$secret", 1000, 1000, "Alice: A", "/home/alice", "/bin/bash"))]

    now = [0.0]
    nss = accounts.NssAccounts(getpwall=getpwall, getgrall=list, clock=lambda: now[0], watch=())
    users, groups = nss.get()
    assert users == (("alice", "x", 1000, 1000, "Alice  A", "/home/alice", "/bin/bash"),)
    assert groups == ()
    nss.get()
    assert len(calls) == 1
    now[0] = accounts.NSS_TTL + 1
    nss.get()
    assert len(calls) == 2
