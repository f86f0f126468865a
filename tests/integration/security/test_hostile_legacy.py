"""The legacy TCP 987 listener of a real perceus-bus applies the bus's policy: revocation, `enabled` and the
enrollment policy, each refusal audited.  Before issue 14 a revoked or disabled node still got its scripts there,
and nothing it refused was audited."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from tests.integration.security.conftest import cli
from tests.integration.security.hostile import audit_has

from perceus.lab.bus import RunningBus
from perceus.master.config import Paths
from perceus.master.security.audit import audit_path, read
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore

MAC = "00:1E:67:AA:BB:CC"
MARKER = "echo node-script-for-this-node"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ask(port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(line.encode() + b"\n\0")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _legacy_bus(secure_bus: Callable[..., RunningBus], paths: Paths, policy: str, *, known: bool) -> int:
    paths.ensure()
    (paths.nodescripts / "init" / "all" / "10-mark.sh").write_text(f"#!/bin/sh\n{MARKER}\n")
    if known:
        with SQLiteStore(paths.database) as store:
            store.add(NewNode(nodeid=MAC, hostname="n0000"))
    port = _free_port()
    secure_bus(policy, legacy_listener="yes", legacy_port=str(port), legacy_address="127.0.0.1")
    return port


def _legacy_audit(paths: Paths, event: str) -> bool:
    return any(r.get("event") == event and r.get("via") == "legacy" for r in read(audit_path(paths)))


def test_legacy_listener_refuses_a_revoked_node(secure_bus: Callable[..., RunningBus], paths: Paths) -> None:
    port = _legacy_bus(secure_bus, paths, "open", known=True)
    assert MARKER in _ask(port, f"init nodeid={MAC}")  # served before
    assert cli(paths, "node", "revoke", "n0000") == 0
    reply = _ask(port, f"init nodeid={MAC}")
    assert MARKER not in reply and "revoked" in reply
    assert MARKER not in _ask(port, f"ready nodeid={MAC}")
    assert _legacy_audit(paths, "refused_revoked")


def test_legacy_listener_refuses_a_disabled_node(secure_bus: Callable[..., RunningBus], paths: Paths) -> None:
    port = _legacy_bus(secure_bus, paths, "open", known=True)
    assert cli(paths, "node", "set", "enabled", "0", "n0000") == 0
    deadline = time.monotonic() + 2  # the bus's store cache re-checks the database every 50 ms
    while MARKER in (reply := _ask(port, f"init nodeid={MAC}")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert MARKER not in reply and "not enabled" in reply
    assert _legacy_audit(paths, "refused_disabled")


def test_legacy_listener_obeys_approve(secure_bus: Callable[..., RunningBus], paths: Paths) -> None:
    port = _legacy_bus(secure_bus, paths, "approve", known=False)
    reply = _ask(port, f"init nodeid={MAC}")
    assert MARKER not in reply and "waiting for approval" in reply
    with SQLiteStore(paths.database) as store:
        assert store.get(MAC) is None and [p.nodeid for p in store.pending()] == [MAC]
    assert _legacy_audit(paths, "pending")
    assert cli(paths, "node", "approve", MAC) == 0
    assert MARKER in _ask(port, f"init nodeid={MAC}")


def test_legacy_listener_obeys_allowlist(secure_bus: Callable[..., RunningBus], paths: Paths) -> None:
    port = _legacy_bus(secure_bus, paths, "allowlist", known=False)
    reply = _ask(port, f"init nodeid={MAC}")
    assert MARKER not in reply and "allowlist" in reply
    with SQLiteStore(paths.database) as store:
        assert store.get(MAC) is None
    assert audit_has(paths, "refused_unknown_node")
