"""The ipaddr language (1.x ref §8.3): selection, devices and aliases, lookups, options, errors."""

from __future__ import annotations

import pytest

from perceus.errors import ConfigError
from perceus.master.modules.ipaddr import DEFAULT_RULES, Evaluator, Interface, MasterNet, nodenum, parse, parse_hosts

HOSTS = parse_hosts("""
127.0.0.1 localhost
10.0.1.15 n0015 n0015.cluster   # comment
10.1.1.15 n0015-ib
::1 ip6-localhost
""")
MASTER = {"eth0": ("10.0.0.1", "255.255.0.0"), "eth1": ("192.168.1.1", "255.255.255.0")}


def _net(device: str) -> tuple[str, str]:
    return MASTER.get(device, ("", ""))


def run(text: str, node: str = "n0015") -> list[Interface]:
    return Evaluator(HOSTS, MasterNet("eth0", _net)).interfaces(parse(text), node)


def one(text: str, node: str = "n0015") -> dict[str, object]:
    (iface,) = run(text, node)
    return iface.as_data()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("* eth0:10.0.1.[nodenum]/255.255.255.0/10.0.0.254",
         {"device": "eth0", "address": "10.0.1.15", "prefixlen": 24, "gateway": "10.0.0.254", "dhcp": False}),
        ("* eth0:[default]/[default]", {"address": "10.0.1.15", "prefixlen": 16, "gateway": ""}),
        ("* eth0:[hostfile]/[eth1]/[default]", {"address": "10.0.1.15", "prefixlen": 24, "gateway": "10.0.0.1"}),
        ("* eth0:[default]/[default:eth1]/[default:eth1]", {"prefixlen": 24, "gateway": "192.168.1.1"}),
        ("* ib0:[hostfile:NAME-ib]/255.255.0.0", {"device": "ib0", "address": "10.1.1.15", "prefixlen": 16}),
        ("* eth0:dhcp", {"dhcp": True, "address": ""}),
        ("* eth0:[default:nobody]/[default]", {"dhcp": True}),  # lookup failed → DHCP (and a warning)
        ("* eth0_1:10.9.0.[nodenum]/255.0.0.0", {"device": "eth0:1", "alias_of": "eth0", "prefixlen": 8}),
        ("* eth0(MTU=9000&TYPE=bridge):dhcp", {"options": {"MTU": "9000", "TYPE": "bridge"}}),
        ("n00* eth0:1.2.3.4/255.255.255.255", {"address": "1.2.3.4", "prefixlen": 32}),
        ("n001. eth0:1.2.3.4", {"address": "1.2.3.4", "prefixlen": 32}),  # 1.x: other regex syntax kept
    ],
)  # fmt: skip
def test_language_table(text: str, expected: dict[str, object]) -> None:
    got = one(text)
    assert {k: got[k] for k in expected} == expected


def test_exact_name_wins_outright_and_stops() -> None:
    text = "* eth0:dhcp eth1:dhcp\nn0015 eth0:10.0.0.15/255.0.0.0\n* eth2:dhcp\n"
    assert [i.device for i in run(text)] == ["eth0"]


def test_patterns_accumulate_and_last_line_wins_per_device() -> None:
    text = "* eth0:dhcp eth1:dhcp\nn* eth0:10.0.0.[nodenum]/255.0.0.0\nx* eth1:1.1.1.1\n"
    result = {i.device: i for i in run(text)}
    assert result["eth0"].address == "10.0.0.15" and not result["eth0"].dhcp
    assert result["eth1"].dhcp
    assert [i.device for i in run(text)] == ["eth1", "eth0"]


def test_no_match_no_interfaces() -> None:
    assert run("gpu* eth0:dhcp\n") == []


def test_default_rule() -> None:
    eth0, eth1 = run(DEFAULT_RULES)
    assert (eth0.address, eth0.prefixlen, eth0.gateway) == ("10.0.1.15", 16, "")
    assert (eth1.address, eth1.gateway) == ("10.0.1.15", "10.0.0.1")


@pytest.mark.parametrize(("name", "num"), [("n0015", "15"), ("node0000", "0"), ("gpu", ""), ("n1x2", "2")])
def test_nodenum(name: str, num: str) -> None:
    assert nodenum(name) == num


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("n0001\n", "names no device"),
        ("* eth0\n", "is not DEV"),
        ("* eth0(mtu=9000):dhcp\n", "option"),
        ("* eth0:1/2/3/4\n", "more than"),
        ("n[0-9 eth0:dhcp\n", "pattern"),
    ],
)
def test_syntax_errors_name_the_line(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=rf"ipaddr:1: .*{error}"):
        parse(text, "ipaddr")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("* eth0:10.0.[nodenum]00.1/255.255.255.0", "1500"),
        ("* eth0:10.0.1.999/255.255.255.0", "Octet 999"),
        ("* eth0:10.0.0.1/255.0.255.0", "netmask"),
        ("* eth0:10.0.0.1/255.0.0.0/gw", "4 octets"),
        ("* eth0:10.0.0.1/[eth9]", "no IPv4 netmask"),
    ],
)
def test_bad_computed_values_are_refused(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        run(text)
