"""CLI table tests: state before → argv → exit code, stdout, stderr, state after (unchanged on error)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore

SEED = [
    NewNode(nodeid="52:54:00:00:00:01", hostname="n0000", group="cluster"),
    NewNode(nodeid="52:54:00:00:00:02", hostname="n0001", group="cluster"),
    NewNode(nodeid="52:54:00:00:00:03", hostname="gpu01", group="gpu", vnfs=""),
]


@dataclass
class Run:
    code: int
    out: str
    err: str
    nodes: list[tuple[str, str, str, bool, int]] = field(default_factory=list)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(paths: Paths, *argv: str, stdin: str = "", tty: bool = False) -> Run:
    out, err = io.StringIO(), io.StringIO()
    ctx = CliContext(paths=paths, stdin=(Terminal if tty else io.StringIO)(stdin), stdout=out, stderr=err)
    code = main(list(argv), context=ctx)
    with SQLiteStore(paths.database) as store:
        nodes = [(n.hostname, n.nodeid, n.group, n.enabled, n.debug) for n in store.list_nodes()]
    return Run(code, out.getvalue(), err.getvalue(), nodes)


@pytest.fixture
def seeded(paths: Paths) -> Paths:
    with SQLiteStore(paths.database) as store:
        for n in SEED:
            store.add(n)
    (paths.vnfs / "deb").mkdir(parents=True)
    return paths


def snapshot(paths: Paths) -> list[tuple[str, str, str, bool, int]]:
    return run(paths, "node", "list", "--json").nodes


# (argv, exit code, stdout contains, stderr contains) — every error leaves the store unchanged.
ERRORS = [
    (["node", "add", "zz:zz:zz"], 1, "", "perceus: error: invalid hardware address 'zz:zz:zz'"),
    (["node", "add", "52:54:00:00:00:01"], 1, "", "NodeID '52:54:00:00:00:01' already exists (node n0000)"),
    (["node", "add", "52:54:00:00:00:09", "n0001"], 1, "", "hostname 'n0001' already exists"),
    (["node", "add", "52:54:00:00:00:09", "bad name"], 2, "", "invalid hostname"),
    (
        ["node", "add"],
        2,
        "",
        "perceus: error: perceus node add: the following arguments are required: nodeid",
    ),
    (["node", "show", "nosuch"], 1, "", "node 'nosuch' does not exist"),
    (["node", "list", "nosuch", "nope*"], 1, "", "no nodes found matching 'nosuch' 'nope*'"),
    (["-y", "node", "set", "debug", "7", "n0000"], 1, "", "invalid debug '7'"),
    (["-y", "node", "set", "enabled", "banana", "n0000"], 1, "", "invalid enabled 'banana'"),
    (["-y", "node", "set", "vnfs", "nosuch", "n0000"], 1, "", "VNFS 'nosuch' does not exist"),
    (["-y", "node", "set", "hostname", "n0001", "n0000"], 1, "", "hostname 'n0001' already exists"),
    (["-y", "node", "set", "hostname", "x", "n000*"], 2, "", "one node at a time"),
    (["-y", "node", "set", "Bad Key!", "1", "n0000"], 2, "", "unknown node attribute"),
    (["-y", "node", "set", "debug", "1", "nosuch"], 1, "", "node 'nosuch' does not exist"),
    (["-y", "node", "set", "debug"], 2, "", "usage: node set KEY VALUE NODE"),
    (["node", "set", "debug", "1", "n0000"], 2, "", "pass -y/--yes"),
    (["node", "delete", "n0000"], 2, "", "pass -y/--yes"),
    (["-y", "node", "delete", "n[0100-0200]"], 1, "", "node 'n[0100-0200]' does not exist"),
    (["-y", "node", "replace", "n0000", "nosuch"], 1, "", "node 'nosuch' does not exist"),
    (["-y", "node", "replace", "n0000", "n0000"], 1, "", "cannot replace node 'n0000' with itself"),
    (["node", "list", "n[0001-"], 2, "", "bad node range"),
    (["group", "show", "nosuch"], 1, "", "group 'nosuch' does not exist"),
    (["node", "frobnicate"], 2, "", "invalid choice: 'frobnicate'"),
    (["bogus"], 2, "", "invalid choice: 'bogus'"),
    (["info", "config", "no such key"], 1, "", "no such configuration key"),
    (["node", "approve", "52:54:00:00:00:99"], 1, "", "pending node '52:54:00:00:00:99' does not exist"),
]


@pytest.mark.parametrize(("argv", "code", "out", "err"), ERRORS, ids=[" ".join(e[0]) for e in ERRORS])
def test_errors_leave_state_unchanged(seeded: Paths, argv: list[str], code: int, out: str, err: str) -> None:
    before = snapshot(seeded)
    result = run(seeded, *argv)
    assert result.code == code
    assert out in result.out
    assert err in result.err
    assert result.err.count("\n") == 1, "exactly one line on stderr"
    assert result.nodes == before


def test_add_auto_names_and_gap_refill(seeded: Paths) -> None:
    run(seeded, "-y", "node", "delete", "n0000")
    r = run(seeded, "node", "add", "52:54:00:00:00:0a")
    assert (r.code, r.out) == (0, "Node 'n0000' has been added to Perceus\n")
    r = run(seeded, "node", "add", "52-54-00-00-00-0B", "--group", "gpu")
    assert r.out == "Node 'n0002' has been added to Perceus\n"
    assert ("n0002", "52:54:00:00:00:0B", "gpu", True, 0) in r.nodes


def test_set_with_ranges_globs_and_legacy_syntax(seeded: Paths) -> None:
    r = run(seeded, "-y", "node", "set", "debug", "2", "n[0000-0001]")
    assert (r.code, r.out) == (0, "'2' nodes set debug='2'\n")
    r = run(seeded, "-y", "node", "set", "debug=3", "gpu*")
    assert "Rewriting obsolete syntax" in r.err and r.code == 0
    assert [n[4] for n in r.nodes] == [3, 2, 2]


def test_confirmation_on_a_terminal(seeded: Paths) -> None:
    r = run(seeded, "node", "delete", "n0000", stdin="maybe\nyes\n", tty=True)
    assert r.code == 0 and "Please" not in r.err and "[yes/no]" in r.out
    assert [n[0] for n in r.nodes] == ["gpu01", "n0001"]
    r = run(seeded, "node", "delete", "n0001", stdin="no\n", tty=True)
    assert r.code == 1 and [n[0] for n in r.nodes] == ["gpu01", "n0001"]
    r = run(seeded, "-n", "node", "delete", "n0001")
    assert r.code == 1 and len(r.nodes) == 2


def test_read_commands_json(seeded: Paths) -> None:
    r = run(seeded, "node", "list", "--json", "n*")
    assert [n["hostname"] for n in json.loads(r.out)] == ["n0000", "n0001"]
    r = run(seeded, "--json", "node", "status")
    rows = json.loads(r.out)
    assert {row["hostname"] for row in rows} == {"n0000", "n0001", "gpu01"} and rows[0]["stale"] is False
    assert json.loads(run(seeded, "group", "list", "--json").out) == ["cluster", "gpu"]
    info = json.loads(run(seeded, "info", "--json").out)
    assert info["nodes"]["total"] == 3 and info["bus"]["running"] is False


def test_text_layouts(seeded: Paths) -> None:
    r = run(seeded, "node", "summary", "n0000")
    assert r.out.splitlines()[0].startswith("HostName             GroupName")
    assert r.out.splitlines()[2] == "n0000                cluster          yes   (undefined)"
    r = run(seeded, "-q", "node", "status", "n0000")
    assert r.out == "n0000                (undefined)    (undefined)            (undefined)\n"
    r = run(seeded, "node", "show", "-i", "52:54:00:00:00:03")
    assert r.out.splitlines()[0] == "gpu01: nodeid=52:54:00:00:00:03"
    r = run(seeded, "group", "nodelist")
    assert r.out == "cluster:\n   n0000\n   n0001\ngpu:\n   gpu01\n"


def test_replace_moves_identity(seeded: Paths) -> None:
    run(seeded, "-y", "node", "set", "desc", "rack 4", "n0000")
    r = run(seeded, "-y", "node", "replace", "n0000", "n0001")
    assert r.code == 0 and r.out == "Node 'n0000' has been replaced.\n"
    assert [(n[0], n[1]) for n in r.nodes] == [("gpu01", "52:54:00:00:00:03"), ("n0000", "52:54:00:00:00:02")]


def test_set_boot_writes_ipxe_override(seeded: Paths) -> None:
    r = run(seeded, "-y", "node", "set", "boot", "local", "n0000")
    assert (r.code, r.out) == (0, "'1' nodes set boot='local'\n")
    files = list((seeded.tftp / "nodes").glob("*.ipxe"))
    assert [f.name for f in files] == ["52-54-00-00-00-01.ipxe"] and "local" in files[0].read_text()
    shown = run(seeded, "node", "show", "n0000").out
    assert "n0000: boot=local" in shown
    r = run(seeded, "-y", "node", "set", "boot", "floppy", "n0000")
    assert r.code == 2 and "valid boot options" in r.err


def test_group_rename_and_delete(seeded: Paths) -> None:
    r = run(seeded, "-y", "group", "set", "group", "compute", "cluster")
    assert r.code == 0 and {n[2] for n in r.nodes} == {"compute", "gpu"}
    r = run(seeded, "-y", "group", "delete", "compute")
    assert r.code == 0 and [n[0] for n in r.nodes] == ["gpu01"]


def test_contact_bundle(seeded: Paths, tmp_path: Path) -> None:
    target = tmp_path / "diag.tar.gz"
    r = run(seeded, "contact", "--bundle", str(target))
    assert r.code == 0 and target.exists() and "Nothing was sent" in r.out
    import tarfile

    with tarfile.open(target) as tar:
        names = tar.getnames()
    assert "perceus-diag/etc/perceus.conf" in names and "perceus-diag/status.json" in names


def test_configure_hosts_block(seeded: Paths, tmp_path: Path) -> None:
    run(seeded, "-y", "node", "set", "ip", "10.0.0.10", "n0000")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    assert run(seeded, "configure", "hosts", "--write", str(hosts)).code == 0
    assert run(seeded, "configure", "hosts", "--write", str(hosts)).code == 0  # idempotent
    text = hosts.read_text()
    assert text.startswith("127.0.0.1 localhost\n") and text.count("10.0.0.10\t\tn0000") == 1


def test_about_and_version(paths: Paths) -> None:
    assert "Perceus" in run(paths).out
    assert run(paths, "--version").out.startswith("Version=")
