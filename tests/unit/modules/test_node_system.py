"""Node side: networkd files for ipaddr, hostname, modprobe, stateful flag, syncnodes (utmp), stage-one filter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perceus.agent.modules import netconf, system
from perceus.agent.modules.apply import Applier
from perceus.agent.modules.syncnodes import SyncNodes, logged_in, pack_utmp
from perceus.errors import ConfigError
from perceus.protocol.messages import Action

ETH0 = {"device": "eth0", "alias_of": "", "dhcp": False, "address": "10.0.1.15", "prefixlen": 24,
        "gateway": "10.0.0.1", "options": {"MTU": "9000", "TYPE": "ethernet"}}  # fmt: skip
ALIAS = {"device": "eth0:1", "alias_of": "eth0", "address": "10.9.0.15", "prefixlen": 8}
IB0 = {"device": "ib0", "dhcp": True}


def test_networkd_files(tmp_path: Path) -> None:
    changed = netconf.apply(tmp_path, {"interfaces": [ETH0, ALIAS, IB0]})
    assert len(changed) == 2
    eth0 = (tmp_path / "etc/systemd/network/10-perceus-eth0.network").read_text()
    assert "Name=eth0" in eth0 and "Address=10.0.1.15/24\nAddress=10.9.0.15/8\nGateway=10.0.0.1" in eth0
    assert "MTUBytes=9000" in eth0
    assert "DHCP=ipv4" in (tmp_path / "etc/systemd/network/10-perceus-ib0.network").read_text()
    assert netconf.apply(tmp_path, {"interfaces": [ETH0, ALIAS, IB0]}) == []
    netconf.apply(tmp_path, {"interfaces": [IB0]})  # eth0 no longer configured: our file goes
    assert sorted(p.name for p in (tmp_path / "etc/systemd/network").iterdir()) == ["10-perceus-ib0.network"]


@pytest.mark.parametrize(
    "bad",
    [
        {**ETH0, "device": "../../etc/x"},
        {**ETH0, "address": "10.0.1.999"},
        {**ETH0, "gateway": "nope"},
        {**ALIAS, "device": "eth1:1"},
        "eth0",
    ],
)
def test_bad_interfaces_write_nothing(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ConfigError):
        netconf.apply(tmp_path, {"interfaces": [IB0, bad]})
    assert not (tmp_path / "etc").exists()


def test_hostname_and_modprobe_validation(tmp_path: Path) -> None:
    assert system.set_hostname(tmp_path, "n0001", live=False)
    assert not system.set_hostname(tmp_path, "n0001", live=False)
    with pytest.raises(ConfigError):
        system.set_hostname(tmp_path, "bad name;reboot", live=False)
    with pytest.raises(ConfigError):
        system.module_names({"modules": ["e1000", "-r"]})
    assert system.module_names({"modules": ["e1000", "bonding"]}) == ["e1000", "bonding"]


def test_stage_one_applies_only_its_modules(tmp_path: Path) -> None:
    loaded: list[str] = []
    applier = Applier(root=tmp_path, stage1=True, flags_dir=tmp_path / "run",
                      load_kmods=lambda mods: loaded.extend(mods) or [])  # fmt: skip
    outcomes = applier.apply([
        Action(module="hostname", kind="set", data={"hostname": "n1"}),
        Action(module="modprobe", kind="load", data={"modules": ["dummy"]}),
        Action(module="stateful", kind="install", data={"install": True}),
        Action(module="xcpu", kind="stay", data={}),
    ])  # fmt: skip
    assert outcomes["hostname.set"] == "skipped" and not (tmp_path / "etc").exists()
    assert loaded == ["dummy"]
    assert (tmp_path / "run" / "stateful").read_text() == "INIT=yes\n"
    assert applier.xcpu


def test_failed_kmods_are_a_module_failure(tmp_path: Path) -> None:
    applier = Applier(root=tmp_path, load_kmods=lambda mods: [f"{m}: not found" for m in mods])
    assert applier.apply([Action(module="modprobe", kind="load", data={"modules": ["nope"]})]) == {
        "modprobe.load": "failed: modprobe: nope: not found"}  # fmt: skip


def test_utmp_users(tmp_path: Path) -> None:
    utmp = tmp_path / "utmp"
    utmp.write_bytes(pack_utmp("alice", os.getpid()) + pack_utmp("ghost", 999_999_999) + b"\0" * 384)
    assert logged_in(utmp, alive=lambda pid: pid == os.getpid()) == ["alice"]
    assert logged_in(tmp_path / "missing") == []


def test_syncnodes_reboots_when_nobody_is_logged_in_else_warns(tmp_path: Path) -> None:
    events: list[str] = []
    utmp = tmp_path / "utmp"
    sync = SyncNodes(tmp_path, reboot=lambda: events.append("reboot"), wall=events.append, utmp=utmp)
    assert sync.apply({"vnfs": "deb12", "enabled": True}) == "recorded"
    assert sync.apply({"vnfs": "deb12", "enabled": True}) == "unchanged"
    utmp.write_bytes(pack_utmp("alice", os.getpid()))
    assert sync.apply({"vnfs": "el9", "enabled": True}) == "warned"
    assert "capsule changed to 'el9'" in events[-1] and "alice" in events[-1]
    utmp.write_bytes(b"")
    assert sync.apply({"vnfs": "deb12", "enabled": False}) == "rebooting"
    assert events[-1] == "reboot"
    with pytest.raises(ConfigError):
        sync.apply({"enabled": True})


def test_ssh_host_keys_action_installs_only_known_files(tmp_path: Path) -> None:
    applier = Applier(root=tmp_path)
    files = {"ssh_host_ed25519_key": "SECRET\n", "ssh_host_ed25519_key.pub": "PUBLIC\n", "../../evil": "x"}
    out = applier.apply([Action(module="sshkeys", kind="host_keys", data={"files": files})])
    assert out == {"sshkeys.host_keys": "2 host key files"}
    secret = tmp_path / "etc/ssh/ssh_host_ed25519_key"
    assert secret.read_text() == "SECRET\n" and secret.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "etc/ssh/ssh_host_ed25519_key.pub").stat().st_mode & 0o777 == 0o644
    assert not (tmp_path / "evil").exists()
