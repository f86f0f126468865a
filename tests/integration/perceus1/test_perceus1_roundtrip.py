"""Round trip: a 1.x master built with the real Berkeley DB tools → `perceus import perceus1` → node list."""

from __future__ import annotations

import io
import json
import os
import socket
from pathlib import Path

import pytest
from tests.integration.perceus1 import fixture

from perceus.master.cli import import_perceus1 as perceus1_cli
from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import NodeDefaults, Paths
from perceus.master.store.models import EnrollRequest
from perceus.master.store.sqlite import SQLiteStore


def run_import(paths: Paths, *argv: str, json_out: bool = False) -> tuple[int, str, str]:
    """Call the perceus1 CLI the way `perceus import perceus1` will (the lead wires the noun)."""
    import argparse

    parser = argparse.ArgumentParser()
    perceus1_cli.add_arguments(parser)
    ns = parser.parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    ctx = CliContext(paths=paths, stdout=out, stderr=err, json=json_out)
    try:
        code = perceus1_cli.run(ctx, ns)
    except Exception as exc:  # what main() does with a PerceusError
        from perceus.errors import PerceusError

        if not isinstance(exc, PerceusError):
            raise
        err.write(f"perceus: error: {exc}\n")
        code = exc.exit_code
    finally:
        ctx.close()
    return code, out.getvalue(), err.getvalue()


