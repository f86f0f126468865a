"""CLI table tests: argv → exit code, stdout, stderr, and what reached the store."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from perceus.errors import PerceusError, UsageError
from perceus.importers import cli
from perceus.master.store.models import ImportOutcome, NewNode, Node

DATA = Path(__file__).parents[2] / "data" / "importers"


class FakeStore:
    """Records import_nodes calls; knows one existing node."""

    def __init__(self) -> None:
        self.imported: list[list[NewNode]] = []
        self.existing = [Node(nodeid="00:25:90:00:0A:02", hostname="n0000")]

    def list_nodes(self) -> list[Node]:
        return self.existing

    def import_nodes(self, nodes: Sequence[NewNode], *, update: bool) -> ImportOutcome:
        self.imported.append(list(nodes))
        return ImportOutcome(added=len(nodes), updated=0, unchanged=0)


def _run(argv: list[str], store: FakeStore) -> int:
    parser = argparse.ArgumentParser(prog="perceus")
    cli.add_parser(parser.add_subparsers(dest="noun"))
    ns = parser.parse_args(["import", *argv])

    @contextmanager
    def open_store() -> Iterator[FakeStore]:
        yield store

    return cli.run(ns, open_store)


def test_dry_run_json_prints_plan_and_stores_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    store = FakeStore()
    code = _run(["isc-dhcpd-conf", str(DATA / "dhcpd/dhcpd.conf"), "--dry-run", "--json", "--group", "c"], store)
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == 1  # the duplicate MAC in hosts.d/rack1.conf
    assert store.imported == []
    assert set(doc) == {"nodes", "errors", "skipped"}
    assert doc["nodes"][0] == {
        "mac": "00:00:00:00:00:00",
        "hostname": "n0000",
        "ip": "10.0.1.0",
        "group": "c",
        "vnfs": "",
    }
    assert doc["errors"][0]["lines"] == [5, 8] and "duplicate MAC" in doc["errors"][0]["reason"]
    assert "perceus: import: " in err and "rack1.conf:5-8: duplicate MAC" in err


def test_strict_error_stores_nothing() -> None:
    store = FakeStore()
    with pytest.raises(PerceusError, match="nothing imported"):
        _run(["isc-dhcpd-conf", str(DATA / "dhcpd/dhcpd.conf")], store)
    assert store.imported == []


def test_skip_invalid_stores_the_valid_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    store = FakeStore()
    assert _run(["isc-dhcpd-conf", str(DATA / "dhcpd/dhcpd.conf"), "--skip-invalid"], store) == 0
    assert [n.hostname for n in store.imported[0]] == ["n0000", "n0001", "n0002", "ib0001", "n0100"]
    assert "imported 5 node(s)" in capsys.readouterr().out


def test_nameless_source_uses_template_and_skips_stored_names(capsys: pytest.CaptureFixture[str]) -> None:
    store = FakeStore()
    argv = ["switch-mac-table", str(DATA / "switch/cisco-ios.txt"), "--name-template", "n####", "--vlan", "100"]
    assert _run(argv, store) == 0
    assert [(n.nodeid, n.hostname) for n in store.imported[0]] == [
        ("00:25:90:00:0A:01", "n0001"),
        ("00:25:90:00:0A:02", "n0002"),
        ("00:25:90:00:0A:10", "n0003"),
    ]


def test_update_keeps_stored_names_for_nameless_records() -> None:
    store = FakeStore()
    assert _run(["auto", str(DATA / "switch/cisco-ios.txt"), "--vlan", "100", "--update"], store) == 0
    assert [n.hostname for n in store.imported[0]] == ["n0001", "n0000", "n0002"]


def test_bad_template_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        _run(["mac-list", str(DATA / "maclist/macs.txt"), "--name-template", "node"], FakeStore())


def test_unreadable_file_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(PerceusError, match="cannot read"):
        _run(["mac-list", str(tmp_path / "missing")], FakeStore())
