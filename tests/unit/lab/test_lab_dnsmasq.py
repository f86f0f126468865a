"""The lab's dnsmasq command line and iPXE script."""

from __future__ import annotations

from pathlib import Path

from perceus.lab.dnsmasq import DnsmasqConfig, ipxe_script
from perceus.lab.netns import Subnet


def test_dhcp_only() -> None:
    argv = DnsmasqConfig("br0", Subnet(0), Path("/w")).argv()
    assert "--port=0" in argv
    assert "--conf-file=/dev/null" in argv
    assert "--interface=br0" in argv and "--bind-interfaces" in argv
    assert "--dhcp-range=10.77.0.100,10.77.0.199,255.255.255.0,1h" in argv
    assert "--dhcp-option=option:router,10.77.0.1" in argv
    # The router-advertisement fix for iPXE's IPv6 wait.
    assert "--enable-ra" in argv and "--dhcp-range=fd77:0::,ra-only" in argv
    assert "--pid-file=/w/dnsmasq.pid" in argv
    assert not any(a.startswith(("--enable-tftp", "--dhcp-boot")) for a in argv)


def test_tftp_and_boot_file() -> None:
    config = DnsmasqConfig("br0", Subnet(3), Path("/w"), tftp_root=Path("/t"), boot_file="boot.ipxe")
    argv = config.argv()
    assert "--enable-tftp" in argv and "--tftp-root=/t" in argv
    assert "--dhcp-boot=boot.ipxe" in argv
    assert "--dhcp-range=10.77.3.100,10.77.3.199,255.255.255.0,1h" in argv


def test_subnet() -> None:
    s = Subnet(12)
    assert (s.gateway, s.ipv6_gateway, s.ipv6_prefix) == ("10.77.12.1", "fd77:c::1", "fd77:c::")


def test_ipxe_script() -> None:
    script = ipxe_script("vmlinuz", "stage1.cpio.zst", "console=ttyS0 perceus.master=10.77.0.1:5000")
    assert script.splitlines() == [
        "#!ipxe",
        "kernel tftp://${next-server}/vmlinuz console=ttyS0 perceus.master=10.77.0.1:5000",
        "initrd tftp://${next-server}/stage1.cpio.zst",
        "boot",
    ]
