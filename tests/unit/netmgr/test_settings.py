"""NetSettings: Perceus 1.x range defaults, perceus.conf validation, which address nodes are told."""

from __future__ import annotations

import ipaddress

import pytest

from perceus.errors import ConfigError
from perceus.master.config import MasterConfig, Paths
from perceus.master.netmgr.settings import NetSettings, default_range

IF24 = ipaddress.IPv4Interface("10.77.0.1/24")


def _config(paths: Paths, extra: str = "", device: str = "br0") -> MasterConfig:
    text = paths.perceus_conf.read_text().replace("master network device = eth1", f"master network device = {device}")
    paths.perceus_conf.write_text(text + extra)
    return MasterConfig.load(paths)


@pytest.mark.parametrize(
    ("network", "start", "end"),
    [
        ("10.77.0.0/24", "10.77.0.192", "10.77.0.254"),
        ("172.16.0.0/16", "172.16.254.255", "172.16.255.254"),
        ("10.0.0.0/8", "10.255.254.255", "10.255.255.254"),
        ("192.168.1.0/28", "192.168.1.12", "192.168.1.14"),
        ("192.168.1.0/30", "192.168.1.3", "192.168.1.2"),
    ],
)
def test_default_range_matches_perceus1(network: str, start: str, end: str) -> None:
    got = default_range(ipaddress.IPv4Network(network))
    assert (str(got[0]), str(got[1])) == (start, end)


def test_tiny_network_has_no_range() -> None:
    with pytest.raises(ConfigError, match="too small"):
        default_range(ipaddress.IPv4Network("10.0.0.0/31"))


def test_defaults_from_interface(paths: Paths) -> None:
    s = NetSettings.build(_config(paths), address=IF24)
    assert (str(s.range_start), str(s.range_end), s.range_size) == ("10.77.0.192", "10.77.0.254", 63)
    assert (s.interface, s.lease_time, s.domain, s.log_dhcp, s.user, s.router) == ("br0", "1h", "", False, "", "")
    # bus address 0.0.0.0 in perceus.conf: nodes are sent to the interface's own address
    assert (s.master_host, s.bus_port, s.event_port) == ("10.77.0.1", 9987, 9988)
    assert (s.http_port, s.http_base, s.uefi_loader) == (9989, "http://10.77.0.1:9989", "ipxe.efi")


def test_explicit_keys(paths: Paths) -> None:
    conf = _config(
        paths,
        "dhcp range start = 10.77.0.100\ndhcp range end = 10.77.0.199\ndhcp lease time = 45m\n"
        "dns domain = cluster.example\ndhcp log = yes\ndnsmasq user = root\ndhcp router = 10.77.0.254\n"
        "stage1 append = panic=30 console=ttyS1,57600\nboot http port = 0\n",
    )
    s = NetSettings.build(conf, address=IF24, bus_host="10.77.0.5", bus_port=4000, event_port=4001)
    assert (str(s.range_start), str(s.range_end), s.lease_time) == ("10.77.0.100", "10.77.0.199", "45m")
    assert (s.domain, s.log_dhcp, s.user, s.router) == ("cluster.example", True, "root", "10.77.0.254")
    assert s.append == ("panic=30", "console=ttyS1,57600")
    assert (s.master_host, s.bus_port, s.event_port) == ("10.77.0.5", 4000, 4001)
    assert (s.http_port, s.http_base) == (0, "")


def test_wildcard_endpoint_falls_back_to_interface(paths: Paths) -> None:
    s = NetSettings.build(_config(paths), address=IF24, bus_host="0.0.0.0", bus_port=1)
    assert (s.master_host, s.bus_port) == ("10.77.0.1", 1)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("dhcp range start = 10.78.0.5\n", "outside br0's network 10.77.0.0/24"),
        ("dhcp range start = 10.77.0.200\ndhcp range end = 10.77.0.100\n", "is after dhcp range end"),
        ("dhcp range end = ten\n", "not an IPv4 address"),
        ("dhcp lease time = 1 hour\n", "not a dnsmasq lease time"),
        ("dns domain = bad_domain!\n", "not a DNS domain"),
        ("dhcp log = maybe\n", "not yes/no"),
        ("dnsmasq user = Root Admin\n", "not a user name"),
        ("stage1 append = a=${evil}\n", "iPXE would misread"),
        ("boot http port = 70000\n", "not a TCP port"),
        ("boot http port = http\n", "not a TCP port"),
        ("uefi loader = grubx64.efi\n", "not one of ipxe.efi, snponly.efi"),
    ],
)
def test_bad_values_are_one_line_errors(paths: Paths, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("$", r"\$")) as err:
        NetSettings.build(_config(paths, extra), address=IF24)
    assert "\n" not in str(err.value)


def test_device_without_address(paths: Paths) -> None:
    with pytest.raises(ConfigError, match="'br0' has no IPv4 address"):
        NetSettings.build(_config(paths), address=None)


def test_device_unset(paths: Paths) -> None:
    with pytest.raises(ConfigError, match="master network device"):
        NetSettings.build(_config(paths, device=""), address=IF24)
