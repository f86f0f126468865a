"""The one name rule (perceus.protocol.names) and the places that use it: CLI attribute values, capsule names,
the agent's hostname and accounts writers."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.agent.modules import accounts, system
from perceus.errors import ConfigError, PerceusError
from perceus.master.capsule.layout import check_name
from perceus.master.nodeattrs import InvalidValue, parse_value
from perceus.protocol import names

BAD_COMMON = ["", ".", "..", "a\n", "a\r", "a\x00b", "a/b", "a b", "ä", "x" * 65]


@pytest.mark.parametrize("kind", ["group", "vnfs"])
@pytest.mark.parametrize("value", [*BAD_COMMON, ".hidden"])
def test_bad_group_and_vnfs_names(kind: str, value: str) -> None:
    assert not names.valid(kind, value)
    with pytest.raises(names.InvalidName, match=f"invalid {kind} name"):
        names.check(kind, value)


@pytest.mark.parametrize("value", ["compute", "debian-12.3", "a_b", "x" * 64, "_x"])
def test_good_group_and_vnfs_names(value: str) -> None:
    assert names.valid("group", value) and names.valid("vnfs", value)


@pytest.mark.parametrize("value", ["..", ".", "ready\n", "re.ady", "a-b", "x" * 33, "", "init٣"])
def test_bad_states(value: str) -> None:
    assert not names.valid("state", value)


@pytest.mark.parametrize("value", ["init", "ready", "halt", "single_user", "s2"])
def test_good_states(value: str) -> None:
    assert names.valid("state", value)


@pytest.mark.parametrize("value", ["n0001\n", "-n", ".n", "n" * 64, "n 1", ""])
def test_bad_node_names(value: str) -> None:
    assert not names.valid("node", value)


def test_cli_attribute_values_use_the_rule() -> None:
    for key in ("group", "vnfs"):
        for value in (".", "..", "gpu\n"):
            with pytest.raises(InvalidValue):
                parse_value(key, value)
        assert parse_value(key, "gpu-1") == "gpu-1"
    with pytest.raises(InvalidValue):
        parse_value("hostname", "n0001\n")


def test_capsule_names_refuse_a_trailing_newline() -> None:
    with pytest.raises(PerceusError):
        check_name("debian12\n")
    assert check_name("debian12") == "debian12"


def test_agent_hostname_refuses_a_trailing_newline(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        system.set_hostname(tmp_path, "n0001\nevil", live=False)
    with pytest.raises(ConfigError):
        system.set_hostname(tmp_path, "n0001\n", live=False)


@pytest.mark.parametrize(
    "fields",
    [
        ["alice\n", "x", 2001, 2001, "", "/home/alice", "/bin/sh"],
        ["alice", "x", 2001, 2001, "", "/home/alice", "/bin/sh\n"],
        ["alice", "x", 2001, 2001, "Alice\nroot::0:0::/:/bin/sh", "/home/alice", "/bin/sh"],
        ["alice", "x", 2001, 2001, "a\rb", "/home/alice", "/bin/sh"],
        ["..", "x", 2001, 2001, "", "/", "/bin/sh"],
    ],
)
def test_accounts_writer_refuses_embedded_newlines(tmp_path: Path, fields: list[object]) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    with pytest.raises(ConfigError):
        accounts.apply(tmp_path, "passwd", [fields])
    assert (tmp_path / "etc" / "passwd").read_text() == "root:x:0:0:root:/root:/bin/sh\n"
