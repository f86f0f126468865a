"""What only the PostgreSQL store does: NOTIFY node_changed for other masters, reconnects, concurrent start-up."""

from __future__ import annotations

import select
import threading
import time

import pytest
from tests.integration.store.backends import Backend

from perceus.errors import PerceusError
from perceus.master.store.models import ContactUpdate, NewNode
from perceus.master.store.pglisten import NodeChangeListener, redact
from perceus.master.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres


def wait_changes(listener: NodeChangeListener, want: set[str], within: float = 1.0) -> set[str]:
    """Collect notifications until `want` has arrived or `within` seconds passed (the one-second promise)."""
    got: set[str] = set()
    deadline = time.monotonic() + within
    while not want <= got and time.monotonic() < deadline:
        got.update(listener.changes(timeout=deadline - time.monotonic()))
    return got


def test_node_writes_reach_a_listener_within_a_second(pg: Backend) -> None:
    with PostgresStore(pg.target) as master_a, PostgresStore(pg.target) as master_b, master_b.listener() as ears:
        assert ears.changes() == []
        master_a.add(NewNode(nodeid="52:54:00:00:00:01", hostname="a"))
        # The fd is what perceus-bus polls (BusServer.add_reader): it must turn readable by itself.
        readable, _, _ = select.select([ears.fileno()], [], [], 1.0)
        assert readable == [ears.fileno()]
        assert wait_changes(ears, {"52:54:00:00:00:01"}) == {"52:54:00:00:00:01"}
        master_a.update(["52:54:00:00:00:01"], {"group": "gpu", "attrs.rack": "4"})
        assert wait_changes(ears, {"52:54:00:00:00:01"}) == {"52:54:00:00:00:01"}
        master_a.delete(["52:54:00:00:00:01"])
        assert wait_changes(ears, {"52:54:00:00:00:01"}) == {"52:54:00:00:00:01"}


def test_routine_checkins_stay_quiet_but_status_changes_notify(pg: Backend) -> None:
    with PostgresStore(pg.target) as store, store.listener() as ears:
        store.add(NewNode(nodeid="52:54:00:00:00:01", hostname="a"))
        assert wait_changes(ears, {"52:54:00:00:00:01"}) == {"52:54:00:00:00:01"}  # the insert
        store.record_contacts([ContactUpdate(nodeid="52:54:00:00:00:01", status="ready", ip="10.0.0.1", t=1.0)])
        assert wait_changes(ears, {"52:54:00:00:00:01"}) == {"52:54:00:00:00:01"}  # the status change
        # Same status and ip, only lastcontact moves: a thousand of these must not wake every master.
        store.record_contacts([ContactUpdate(nodeid="52:54:00:00:00:01", status="ready", ip="", t=2.0)])
        assert ears.changes(timeout=0.3) == []
        assert store.get("52:54:00:00:00:01").lastcontact == 2.0  # type: ignore[union-attr]


def test_replace_notifies_old_and_new_hardware(pg: Backend) -> None:
    with PostgresStore(pg.target) as store, store.listener() as ears:
        store.add(NewNode(nodeid="52:54:00:00:00:01", hostname="a"))
        store.add(NewNode(nodeid="52:54:00:00:00:02", hostname="b"))
        wait_changes(ears, {"52:54:00:00:00:01", "52:54:00:00:00:02"})
        store.replace("a", "b")
        assert wait_changes(ears, {"52:54:00:00:00:01", "52:54:00:00:00:02"}) == {
            "52:54:00:00:00:01",
            "52:54:00:00:00:02",
        }


def test_dropped_connections_are_replaced(pg: Backend) -> None:
    with PostgresStore(pg.target) as store:
        store.add(NewNode(nodeid="52:54:00:00:00:01", hostname="a"))
        # The server drops every session of this database (a restart, a failover of the DB host).
        pg.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert store.get_by_hostname("a") is not None


def test_masters_starting_together_migrate_once(pg: Backend) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            PostgresStore(pg.target).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert pg.sql("SELECT count(*) FROM schema_version") == [(1,)]


def test_unreachable_server_is_one_line_without_the_password(pg: Backend) -> None:
    with pytest.raises(PerceusError) as err:
        PostgresStore("postgresql://perceus:s3cret@127.0.0.1:1/perceus", timeout=2)
    message = str(err.value)
    assert "\n" not in message and "s3cret" not in message
    assert message.startswith("cannot open node database postgresql://perceus:***@127.0.0.1:1/perceus")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("host=h password=pw dbname=db", "host=h password=*** dbname=db"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown
