"""dnsmasq.conf text from a perceus.conf table."""

from __future__ import annotations

import ipaddress

import pytest

from perceus.master.config import MasterConfig, Paths
from perceus.master.netmgr import dnsmasq_conf
from perceus.master.netmgr.files import NetFiles
from perceus.master.netmgr.settings import NetSettings

IF24 = ipaddress.IPv4Interface("10.77.0.1/24")
V6 = [ipaddress.IPv6Network("fd77::/64")]
ALWAYS = [
    "interface=br0",
    "bind-interfaces",
    "dhcp-authoritative",
    "no-ping",
    "enable-tftp",
    "dhcp-match=set:ipxe,175",
    "dhcp-userclass=set:ipxe,iPXE",
    "dhcp-match=set:efi,option:client-arch,7",
    "dhcp-match=set:efi,option:client-arch,9",
    "dhcp-option=tag:ipxe,encap:175,176,1",
    "dhcp-boot=tag:ipxe,boot.ipxe",
    "dhcp-boot=tag:!ipxe,tag:efi,ipxe.efi",
    "dhcp-boot=tag:!ipxe,tag:!efi,undionly.kpxe",
]


def _render(paths: Paths, extra: str, ipv6: list[ipaddress.IPv6Network]) -> list[str]:
    text = paths.perceus_conf.read_text().replace("master network device = eth1", "master network device = br0")
    paths.perceus_conf.write_text(text + extra)
    settings = NetSettings.build(MasterConfig.load(paths), address=IF24, ipv6=ipv6)
    return dnsmasq_conf.render(settings, NetFiles(paths)).splitlines()


# (perceus.conf additions, interface v6 prefixes, lines that must be there, lines that must not)
CASES = [
    (
        "",
        [],
        ["dhcp-range=10.77.0.192,10.77.0.254,255.255.255.0,1h", "port=0", "dhcp-lease-max=21600"],
        ["enable-ra", "log-dhcp", "expand-hosts", "dhcp-option=option:router,10.77.0.254"],
    ),
    ("", V6, ["enable-ra", "dhcp-range=fd77::,ra-only,64"], []),
    (
        "dns domain = cluster\n",
        [],
        ["domain=cluster", "local=/cluster/", "expand-hosts", "addn-hosts={state}/dnsmasq/dns-hosts"],
        ["port=0"],
    ),
    (
        "dhcp range start = 10.77.0.10\ndhcp range end = 10.77.0.250\ndhcp lease time = infinite\n",
        [],
        ["dhcp-range=10.77.0.10,10.77.0.250,255.255.255.0,infinite"],
        [],
    ),
    ("dhcp log = yes\ndnsmasq user = root\n", [], ["log-dhcp", "user=root"], []),
    ("dhcp router = 10.77.0.254\n", [], ["dhcp-option=option:router,10.77.0.254"], []),
]


@pytest.mark.parametrize(("extra", "ipv6", "present", "absent"), CASES)
def test_config_lines(
    paths: Paths, extra: str, ipv6: list[ipaddress.IPv6Network], present: list[str], absent: list[str]
) -> None:
    lines = _render(paths, extra, ipv6)
    state, etc = str(paths.state_dir), str(paths.config_dir)
    for line in [*ALWAYS, *present]:
        assert line.format(state=state) in lines
    for line in absent:
        assert line not in lines
    assert f"dhcp-hostsfile={state}/dnsmasq/hosts" in lines
    assert f"dhcp-leasefile={state}/dnsmasq/leases" in lines
    assert f"tftp-root={state}/tftp" in lines
    assert f"pid-file={state}/run/dnsmasq.pid" in lines
    assert f"log-facility={state}/log/dnsmasq.log" in lines
    assert [ln for ln in lines if ln][-1] == f"conf-dir={etc}/dnsmasq.d,*.conf"  # site additions last: they win


def test_uefi_loader_snponly(paths: Paths) -> None:
    lines = _render(paths, "uefi loader = snponly.efi\n", [])
    assert "dhcp-boot=tag:!ipxe,tag:efi,snponly.efi" in lines
    assert "dhcp-boot=tag:!ipxe,tag:efi,ipxe.efi" not in lines


def test_render_is_deterministic(paths: Paths) -> None:
    assert _render(paths, "", V6) == _render(paths, "", V6)


def test_lease_max_grows_with_a_big_pool(paths: Paths) -> None:
    text = paths.perceus_conf.read_text().replace("master network device = eth1", "master network device = br0")
    paths.perceus_conf.write_text(text + "dhcp range start = 10.0.1.0\n")
    settings = NetSettings.build(MasterConfig.load(paths), address=ipaddress.IPv4Interface("10.0.0.1/16"))
    lines = dnsmasq_conf.render(settings, NetFiles(paths)).splitlines()
    assert settings.range_size == 65534 - 256 + 1  # 10.0.1.0 … 10.0.255.254
    assert f"dhcp-lease-max={settings.range_size + dnsmasq_conf.KNOWN_NODES_HEADROOM}" in lines
