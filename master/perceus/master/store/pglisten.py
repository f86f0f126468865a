"""LISTEN for `node_changed` on the shared PostgreSQL store, so a master learns of other masters' node writes.

perceus-bus registers `fileno()` with `BusServer.add_reader(fd, fn)` and calls `changes()` when it is
readable; the nodeids it returns say which nodes another master (or the CLI anywhere) changed.
"""

from __future__ import annotations

import re
import select
from typing import Any

import psycopg
from psycopg import pq

from perceus.errors import PerceusError

CHANNEL = "node_changed"


class NodeChangeListener:
    """One dedicated autocommit connection that LISTENs on `node_changed`."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self._where = redact(url)
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, int(timeout))
            )
            self._conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            raise PerceusError(f"cannot listen on node database {self._where}: {exc}") from None

    def fileno(self) -> int:
        """The socket to poll; readable when notifications (or a server disconnect) arrive."""
        return self._conn.fileno()

    def changes(self, timeout: float = 0.0) -> list[str]:
        """Nodeids changed since the last call, in arrival order without repeats; waits up to `timeout`
        seconds for the first one.  A lost server connection raises PerceusError (the bus must stop
        answering from stale state)."""
        seen: dict[str, None] = {}
        try:
            self._check_open()
            for note in self._conn.notifies(timeout=timeout, stop_after=1):
                seen[note.payload] = None
            if seen:
                # Drain whatever else already arrived, without waiting.
                for note in self._conn.notifies(timeout=0):
                    seen[note.payload] = None
            self._check_eof(seen)
        except psycopg.Error as exc:
            raise PerceusError(f"lost node database {self._where}: {_first_line(exc)}") from None
        return list(seen)

    def _check_open(self) -> None:
        if self._conn.closed or self._conn.broken or self._conn.pgconn.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError("the connection is closed")

    def _check_eof(self, seen: dict[str, None]) -> None:
        """psycopg reads the socket once per wait: after a server's FATAL message the EOF behind it can stay
        unread, and `notifies(timeout=0)` then returns nothing while the connection is gone.  A socket still
        readable after the drain is read here: EOF raises, notifications that arrived meanwhile are kept."""
        poller = select.poll()  # not select.select: the bus may hold more than FD_SETSIZE descriptors
        poller.register(self._conn.fileno(), select.POLLIN)
        if not poller.poll(0):
            return
        pgconn = self._conn.pgconn
        with self._conn.lock:
            pgconn.consume_input()  # OperationalError on EOF
            while (note := pgconn.notifies()) is not None:
                seen[note.extra.decode(self._conn.info.encoding)] = None
        self._check_open()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> NodeChangeListener:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@|(password=)\S+")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def redact(url: str) -> str:
    """The database URL without its password, for messages and logs."""
    return _PASSWORD.sub(lambda m: (m.group(1) or m.group(2)) + "***" + ("@" if m.group(1) else ""), url)
