"""Run a one-off phase in a forked child, so its heavy imports never live in the long-running agent.

pyroute2 (with the ssl, sqlite3 and unittest it imports) and pyudev cost ~12 MB of resident memory and are
needed only for driver loading and DHCP; what they leave behind is kernel state (modules, addresses,
routes), which a child creates as well as the agent itself.  The result or the exception comes back pickled
over a pipe from our own child, so nothing untrusted is unpickled.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable
from typing import TypeVar

from perceus.errors import PerceusError

T = TypeVar("T")


class ChildFailed(PerceusError):
    """The isolated child died without a result (killed, or crashed before it could report)."""


def run_isolated(fn: Callable[[], T], *, what: str) -> T:
    """`fn()` in a forked child; its return value, or its exception re-raised here."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into the caller's stack
        os.close(read_fd)
        status = 0
        try:
            outcome: tuple[str, object] = ("ok", fn())
        except BaseException as exc:  # everything goes back to the parent, which decides  # noqa: BLE001
            outcome = ("error", exc)
        try:
            data = pickle.dumps(outcome)
        except Exception as exc:  # noqa: BLE001 - an error boundary: any failure here is one line and the caller goes on
            data = pickle.dumps(("error", PerceusError(f"{what}: unpicklable result: {exc}")))
        try:
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(data)
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001 - an error boundary: any failure here is one line and the caller goes on
            status = 1
        os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, wait_status = os.waitpid(pid, 0)
    if not data:
        raise ChildFailed(f"{what}: child process died (wait status {wait_status})")
    kind, value = pickle.loads(data)  # noqa: S301 - our own forked child's result over a private pipe
    if kind == "error":
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[no-any-return]
