"""The TCP 987 listener against a real BusServer loop: speak provisiond's request line, check framing and DB."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perceus.master.bus.handlers import Dispatcher
from perceus.master.bus.server import BusServer
from perceus.master.config import MasterConfig, Paths
from perceus.master.legacy.listener import LegacyListener, install
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore

MAC = "00:1E:67:AA:BB:CC"
STATIC = "#!/bin/sh\necho static-init\n"
GENERATOR = '#!/bin/sh\necho "echo generated for $NODENAME state $STATE via $VNFSMETHOD"\n'


@pytest.fixture
def master(paths: Paths) -> Iterator[tuple[LegacyListener, Paths]]:
    (paths.nodescripts / "init" / "all" / "00-static.sh").write_text("# header\n" + STATIC)
    gen = paths.nodescripts / "init" / "all" / "50-gen.sh"
    gen.write_text(GENERATOR)
    gen.chmod(0o755)
    (paths.nodescripts / "ready" / "all" / "10-ready.sh").write_text("#!/bin/sh\necho ready-check\n")
    with paths.perceus_conf.open("a") as fh:
        fh.write("vnfs transfer method = nfs\n")
    store = SQLiteStore(paths.database)
    dispatcher = Dispatcher(store=store, paths=paths)
    server = BusServer(dispatcher, bind="tcp://127.0.0.1:*")
    listener = LegacyListener(server, dispatcher, host="127.0.0.1", port=0, timeout=2.0)
    thread = threading.Thread(target=server.serve, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        yield listener, paths
    finally:
        server.stop()
        thread.join(5)
        listener.close()
        server.close()
        store.close()


def request(port: int, payload: bytes, *, pause: float = 0.0) -> bytes:
    """One provisiond-style exchange: connect, send (optionally in two segments), read to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if pause:
            sock.sendall(payload[:3])
            time.sleep(pause)
            sock.sendall(payload[3:])
        else:
            sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def wait_for(paths: Paths, nodeid: str, status: str) -> object:
    deadline = time.monotonic() + 3
    with SQLiteStore(paths.database) as store:
        while time.monotonic() < deadline:
            node = store.get(nodeid)
            if node is not None and node.status == status:
                return node
            time.sleep(0.02)
    raise AssertionError(f"{nodeid} never reached status {status}")


def test_init_auto_adds_and_streams_framed_scripts(master: tuple[LegacyListener, Paths]) -> None:
    listener, paths = master
    reply = request(listener.port, f"init nodeid={MAC.lower()} nodename=\n\0".encode())
    lines = reply.decode().splitlines()
    assert lines[0] == "# PERCEUSD START" and lines[1] == "# NODESCRIPT START"
    assert lines[-2:] == ["# NODESCRIPT END", "# PROVISIOND END"]
    body = "\n".join(lines[2:-2])
    assert body.index("echo static-init") < body.index("echo generated for n0000 state init via nfs")
    assert "# header" not in body  # a non-executable script is sent from its #!/bin/sh line
    node = wait_for(paths, MAC, "init")
    assert node.hostname == "n0000" and node.ip == "127.0.0.1" and node.lastcontact > 0  # type: ignore[attr-defined]


def test_ready_for_a_known_node_updates_status(master: tuple[LegacyListener, Paths]) -> None:
    listener, paths = master
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid=MAC, hostname="n0007", group="compute"))
    reply = request(listener.port, f"ready nodeid={MAC}\n\0".encode(), pause=0.1)  # split across segments
    assert (
        reply == b"# PERCEUSD START\n# NODESCRIPT START\n#!/bin/sh\necho ready-check\n# NODESCRIPT END\n"
        b"# PROVISIOND END\n"
    )
    wait_for(paths, MAC, "ready")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"ping a1b2c3d4e5f6a7b8\n", b"# PERCEUSD START\na1b2c3d4e5f6a7b8\n"),
        (b"ping\n", b"# PERCEUSD START\nping\n"),
        (b"ready nodeid=00:1E:67:00:00:99\n\0", b"# PERCEUSD START\n"),  # unknown and not init: nothing
        (b"init nodeid=zz:zz:zz:zz:zz:zz\n", b"# PERCEUSD START\n"),  # 1.x accepted g-z; we refuse
        (b"rm;-rf nodeid=00:1E:67:00:00:98\n", b"# PERCEUSD START\n"),  # command must be a word
        (b"log node says hello nodeid=00:1E:67:00:00:97\n", b"# PERCEUSD START\n"),
        (b"x" * 5000, b"# PERCEUSD START\n"),  # bounded request
    ],
)
def test_requests_that_get_no_script(master: tuple[LegacyListener, Paths], payload: bytes, expected: bytes) -> None:
    listener, paths = master
    assert request(listener.port, payload) == expected
    with SQLiteStore(paths.database) as store:
        assert store.list_nodes() == []


def test_request_without_newline_is_read_at_eof(master: tuple[LegacyListener, Paths]) -> None:
    listener, _ = master
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as sock:
        sock.sendall(b"ping tok")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) + sock.recv(100) == b"# PERCEUSD START\ntok\n"


def test_silent_client_is_reaped(master: tuple[LegacyListener, Paths]) -> None:
    listener, _ = master
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as sock:
        assert sock.recv(100) == b"# PERCEUSD START\n"
        started = time.monotonic()
        assert sock.recv(100) == b""
        assert time.monotonic() - started < 4.5
    assert listener.counters.timeouts == 1


def test_install_follows_perceus_conf(paths: Paths, tmp_path: Path) -> None:
    store = SQLiteStore(paths.database)
    dispatcher = Dispatcher(store=store, paths=paths)
    server = BusServer(dispatcher, bind="tcp://127.0.0.1:*")
    try:
        assert install(server, dispatcher, MasterConfig.load(paths)) is None  # off on a fresh install
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        with paths.perceus_conf.open("a") as fh:
            fh.write(f"legacy listener = yes\nlegacy port = {free}\nlegacy address = 127.0.0.1\n")
        listener = install(server, dispatcher, MasterConfig.load(paths))
        assert listener is not None and listener.address == ("127.0.0.1", free)
        listener.close()
    finally:
        server.close()
        store.close()
