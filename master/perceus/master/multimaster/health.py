"""The heartbeat thread: proves every second that this master still has the shared database.

Every database round trip of the feature happens here, off the bus loop: a heartbeat write, the list of
masters (to advertise them to nodes), and re-opening the LISTEN connection after a loss.  The loop only reads
the results (attribute reads under the GIL), so a database that hangs instead of refusing never stalls it.
A failed heartbeat, or none for `stale_after` seconds (a watchdog thread, since the heartbeat call itself may
hang), sets the dispatcher's `unavailable` at once, even while the loop is stuck in a store call: the answer of
that call is then dropped.  Only the loop clears it, once beats succeed and it has a fresh listener again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from perceus.errors import PerceusError
from perceus.master.store.base import NodeStore
from perceus.master.store.models import MasterInfo

log = structlog.get_logger("perceus.bus")


class ChangeListener(Protocol):
    """What the loop needs from PostgresStore.listener()."""

    def fileno(self) -> int: ...

    def changes(self, timeout: float = 0.0) -> list[str]: ...

    def close(self) -> None: ...


class Heartbeat(threading.Thread):
    """Beats into the `master` table every `every` seconds and keeps a LISTEN connection on offer."""

    def __init__(
        self,
        store: NodeStore,
        info: Callable[[], MasterInfo],
        open_listener: Callable[[], ChangeListener],
        on_lost: Callable[[str], None],
        *,
        every: float = 1.0,
        stale_after: float = 4.0,
    ) -> None:
        super().__init__(name="perceus-heartbeat", daemon=True)
        self.store = store
        self.info = info
        self.open_listener = open_listener
        self.on_lost = on_lost
        self.every = every
        self.stale_after = stale_after
        self.last_ok = time.monotonic()
        self.error = ""
        self.peers: list[MasterInfo] = []
        self.want_listener = False
        self.fresh_listener: ChangeListener | None = None
        self._halt = threading.Event()
        # The pool waits up to its timeout (10 s) for a connection, and a query on a half-dead TCP connection
        # can hang longer: the watchdog declares the master cut off while the heartbeat call is still stuck.
        self._watchdog = threading.Thread(target=self._watch, name="perceus-heartbeat-watchdog", daemon=True)

    def start(self) -> None:
        super().start()
        self._watchdog.start()

    def _watch(self) -> None:
        while not self._halt.wait(self.every / 4):
            age = time.monotonic() - self.last_ok
            if age > self.stale_after:
                self.on_lost(self.error or f"no heartbeat for {age:.0f}s")

    def beat(self) -> bool:
        """One heartbeat (+ masters list, + listener if wanted); True when the database answered."""
        try:
            self.store.heartbeat(self.info())
            peers = self.store.masters()
            if self.want_listener and self.fresh_listener is None:
                self.fresh_listener = self.open_listener()
                self.want_listener = False
        except PerceusError as exc:
            if not self.error:
                log.warning("heartbeat_failed", error=str(exc))
            self.error = str(exc)
            self.on_lost(self.error)
            return False
        self.peers = peers
        self.error = ""
        self.last_ok = time.monotonic()
        return True

    def run(self) -> None:
        while not self._halt.wait(self.every):
            try:
                self.beat()
            except Exception:  # the thread must outlive any surprise; the loop sees a stale last_ok
                log.exception("heartbeat_crashed")

    def stop(self) -> None:
        self._halt.set()
        # Daemon threads: a beat stuck on an unreachable database must not hold up shutdown for the pool timeout.
        self.join(timeout=2)
        self._watchdog.join(timeout=2)
        if self.fresh_listener is not None:
            self.fresh_listener.close()
            self.fresh_listener = None
