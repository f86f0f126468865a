"""Kernel command line → AgentConfig: a table of accepted lines and of rejected values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perceus.agent import cmdline
from perceus.agent.cmdline import AgentConfig, Master, Mode, StaticNet
from perceus.errors import ConfigError

GOOD: list[tuple[str, dict[str, object]]] = [
    ("", {}),
    ("quiet console=ttyS0", {"consoles": ("ttyS0",)}),
    ("perceus.master=10.0.0.1:9987", {"masters": (Master("10.0.0.1", 9987),)}),
    ("perceus.master=10.0.0.1", {"masters": (Master("10.0.0.1", 9987),)}),
    ("perceus.master=m1:1,m2:2", {"masters": (Master("m1", 1), Master("m2", 2))}),
    ("perceus.master=[fd00::1]:9000", {"masters": (Master("fd00::1", 9000),)}),
    ("masterip=10.1.1.1", {"masters": (Master("10.1.1.1"),)}),
    ("perceus.master=a:1 masterip=a:1", {"masters": (Master("a", 1),)}),
    ("perceus.events=10.0.0.1:7000", {"events": Master("10.0.0.1", 7000)}),
    ("perceus.debug=3", {"debug": 3}),
    ("enable-debug=2", {"debug": 2}),
    ("console=tty0 console=ttyS0,115200n8", {"consoles": ("tty0", "ttyS0,115200n8")}),
    ("perceus.kmods=e1000,sd_mod enable-kmods=ahci", {"kmods": ("e1000", "sd_mod", "ahci")}),
    ("noload=floppy,pcspkr", {"noload": ("floppy", "pcspkr")}),
    ("dhcp_eth=eth1", {"dhcp_eth": "eth1"}),
    ("dhcp_mac=52-54-00-aa-bb-cc", {"dhcp_mac": "52:54:00:AA:BB:CC"}),
    ("eth_mtu=9000", {"eth_mtu": 9000}),
    ("perceus.nodename=n0042", {"nodename": "n0042"}),
    ("perceusd_args=nodename=n0007", {"nodename": "n0007"}),
    ("perceus.mode=runtime perceus.node=52:54:00:00:00:01", {"mode": Mode.RUNTIME, "node": "52:54:00:00:00:01"}),
    ("perceus.net=10.0.0.5/24,10.0.0.1,eth0", {"net": StaticNet("10.0.0.5", 24, "10.0.0.1", "eth0")}),
    ("perceus.net=10.0.0.5/16,", {"net": StaticNet("10.0.0.5", 16, "", "")}),
    ("perceus.debug=1 -- perceus.debug=3", {"debug": 1}),  # after `--` the words are init's
    ('foo="a b" perceus.debug=2', {"debug": 2}),
]

BAD = [
    ("perceus.debug=4", "perceus.debug"),
    ("perceus.debug=x", "perceus.debug"),
    ("perceus.master=", "perceus.master"),
    ("perceus.master=host:99999", "perceus.master"),
    ("perceus.master=h;rm:1", "perceus.master"),
    ("masterip=cloud", "masterip"),
    ("eth_mtu=10", "eth_mtu"),
    ("dhcp_mac=zz:zz", "dhcp_mac"),
    ("perceus.mode=install", "perceus.mode"),
    ("perceus.net=10.0.0.5,10.0.0.1", "perceus.net"),
    ("perceus.net=300.0.0.5/24,10.0.0.1", "perceus.net"),
    ("perceus.kmods=a;b", "perceus.kmods"),
    ("perceus.nodename=-bad", "perceus.nodename"),
    ("console=tty0;x", "console"),
]


@pytest.mark.parametrize(("line", "expected"), GOOD)
def test_accepted(line: str, expected: dict[str, object]) -> None:
    config = cmdline.parse(line)
    for key, value in expected.items():
        assert getattr(config, key) == value
    untouched = {k for k in AgentConfig.__dataclass_fields__ if k not in expected and k != "unknown"}
    defaults = AgentConfig()
    assert {k: getattr(config, k) for k in untouched} == {k: getattr(defaults, k) for k in untouched}


@pytest.mark.parametrize(("line", "key"), BAD)
def test_rejected_with_key_in_message(line: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        cmdline.parse(line)
    assert key in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_perceus_keys_are_kept_for_the_log() -> None:
    assert cmdline.parse("perceus.future=1 random=2").unknown == ("perceus.future",)


def test_event_endpoint_defaults_to_master_port_plus_one() -> None:
    assert cmdline.parse("perceus.master=m:9987").event_endpoint == Master("m", 9988)
    assert cmdline.parse("").event_endpoint is None


def test_handover_round_trips_through_the_parser() -> None:
    stage1 = cmdline.parse("perceus.master=10.0.0.1:9987 perceus.debug=1 console=ttyS0")
    words = cmdline.handover(stage1, node="52:54:00:00:00:01", net=StaticNet("10.0.0.5", 24, "10.0.0.1", "eth0"),
                             master=None)  # fmt: skip
    runtime = cmdline.parse(" ".join(words))
    assert runtime.mode is Mode.RUNTIME
    assert runtime.node == "52:54:00:00:00:01"
    assert runtime.masters == stage1.masters
    assert runtime.net == StaticNet("10.0.0.5", 24, "10.0.0.1", "eth0")
    assert runtime.debug == 1


@given(st.text(max_size=200))
def test_any_text_parses_or_raises_config_error(text: str) -> None:
    try:
        cmdline.parse(text)
    except ConfigError:
        pass
