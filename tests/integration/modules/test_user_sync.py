"""provisiond with a temp root syncs users from a real perceus-bus; a master restart during check-ins loses
nothing; masterauth+passwdfile on one node gives no user action and an error on the master."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from perceus.lab.bus import RunningBus, start_local_bus
from perceus.master.bus.control import poke
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore

from .conftest import Agent, add_nodes, cli, read, runtime_line, set_interval

MAC = "52:54:00:7B:00:01"
LOCAL = "root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\nold:x:1500:1500::/h:/bin/sh\n"
ALICE = "alice:x:2001:2001:Alice:/home/alice:/bin/bash\n"
BOB = "bob:x:2002:2002:Bob:/home/bob:/bin/bash\n"


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(LOCAL)
    return root


def _wait(pred: object, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _passwdfile(bus_paths: object, all_text: str) -> Path:
    base = bus_paths.config_dir / "modules" / "passwdfile"  # type: ignore[attr-defined]
    (base / "all").write_text(all_text)
    return base


def test_runtime_agent_syncs_users_and_picks_up_changes_on_sync(bus: RunningBus, tmp_path: Path,
                                                                 agents: list[Agent]) -> None:  # fmt: skip
    add_nodes(bus.paths, NewNode(nodeid=MAC, hostname="n0001", group="compute"))
    assert cli(bus.paths, "module", "activate", "passwdfile")[0] == 0
    base = _passwdfile(bus.paths, ALICE)
    root = _root(tmp_path)
    agent = Agent("--root", str(root), "--run-dir", str(tmp_path / "run"), "--cmdline", runtime_line(bus, MAC))
    agents.append(agent)
    passwd = root / "etc" / "passwd"
    _wait(lambda: "alice" in read(passwd), f"alice never arrived:\n{agent.text()}")
    assert read(passwd) == LOCAL.replace("old:x:1500:1500::/h:/bin/sh\n", "") + ALICE
    (base / "group" / "compute").write_text(BOB)
    time.sleep(1.1)  # the master re-stats module files at most once per second
    agent.wait_for("event=sync_requested", count=0)
    time.sleep(0.3)  # slow joiner: the agent's SUB connected at start, long ago by now
    assert poke(bus.paths.control_socket, "sync", nodes=[MAC])["ok"]  # type: ignore[index]
    _wait(lambda: "bob" in read(passwd), f"bob never arrived:\n{agent.text()}", timeout=10)
    assert "event=sync_requested" in agent.text()
    assert read(passwd).endswith(ALICE + BOB)


def test_conflicting_modules_send_no_user_action(bus: RunningBus, tmp_path: Path, agents: list[Agent]) -> None:
    add_nodes(bus.paths, NewNode(nodeid=MAC, hostname="n0001"))
    assert cli(bus.paths, "module", "activate", "masterauth", "ready/node/n0001")[0] == 0
    code, _, err = cli(bus.paths, "module", "activate", "passwdfile", "ready/all")
    assert code == 1 and "meet 'masterauth'" in err
    # An activation written behind the CLI's back (another tool, a hand-edited DB) is caught at action time.
    with SQLiteStore(bus.paths.database) as store:
        from perceus.master.store.models import Activation

        store.activate([Activation("passwdfile", "ready", "all")])
    poke(bus.paths.control_socket, "modules_changed")
    root = _root(tmp_path)
    agent = Agent("--root", str(root), "--run-dir", str(tmp_path / "run"), "--cmdline", runtime_line(bus, MAC))
    agents.append(agent)
    agent.wait_for("event=node_welcomed")
    assert "module=passwdfile" not in agent.text() and "module=masterauth" not in agent.text()
    assert read(root / "etc" / "passwd") == LOCAL
    _wait(lambda: "module_conflict" in bus.log_text(), "no module_conflict in the bus log")
    assert "masterauth,passwdfile" in bus.log_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_master_restart_during_checkins_loses_nothing(paths: object, tmp_path: Path, agents: list[Agent]) -> None:
    from perceus.master.config import Paths

    assert isinstance(paths, Paths)
    set_interval(paths, 1)
    add_nodes(paths, NewNode(nodeid=MAC, hostname="n0001"))
    port, events = _free_port(), _free_port()
    bind = f"tcp://127.0.0.1:{port}"
    bus = start_local_bus(paths, bind=bind)
    try:
        assert cli(paths, "module", "activate", "passwdfile")[0] == 0
        base = _passwdfile(paths, ALICE)
        root = _root(tmp_path)
        line = (f"perceus.mode=runtime perceus.master=127.0.0.1:{port} perceus.events=127.0.0.1:{events} "
                f"perceus.node={MAC}")  # fmt: skip
        agent = Agent("--root", str(root), "--run-dir", str(tmp_path / "run"), "--cmdline", line)
        agents.append(agent)
        agent.wait_for("event=checked_in", count=3)
        assert bus.stop() == 0
        before = agent.count("event=checked_in")
        with SQLiteStore(paths.database) as store:
            node = store.get(MAC)
        assert node is not None and node.status == "ready"
        stopped_at = time.time()
        assert node.lastcontact > stopped_at - 3  # the last check-ins were committed at shutdown
        (base / "node").mkdir(exist_ok=True)
        (base / "node" / "n0001").write_text(BOB)  # changed while the master is away
        agent.wait_for("event=checkin_failed", timeout=30)
        bus = start_local_bus(paths, bind=bind)
        agent.wait_for("event=checked_in", count=before + 2, timeout=60)
        _wait(lambda: "bob" in read(root / "etc" / "passwd"), f"bob never arrived:\n{agent.text()}")
        assert agent.proc.poll() is None
        with SQLiteStore(paths.database) as store:
            node = store.get(MAC)
        _wait(lambda: _lastcontact(paths) > stopped_at, "no check-in recorded after the restart")
        assert read(root / "etc" / "passwd").endswith(ALICE + BOB)
    finally:
        bus.stop()


def _lastcontact(paths: object) -> float:
    with SQLiteStore(paths.database) as store:  # type: ignore[attr-defined]
        node = store.get(MAC)
    return node.lastcontact if node is not None else 0.0
