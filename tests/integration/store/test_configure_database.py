"""`perceus configure database`: table tests (state before → argv → exit, stdout, stderr, state after)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from tests.integration.store.backends import Backend

from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import NodeDefaults, Paths
from perceus.master.store.base import SCHEMA_VERSION
from perceus.master.store.models import ContactUpdate, EnrollRequest, NewNode, PhaseEvent
from perceus.master.store.postgres import PostgresStore
from perceus.master.store.sqlite import SQLiteStore

pytestmark = pytest.mark.postgres


def run(paths: Paths, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), context=CliContext(paths=paths, stdin=io.StringIO(), stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def use_postgres(paths: Paths, url: str) -> None:
    conf = paths.perceus_conf.read_text().replace("database type = sqlite", f"database type = {url}")
    paths.perceus_conf.write_text(conf)


def fill_sqlite(path: Path, count: int) -> None:
    with SQLiteStore(path) as store:
        for i in range(count):
            store.add(
                NewNode(nodeid=f"52:54:00:00:{i >> 8:02x}:{i & 255:02x}", hostname=f"n{i:04d}", group="g",
                        macs=(f"52:54:01:00:{i >> 8:02x}:{i & 255:02x}",), attrs={"rack": str(i % 8)})
            )  # fmt: skip
        store.record_contacts([ContactUpdate(nodeid="52:54:00:00:00:01", status="ready", ip="10.0.0.1", t=77.5)])
        store.record_events([PhaseEvent(nodeid="52:54:00:00:00:01", boot_id="b", phase=f"p{i}", t=i) for i in range(3)])
        store.note_pending(EnrollRequest(nodeid="52:54:09:00:00:01", macs=("52:54:09:00:00:01",)), "10.0.0.9", 5.0)


def test_initialise_sqlite_and_postgres(paths: Paths, pg: Backend) -> None:
    code, out, err = run(paths, "configure", "database")
    assert (code, err) == (0, "")
    assert out.startswith(f"Database ready: sqlite {paths.database}, schema {SCHEMA_VERSION}, 0 nodes")
    use_postgres(paths, pg.target)
    code, out, err = run(paths, "--json", "configure", "database")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"backend": f"postgresql {pg.target}", "schema": SCHEMA_VERSION, "nodes": 0}
    assert pg.sql("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


def test_copy_from_sqlite_keeps_every_row(paths: Paths, pg: Backend, tmp_path: Path) -> None:
    source = tmp_path / "old.db"
    fill_sqlite(source, 300)
    with SQLiteStore(source) as old:
        before = [n.as_dict() for n in old.list_nodes()]
        timeline = old.events("52:54:00:00:00:01")
        pending = old.pending()
    use_postgres(paths, pg.target)
    code, out, err = run(paths, "configure", "database", "--from-sqlite", str(source))
    assert (code, err) == (0, "")
    assert out == (f"Copied 300 nodes (600 MACs, 300 attributes), 3 events and 1 pending nodes from {source}"
                   f" into postgresql {pg.target}\n")  # fmt: skip
    with PostgresStore(pg.target) as new:
        assert [n.as_dict() for n in new.list_nodes()] == before  # ids, timestamps, status: all kept
        assert new.events("52:54:00:00:00:01") == timeline
        assert new.pending() == pending
        # Identity counters moved past the copied ids: the next enrollment gets a fresh row, lowest free name.
        defaults = NodeDefaults.load(paths)
        assert new.enroll([EnrollRequest(nodeid="52:54:0a:00:00:01")], defaults)[0].hostname == "n0300"


@pytest.mark.parametrize(
    ("setup", "argv", "code", "err"),
    [
        ("sqlite-conf", ["--from-sqlite", "{src}"], 2, "perceus.conf uses SQLite"),
        ("pg", ["--force"], 2, "--force only applies to --from-sqlite"),
        ("pg", ["--from-sqlite", "{missing}"], 1, "does not exist"),
        ("pg", ["--from-sqlite", "{garbage}"], 1, "cannot read node database"),
        ("pg-nonempty", ["--from-sqlite", "{src}"], 1, "is not empty (1 nodes, 0 events, 0 pending); use --force"),
        ("pg-nonempty", ["--from-sqlite", "{src}", "--force"], 2, "confirmation needed"),
    ],
)
def test_refusals_change_nothing(
    paths: Paths, pg: Backend, tmp_path: Path, setup: str, argv: list[str], code: int, err: str
) -> None:
    src, garbage = tmp_path / "src.db", tmp_path / "garbage.db"
    fill_sqlite(src, 5)
    garbage.write_bytes(b"not a database" * 100)
    if setup != "sqlite-conf":
        use_postgres(paths, pg.target)
        PostgresStore(pg.target).close()  # the schema exists; only its rows are at stake
    if setup == "pg-nonempty":
        with PostgresStore(pg.target) as store:
            store.add(NewNode(nodeid="52:54:0f:00:00:01", hostname="keep"))
    before = pg.sql("SELECT hostname FROM node ORDER BY 1") if setup != "sqlite-conf" else []
    args = [a.format(src=src, missing=tmp_path / "missing.db", garbage=garbage) for a in argv]
    got = run(paths, "configure", "database", *args)
    assert got[0] == code and got[1] == ""
    assert got[2].startswith("perceus: error: ") and err in got[2] and got[2].count("\n") == 1
    if setup != "sqlite-conf":
        assert pg.sql("SELECT hostname FROM node ORDER BY 1") == before


def test_force_replaces_the_target(paths: Paths, pg: Backend, tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    fill_sqlite(src, 5)
    use_postgres(paths, pg.target)
    with PostgresStore(pg.target) as store:
        store.add(NewNode(nodeid="52:54:0f:00:00:01", hostname="gone"))
    code, _, err = run(paths, "-y", "configure", "database", "--from-sqlite", str(src), "--force")
    assert (code, err) == (0, "")
    assert pg.sql("SELECT count(*) FROM node WHERE hostname = 'gone'") == [(0,)]
    assert pg.sql("SELECT count(*) FROM node") == [(5,)]
