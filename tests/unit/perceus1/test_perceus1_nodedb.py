"""Table tests for the 1.x node database quirks (1.x ref §3.1): one row per quirk, pure conversion."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.master.perceus1 import bdb, mysqldump, nodedb

A, B = "00:1E:67:00:00:0A", "00:1E:67:00:00:0B"
DATA = Path(__file__).resolve().parents[2] / "data" / "perceus1"


def one(**fields: str) -> nodedb.NodeDB:
    tables = {"hostname": {A: "n0010"}, "enabled": {A: "1"}}
    for name, value in fields.items():
        tables.setdefault(name, {})[A] = value
    return nodedb.convert("btree", "test", tables)


@pytest.mark.parametrize(
    ("fields", "attr", "expected"),
    [
        ({"enabled": "1"}, "enabled", True),
        ({"enabled": "0"}, "enabled", False),
        ({"enabled": ""}, "enabled", False),  # "0" and "" read the same in 1.x
        ({"enabled": "yes"}, "enabled", True),  # Perl truth
        ({"ipaddr": "167772161"}, "ip", "10.0.0.1"),  # decimal uint32, network order
        ({"ipaddr": "3232235777"}, "ip", "192.168.1.1"),
        ({"ipaddr": ""}, "ip", ""),
        ({"debug": ""}, "debug", 0),
        ({"debug": "3"}, "debug", 3),
        ({"group": " compute "}, "group", "compute"),  # scriptrunner stripped whitespace too
        ({"desc": "rack 7, slot 3"}, "desc", "rack 7, slot 3"),
        ({"rack": "r7"}, "attrs", {"rack": "r7"}),  # an admin's extra table becomes an attribute
        ({"hwaddr": ""}, "attrs", {}),  # the unused 1.x table, empty: nothing to carry
        ({"rack": ""}, "attrs", {}),  # "" is "unset" in 1.x
    ],
)
def test_quirk(fields: dict[str, str], attr: str, expected: object) -> None:
    db = one(**fields)
    assert not db.errors
    assert getattr(db.nodes[0].new, attr) == expected


@pytest.mark.parametrize(
    ("fields", "warning"),
    [
        ({"ipaddr": "not-a-number"}, "is not a decimal IPv4"),
        ({"ipaddr": "99999999999"}, "is not a decimal IPv4"),
        ({"debug": "lots"}, "is not a number"),
        ({"lastcontact": "yesterday"}, "is not a time"),
    ],
)
def test_bad_values_are_warnings(fields: dict[str, str], warning: str) -> None:
    db = one(**fields)
    assert len(db.nodes) == 1 and warning in str(db.warnings[0])


def test_status_and_lastcontact_travel_as_a_contact() -> None:
    db = one(status="ready", lastcontact="1300000000")
    assert (db.nodes[0].status, db.nodes[0].lastcontact) == ("ready", 1300000000.0)


def test_missing_enabled_entry_is_disabled_with_a_warning() -> None:
    db = nodedb.convert("btree", "t", {"hostname": {A: "n0010"}})
    assert db.nodes[0].new.enabled is False and "no 'enabled' entry" in str(db.warnings[0])


@pytest.mark.parametrize(
    ("hostnames", "error"),
    [
        ({A: "n1", B: "n1"}, "duplicate hostname 'n1'"),
        ({A: "n1", "GG:HH:II:JJ:KK:LL": "n2"}, "not a hardware address"),  # 1.x accepted g-z
        ({A: "n1", B: ""}, "has no hostname"),
        ({A: "n1", B: "two words"}, "contains whitespace"),
        ({A: "n1", A.lower(): "n2"}, "same hardware address"),
    ],
)
def test_invalid_nodes_are_errors_and_the_first_is_kept(hostnames: dict[str, str], error: str) -> None:
    db = nodedb.convert("btree", "t", {"hostname": hostnames, "enabled": dict.fromkeys(hostnames, "1")})
    assert [n.new.hostname for n in db.nodes] == ["n1"]
    assert len(db.errors) == 1 and error in str(db.errors[0])


def test_lower_case_keys_are_normalised() -> None:
    db = nodedb.convert("btree", "t", {"hostname": {A.lower(): "n1"}, "enabled": {A.lower(): "1"}})
    assert db.nodes[0].new.nodeid == A


def test_db_dump_output_parses() -> None:
    text = (
        "VERSION=3\nformat=bytevalue\ntype=btree\ndb_pagesize=4096\nHEADER=END\n"
        " 30303a3145\n 6e30303030\n 4142\n \nDATA=END\n"
    )
    assert bdb.parse_dump(text, Path("x.bdb")) == {b"00:1E": b"n0000", b"AB": b""}
    with pytest.raises(bdb.BerkeleyDBError, match="no data section"):
        bdb.parse_dump("garbage", Path("x.bdb"))


def test_mysqldump_tables() -> None:
    dump = mysqldump.parse(DATA / "perceus-mysqldump.sql")
    assert sorted(dump.tables) == ["desc", "enabled", "hostname", "ipaddr", "status"]
    assert dump.tables["desc"]["00:1E:67:00:00:00"] == 'it\'s "quoted", (parens); semi'
    assert dump.tables["desc"]["00:1E:67:00:00:01"] == ""  # NULL reads as "" (1.x: value || "")
    assert dump.ignored == ["unrelated"]
    db = nodedb.convert("mysql", "dump", dump.tables)
    assert [(n.new.hostname, n.new.enabled, n.new.ip) for n in db.nodes] == [
        ("n0000", True, "10.0.0.1"),
        ("n0001", False, ""),
    ]


def test_mysqldump_without_perceus_tables(tmp_path: Path) -> None:
    path = tmp_path / "other.sql"
    path.write_text("CREATE TABLE `x` (`id` int);\nINSERT INTO `x` VALUES (1);\n")
    with pytest.raises(mysqldump.MysqlDumpError, match="no perceus_"):
        mysqldump.parse(path)
