"""Issue 17 item 4: after `perceus init` a 1.x provisiond gets a working `init` reply from the legacy listener
(the default 00-init / 99-zzzlast), and the same scripts are silent no-ops for the Perceus 2 agent."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from perceus.agent.scripts import assemble
from perceus.master.bus.handlers import Dispatcher
from perceus.master.bus.server import BusServer
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.legacy.listener import LegacyListener
from perceus.master.nodescripts import NodeScripts, environment
from perceus.master.store.sqlite import SQLiteStore

MAC = "00:1E:67:AA:BB:CD"


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.setenv("HOME", str(tmp_path / "root"))
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    assert main(["--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir), "-q", "init"]) == 0
    return paths


@pytest.fixture
def listener(fresh: Paths) -> Iterator[LegacyListener]:
    store = SQLiteStore(fresh.database)
    dispatcher = Dispatcher(store=store, paths=fresh)
    server = BusServer(dispatcher, bind="tcp://127.0.0.1:*")
    legacy = LegacyListener(server, dispatcher, host="127.0.0.1", port=0, timeout=2.0)
    thread = threading.Thread(target=server.serve, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        yield legacy
    finally:
        server.stop()
        thread.join(5)
        legacy.close()
        server.close()
        store.close()


def request(port: int, payload: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def test_a_1x_provisiond_gets_a_working_init_reply(listener: LegacyListener, tmp_path: Path) -> None:
    reply = request(listener.port, f"init nodeid={MAC}\n\0".encode())
    lines = reply.splitlines()
    assert lines[:2] == ["# PERCEUSD START", "# NODESCRIPT START"]
    assert lines[-2:] == ["# NODESCRIPT END", "# PROVISIOND END"]
    body = "\n".join(lines[2:-2]) + "\n"
    assert body.index("DESTDIR=/newroot") < body.index("a 1.x stage one cannot boot its capsules")
    # What 1.x's provisiond does with it: run it with /bin/sh, no environment from the master.
    ran = subprocess.run(["/bin/sh", "-c", body], capture_output=True, text=True, env={"PATH": "/bin:/usr/bin"},
                         cwd=tmp_path, timeout=30)  # fmt: skip
    assert ran.returncode == 1
    assert "Perceus: connected to a Perceus 2 master (legacy listener)" in ran.stdout
    assert "ERROR: PXE-boot this node from the master" in ran.stdout
    with SQLiteStore(listener.dispatcher.paths.database) as store:
        node = store.get(MAC)
    assert node is not None and node.hostname == "n0000"  # auto-added, as 1.x


def test_the_new_agent_runs_them_silently(fresh: Paths, tmp_path: Path) -> None:
    with SQLiteStore(fresh.database) as store:
        from perceus.master.store.models import NewNode

        node = store.add(NewNode(nodeid=MAC, hostname="n0000"))
    scripts = NodeScripts(fresh.nodescripts)
    env = environment(node, "init", fresh.state_dir, "10.0.0.1")
    rendered = scripts.render(scripts.plan("init", node), env)
    assert [s.name for s in rendered] == ["00-init", "99-zzzlast"]
    ran = subprocess.run(["/bin/sh", "-c", assemble(rendered, env, state="init")], capture_output=True, text=True,
                         env={"PATH": "/bin:/usr/bin"}, cwd=tmp_path, timeout=30)  # fmt: skip
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "", "")
