"""Stock 1.x generators made natively give the bytes the real sh and Perl scripts give on this master."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from perceus.master.bus.handlers import Dispatcher
from perceus.master.bus.server import BusServer
from perceus.master.config import Paths
from perceus.master.legacy import stock_generators
from perceus.master.legacy.listener import LegacyListener
from perceus.master.nodescripts import NodeScripts, environment
from perceus.master.store.models import NewNode, Node
from perceus.master.store.sqlite import SQLiteStore

STOCK = Path(__file__).resolve().parents[2] / "data" / "stock1x" / "modules"
SCRIPTS = ("hostname/49-hostname.sh", "masterauth/50-masterauth.pl")
NODES = [
    Node(nodeid="52:54:00:00:00:01", hostname="n0001", group="compute", vnfs="deb", enabled=True, ip="10.0.0.5"),
    Node(nodeid="52:54:00:00:00:02", hostname="gpu-a.b_7", group="", vnfs="", enabled=False, ip=""),
    # Not plain: dash's echo would read the backslash, so the native generator declines and sh runs it.
    Node(nodeid="52:54:00:00:00:03", hostname="odd\\cname", group="g", vnfs="v", enabled=True, ip="10.0.0.7"),
]

pytestmark = pytest.mark.skipif(shutil.which("perl") is None, reason="needs perl (the stock masterauth is Perl)")


def stock_tree(root: Path) -> Path:
    """A 1.x-shaped tree: the module scripts symlinked into init/all and ready/all, as `perceus module activate`."""
    for state in ("init", "ready"):
        (root / state / "all").mkdir(parents=True, exist_ok=True)
        for rel in SCRIPTS:
            (root / state / "all" / Path(rel).name).symlink_to(STOCK / rel)
    return root


@pytest.mark.parametrize("state", ["init", "ready"])
@pytest.mark.parametrize("node", NODES, ids=lambda n: n.hostname)
def test_native_output_is_byte_identical_to_the_real_scripts(tmp_path: Path, node: Node, state: str) -> None:
    root = stock_tree(tmp_path / "nodescripts")
    env = environment(node, state, tmp_path, "10.0.0.1")
    native, real = NodeScripts(root), NodeScripts(root, native=False)
    plan = native.plan(state, node)
    assert [e.native is not None for e in plan.entries] == [True, True]
    assert not plan.needs_master  # rendered in the loop, no worker and no process
    assert real.plan(state, node).needs_master
    ours = native.render(plan, env)
    theirs = real.render(real.plan(state, node), env)
    assert [s.name for s in ours] == ["49-hostname.sh", "50-masterauth.pl"]
    assert [s.body.encode() for s in ours] == [s.body.encode() for s in theirs]
    assert "root:x:0:0:" in ours[1].body  # the master's accounts really are in there


def test_native_generators_decline_what_they_do_not_model() -> None:
    env = {"STATE": "init", "NODENAME": "odd\\cname"}
    assert stock_generators.hostname_sh(env) is None
    assert stock_generators.hostname_sh({"STATE": "ready", "NODENAME": "n1"}) == "hostname n1\n"


def test_an_edited_stock_script_runs_as_a_process(tmp_path: Path) -> None:
    root = stock_tree(tmp_path / "nodescripts")
    mine = root / "ready" / "all" / "49-hostname.sh"
    mine.unlink()
    mine.write_bytes((STOCK / SCRIPTS[0]).read_bytes() + b'echo "echo site $NODENAME"\n')
    mine.chmod(0o755)
    node = NODES[0]
    ns = NodeScripts(root)
    plan = ns.plan("ready", node)
    assert [e.native is not None for e in plan.entries] == [False, True]
    assert plan.needs_master
    body = ns.render(plan, environment(node, "ready", tmp_path, "10.0.0.1"))[0].body
    assert body == "hostname n0001\necho site n0001\n"


def test_bsd_sum_matches_coreutils_sum_r(tmp_path: Path) -> None:
    data = Path("/etc/passwd").read_bytes() + bytes(range(256)) * 3
    (tmp_path / "f").write_bytes(data)
    out = subprocess.run(["sum", "-r", str(tmp_path / "f")], capture_output=True, text=True, check=True).stdout
    assert stock_generators._bsd_sum(data) == int(out.split()[0])


def test_a_1x_node_receives_the_same_bytes_over_tcp_987(paths: Paths) -> None:
    """Through the door a 1.x provisiond uses: the legacy listener, native generators on, then off."""
    stock_tree(paths.nodescripts)
    with SQLiteStore(paths.database) as db:
        db.add(NewNode(nodeid=NODES[0].nodeid, hostname="n0001", group="compute", vnfs="deb"))
    store = SQLiteStore(paths.database)
    dispatcher = Dispatcher(store=store, paths=paths)
    server = BusServer(dispatcher, bind="tcp://127.0.0.1:*")
    listener = LegacyListener(server, dispatcher, host="127.0.0.1", port=0, timeout=5.0)
    thread = threading.Thread(target=server.serve, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        replies = []
        for native in (True, False):
            dispatcher.scripts = NodeScripts(paths.nodescripts, clock=time.monotonic, native=native)
            replies.append({state: exchange(listener.port, state, NODES[0].nodeid) for state in ("init", "ready")})
    finally:
        server.stop()
        thread.join(5)
        listener.close()
        server.close()
        store.close()
    assert replies[0] == replies[1]
    assert b"hostname n0001\n" in replies[0]["ready"] and b"root:x:0:0:" in replies[0]["init"]


def exchange(port: int, state: str, nodeid: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"{state} nodeid={nodeid}\n\0".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
