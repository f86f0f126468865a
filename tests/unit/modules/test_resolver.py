"""actions_for: which module actions a node gets per state, the conflict safety net, caching and invalidation."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from perceus.master.config import Paths
from perceus.master.modules import accounts, modprobe
from perceus.master.modules.resolver import Resolver
from perceus.master.store.models import Activation, Node

NODE = Node(nodeid="52:54:00:00:00:01", hostname="n0001", group="gpu", vnfs="deb12")


def _nss() -> accounts.NssAccounts:
    users = [pwd.struct_passwd(("alice", "x", 1000, 1000, "", "/home/alice", "/bin/bash"))]
    groups = [grp.struct_group(("alice", "x", 1000, []))]
    return accounts.NssAccounts(getpwall=lambda: users, getgrall=lambda: groups, watch=())


@pytest.fixture
def clock() -> list[float]:
    return [1000.0]


@pytest.fixture
def resolver(paths: Paths, clock: list[float], tmp_path: Path) -> Resolver:
    hosts = tmp_path / "hosts"
    hosts.write_text("10.0.1.1 n0001\n")
    return Resolver(paths, hosts_file=hosts, nss=_nss(), clock=lambda: clock[0],
                    net_lookup=lambda dev: ("10.0.0.1", "255.255.0.0"))  # fmt: skip


def _act(*roles: tuple[str, str, str, str]) -> list[Activation]:
    return [Activation(*r) for r in roles]


def kinds(actions: tuple) -> list[str]:  # type: ignore[type-arg]
    return [f"{a.module}.{a.kind}" for a in actions]


def test_actions_per_state_and_boot(resolver: Resolver) -> None:
    resolver.set_activations(
        _act(("hostname", "init", "all", ""), ("masterauth", "ready", "all", ""),
             ("syncnodes", "ready", "group", "gpu"), ("xcpu", "init", "node", "n0002"))
    )  # fmt: skip
    assert kinds(resolver.actions_for(NODE, "init")) == ["hostname.set"]
    assert kinds(resolver.actions_for(NODE, "ready")) == ["masterauth.passwd", "masterauth.group", "syncnodes.assigned"]
    boot = kinds(resolver.actions_for(NODE, "boot"))
    assert boot == ["hostname.set", "masterauth.passwd", "masterauth.group", "syncnodes.assigned"]
    passwd = resolver.actions_for(NODE, "ready")[0].data["entries"]
    assert passwd == [["alice", "x", 1000, 1000, "", "/home/alice", "/bin/bash"]]


def test_conflict_at_action_time_drops_user_actions_and_logs(resolver: Resolver) -> None:
    resolver.set_activations(_act(("masterauth", "ready", "all", ""), ("passwdfile", "ready", "node", "n0001"),
                                  ("hostname", "ready", "all", "")))  # fmt: skip
    with capture_logs() as logs:
        assert kinds(resolver.actions_for(NODE, "ready")) == ["hostname.set"]
    (err,) = [e for e in logs if e["event"] == "module_conflict"]
    assert err["log_level"] == "error" and err["modules"] == "masterauth,passwdfile"
    other = Node(nodeid="52:54:00:00:00:02", hostname="n0002")
    assert kinds(resolver.actions_for(other, "ready")) == ["hostname.set", "masterauth.passwd", "masterauth.group"]


def test_cached_per_node_and_state_until_a_file_changes(resolver: Resolver, paths: Paths, clock: list[float]) -> None:
    resolver.set_activations(_act(("modprobe", "init", "all", "")))
    conf = paths.config_dir / "modules" / "modprobe"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("all: e1000\ngpu: nvidia\nn0002: skip\n")
    assert resolver.actions_for(NODE, "init")[0].data == {"modules": ["e1000", "nvidia"]}
    computed = resolver.computed
    for _ in range(100):
        resolver.actions_for(NODE, "init")
    assert resolver.computed == computed
    conf.write_text("all: e1000 bonding\n")
    os.utime(conf, ns=(1, 1))
    clock[0] += 2
    assert resolver.actions_for(NODE, "init")[0].data == {"modules": ["e1000", "bonding"]}
    moved = Node(nodeid=NODE.nodeid, hostname="n0001", group="cpu")  # a node change is part of the key
    assert resolver.actions_for(moved, "init")[0].data == {"modules": ["e1000", "bonding"]}


def test_broken_module_config_skips_that_module_only(resolver: Resolver, paths: Paths) -> None:
    resolver.set_activations(_act(("ipaddr", "init", "all", ""), ("hostname", "init", "all", "")))
    conf = paths.config_dir / "modules" / "ipaddr"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("* eth0:[default]/[default]\nn0001\n")
    with capture_logs() as logs:
        assert kinds(resolver.actions_for(NODE, "init")) == ["hostname.set"]
    assert any(e["event"] == "module_config_invalid" and "ipaddr:2" in e["error"] for e in logs)


def test_ipaddr_default_rule_without_a_file(resolver: Resolver) -> None:
    resolver.set_activations(_act(("ipaddr", "init", "all", "")))
    (action,) = resolver.actions_for(NODE, "init")
    assert [i["address"] for i in action.data["interfaces"]] == ["10.0.1.1", "10.0.1.1"]


def test_stateful_flags(resolver: Resolver, paths: Paths) -> None:
    resolver.set_activations(_act(("stateful", "init", "all", ""), ("stateful", "ready", "all", "")))
    base = paths.config_dir / "modules" / "stateful"
    assert resolver.actions_for(NODE, "init")[0].data == {"install": True}  # never installed
    resolver.actions_for(NODE, "ready")
    assert (base / "ready" / "n0001").exists()
    assert resolver.actions_for(NODE, "init")[0].data == {"install": False}
    (base / "reinit" / "group").mkdir(parents=True)
    (base / "reinit" / "group" / "gpu").touch()
    assert resolver.actions_for(NODE, "init")[0].data == {"install": True}
    assert not (base / "reinit" / "group" / "gpu").exists() and not (base / "ready" / "n0001").exists()


def test_modprobe_selector_matches_only_the_nodes_own_names() -> None:
    entries = modprobe.parse("all: a\ngpu: b\ndeb12: c\nn0001: d\nn000: x\n[gn]pu: y\n")
    assert modprobe.modules_for(entries, NODE) == ("a", "b", "c", "d")
    with pytest.raises(Exception, match="not a kernel module name"):
        modprobe.parse("all: ../../evil\n")