def perceus_json(paths: Paths, *argv: str) -> str:
    out = io.StringIO()
    ctx = CliContext(paths=paths, stdout=out, stderr=io.StringIO())
    dirs = ["--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir)]
    assert main(["--json", *dirs, *argv], context=ctx) == 0
    return out.getvalue()


def node_list(paths: Paths) -> list[dict[str, object]]:
    out = io.StringIO()
    ctx = CliContext(paths=paths, stdout=out, stderr=io.StringIO())
    assert (
        main(
            [
                "--json",
                "--config-dir",
                str(paths.config_dir),
                "--state-dir",
                str(paths.state_dir),
                "node",
                "list",
            ],
            context=ctx,
        )
        == 0
    )
    data = json.loads(out.getvalue())
    return data if isinstance(data, list) else data["nodes"]


def stored(paths: Paths) -> int:
    """How many nodes the new store holds (0 when it was never created)."""
    if not paths.database.exists():
        return 0
    with SQLiteStore(paths.database) as store:
        return len(store.list_nodes())


@pytest.fixture
def old(tmp_path: Path) -> tuple[Path, Path]:
    return fixture.build(tmp_path / "old")


@pytest.fixture
def new(tmp_path: Path) -> Paths:
    return Paths(config_dir=tmp_path / "new" / "etc", state_dir=tmp_path / "new" / "var")


@pytest.mark.parametrize("backend", ["btree", "hash"])
def test_round_trip_to_node_list(tmp_path: Path, new: Paths, backend: str) -> None:
    etc, state = fixture.build(tmp_path / "old", backend=backend)
    before = fixture.snapshot(tmp_path / "old")
    code, out, err = run_import(new, str(etc), str(state))
    assert code == 0, err
    assert "4 added" in out
    nodes = {n["hostname"]: n for n in node_list(new)}
    assert sorted(nodes) == ["n0000", "n0001", "n0003", "n0004"]
    n0, n1, n3 = nodes["n0000"], nodes["n0001"], nodes["n0003"]
    assert (n0["nodeid"], n0["group"], n0["vnfs"], n0["enabled"]) == (
        fixture.MAC(0),
        "compute",
        fixture.CAPSULE,
        True,
    )
    assert n0["ip"] == "10.0.0.1" and n0["status"] == "ready" and n0["lastcontact"] == 1300000000
    assert n0["attrs"] == {"rack": "r1"}
    assert n1["enabled"] is False and n3["enabled"] is False  # "0" and "" both mean disabled
    assert n3["debug"] == 2 and n3["desc"] == "GPU node, rack 7" and n3["ip"] == "192.168.1.1"
    assert fixture.snapshot(tmp_path / "old") == before  # the 1.x master is untouched
    # config carried over with the legacy listener switched on; module config and keys copied
    conf = (new.config_dir / "perceus.conf").read_text()
    assert conf.startswith((etc / "perceus.conf").read_text()) and "legacy listener = yes" in conf
    assert (new.config_dir / "defaults.conf").read_bytes() == (etc / "defaults.conf").read_bytes()
    assert (new.config_dir / "modules" / "ipaddr").is_file() and (new.config_dir / "keys").is_dir()
    # the nodescripts tree: module links now point into the new state dir, admin scripts kept
    link = new.nodescripts / "init/all/49-hostname.sh"
    assert os.readlink(link) == str(new.state_dir / "modules/hostname/nodescripts/49-hostname.sh")
    assert link.is_file()
    assert os.readlink(new.nodescripts / "ready/all/50-masterauth.pl") == str(
        new.state_dir / "modules/masterauth/nodescripts/50-masterauth.pl"
    )
    assert (new.nodescripts / "init/group/gpu/60-nvidia.sh").read_text().endswith("modprobe nvidia\n")
    report = json.loads((new.state_dir / "perceus1-import.json").read_text())
    assert report["modules"] == {"hostname": ["init/all"], "masterauth": ["ready/all", "ready/node/n0000"]}
    statuses = {c["name"]: c["status"] for c in report["capsules"]}
    assert statuses["broken.stateless"] == "not convertible"
    assert statuses[fixture.CAPSULE].startswith("converted")
    listed = json.loads(perceus_json(new, "vnfs", "list"))
    mine = next(c for c in listed if c["name"] == fixture.CAPSULE)
    assert mine["type"] == "stateless" and mine["kernel"] == "vmlinuz-2.6.18-194.el5"
    config = (new.vnfs / fixture.CAPSULE / "config").read_text()
    assert "console=ttyS0,115200" in config and "--args-linux" in config
    assert any("70-gone.sh" in w for w in report["warnings"])


def test_rerun_is_idempotent(old: tuple[Path, Path], new: Paths) -> None:
    assert run_import(new, *map(str, old))[0] == 0
    first = node_list(new)
    code, out, err = run_import(new, *map(str, old))
    assert code == 0, err
    assert "0 added, 0 updated, 4 unchanged; 0 files/links carried over" in out
    assert node_list(new) == first
    assert (new.config_dir / "perceus.conf").read_text().count("legacy listener") == 1


def test_auto_naming_continues_in_the_gap(old: tuple[Path, Path], new: Paths) -> None:
    assert run_import(new, *map(str, old))[0] == 0
    with SQLiteStore(new.database) as store:
        added = store.enroll([EnrollRequest(nodeid="00:1E:67:00:00:99")], NodeDefaults.load(new))
        then = store.enroll([EnrollRequest(nodeid="00:1E:67:00:00:9A")], NodeDefaults.load(new))
    # 1.x's next_nodename: the lowest free number from First Node, so the deleted n0002 first, then n0005
    assert [n.hostname for n in added + then] == ["n0002", "n0005"]
    assert added[0].vnfs == fixture.CAPSULE and added[0].group == "cluster"


def test_duplicate_hostname_strict_stops_skip_invalid_keeps_first(tmp_path: Path, new: Paths) -> None:
    etc, state = fixture.build(tmp_path / "old", duplicate=True)
    code, _, err = run_import(new, str(etc), str(state))
    assert code == 1 and "duplicate hostname 'n0003'" in err and "nothing imported" in err
    assert stored(new) == 0
    code, _, err = run_import(new, str(etc), str(state), "--skip-invalid")
    assert code == 0, err
    nodes = {n["hostname"]: n["nodeid"] for n in node_list(new)}
    assert nodes["n0003"] == fixture.MAC(3)
    assert fixture.MAC(5) not in nodes.values()


def test_dry_run_writes_nothing_and_json_reports(old: tuple[Path, Path], new: Paths) -> None:
    code, out, _ = run_import(new, *map(str, old), "--dry-run", json_out=True)
    assert code == 0
    data = json.loads(out)
    assert len(data["nodes"]) == 4 and data["outcome"] is None
    obsolete = {s["key"] for s in data["settings"] if s["status"] == "obsolete"}
    assert {"database type", "vnfs transfer method", "controlport allow address"} <= obsolete
    assert not new.state_dir.exists() and not new.config_dir.exists()
    code, out, _ = run_import(new, *map(str, old), "--dry-run")
    assert "Nodes:    4 to import" in out and "'database type = btree' no longer applies" in out
    assert "Dry run: nothing was written." in out


def test_refuses_while_something_listens_on_the_perceusd_port(old: tuple[Path, Path], new: Paths) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = str(listener.getsockname()[1])
        code, _, err = run_import(new, *map(str, old), "--perceusd-port", port)
        assert code == 1 and f"listens on TCP {port}" in err
        assert stored(new) == 0
        assert run_import(new, *map(str, old), "--perceusd-port", port, "--force")[0] == 0


def test_in_place_upgrade_keeps_a_backup_and_the_tree(old: tuple[Path, Path]) -> None:
    etc, state = old
    original = (etc / "perceus.conf").read_bytes()
    tree_before = fixture.snapshot(state / "nodescripts")
    paths = Paths(config_dir=etc, state_dir=state)
    code, out, err = run_import(paths, str(etc), str(state))
    assert code == 0, err
    assert (etc / "perceus.conf.perceus1").read_bytes() == original
    assert (etc / "perceus.conf").read_bytes().startswith(original)
    assert fixture.snapshot(state / "nodescripts") == tree_before  # the tree is already where it belongs
    assert stored(paths) == 4
    code, out, err = run_import(paths, str(etc), str(state))
    assert code == 0 and "4 unchanged" in out
    assert (etc / "perceus.conf.perceus1").read_bytes() == original  # the backup is never overwritten


def test_through_perceus_main(old: tuple[Path, Path], new: Paths) -> None:
    """`perceus import perceus1 OLD-CONFIG OLD-STATE` as the admin types it (the lead's import noun)."""
    out, err = io.StringIO(), io.StringIO()
    ctx = CliContext(paths=new, stdout=out, stderr=err)
    argv = [
        "--config-dir",
        str(new.config_dir),
        "--state-dir",
        str(new.state_dir),
        "import",
        "perceus1",
        *map(str, old),
        "--perceusd-port",
        "1",
    ]
    assert main(argv, context=ctx) == 0, err.getvalue()
    assert "4 added" in out.getvalue()
    assert len(node_list(new)) == 4
