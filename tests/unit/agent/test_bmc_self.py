"""Reading the node's own BMC: IPMI response bytes laid out as the IPMI 2.0 specification gives them, the
ioctl ABI of linux/ipmi.h, and the cheap silent path on nodes without a BMC."""

from __future__ import annotations

import ctypes
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from perceus.agent import bmc_self

# IPMI 2.0 §23.2 (table 23-3), Get LAN Configuration Parameters response: completion code, parameter revision
# (11h for the parameters of this specification), then the parameter's data.
# Parameter 3, IP Address: 4 bytes, MS-byte first.
PARAM3_10_1_0_17 = bytes([0x00, 0x11, 0x0A, 0x01, 0x00, 0x11])
# Parameter 3 of a BMC with no address yet.
PARAM3_UNSET = bytes([0x00, 0x11, 0x00, 0x00, 0x00, 0x00])
# Parameter 4, IP Address Source: [3:0] 0h unspecified, 1h static, 2h DHCP, 3h BIOS/system software, 4h other.
PARAM4_DHCP = bytes([0x00, 0x11, 0x02])
PARAM4_STATIC_RESERVED_BITS = bytes([0x00, 0x11, 0xF1])  # bits 7:4 reserved: ignored
# Parameter 5, MAC Address: 6 bytes, MS-byte first.
PARAM5 = bytes([0x00, 0x11, 0xD0, 0x94, 0x66, 0xAA, 0xBB, 0xCC])
# Completion code 80h: parameter not supported; C1h: invalid command.
NOT_SUPPORTED = bytes([0x80])
INVALID_COMMAND = bytes([0xC1])
# §22.24 (table 22-29), Get Channel Info response: completion code, channel number, medium type [6:0]
# (table 6-3: 04h = 802.3 LAN, 01h = IPMB, 0Ch = system interface), protocol type (01h IPMB-1.0, 05h KCS),
# session support / active sessions, IANA (3 bytes), auxiliary (2 bytes).
CHANNEL1_LAN = bytes([0x00, 0x01, 0x04, 0x01, 0x80, 0xF2, 0x1B, 0x00, 0x00, 0x00])
CHANNEL0_IPMB = bytes([0x00, 0x00, 0x01, 0x01, 0x00, 0xF2, 0x1B, 0x00, 0x00, 0x00])
NOT_PRESENT = bytes([0xCB])  # requested data not present


def test_ip_address_parameter() -> None:
    assert bmc_self.ip_text(bmc_self.lan_parameter(PARAM3_10_1_0_17, 4)) == "10.1.0.17"
    assert bmc_self.ip_text(bmc_self.lan_parameter(PARAM3_UNSET, 4)) == ""  # 0.0.0.0: not configured
    assert bmc_self.lan_parameter(NOT_SUPPORTED, 4) is None
    assert bmc_self.ip_text(bmc_self.lan_parameter(PARAM3_10_1_0_17[:4], 4)) == ""  # short answer


def test_address_source_and_mac_parameters() -> None:
    assert bmc_self.ip_source(bmc_self.lan_parameter(PARAM4_DHCP, 1)) == "dhcp"
    assert bmc_self.ip_source(bmc_self.lan_parameter(PARAM4_STATIC_RESERVED_BITS, 1)) == "static"
    assert bmc_self.ip_source(bmc_self.lan_parameter(INVALID_COMMAND, 1)) == ""
    assert bmc_self.mac_text(bmc_self.lan_parameter(PARAM5, 6)) == "D0:94:66:AA:BB:CC"
    assert bmc_self.mac_text(bmc_self.lan_parameter(bytes([0, 0x11, 0, 0, 0, 0, 0, 0]), 6)) == ""


def test_channel_medium() -> None:
    assert bmc_self.channel_medium(CHANNEL1_LAN) == bmc_self.MEDIUM_LAN
    assert bmc_self.channel_medium(CHANNEL0_IPMB) == 0x01
    assert bmc_self.channel_medium(NOT_PRESENT) is None


@given(st.binary(max_size=40), st.integers(min_value=0, max_value=8))
def test_any_bytes_parse_without_raising(data: bytes, length: int) -> None:
    value = bmc_self.lan_parameter(data, length)
    assert value is None or len(value) == length
    assert isinstance(bmc_self.ip_text(value), str) and isinstance(bmc_self.mac_text(value), str)
    assert isinstance(bmc_self.ip_source(value), str)
    assert bmc_self.channel_medium(data) is None or 0 <= (bmc_self.channel_medium(data) or 0) < 128


def test_ioctl_numbers_and_structs_match_linux_ipmi_h() -> None:
    # x86_64 values of linux/ipmi.h (_IOR('i', 13, struct ipmi_req), _IOWR('i', 11, struct ipmi_recv)),
    # as strace prints them for ipmitool.
    assert bmc_self.IPMICTL_SEND_COMMAND == 0x8028690D
    assert bmc_self.IPMICTL_RECEIVE_MSG_TRUNC == 0xC030690B
    assert ctypes.sizeof(bmc_self._Req) == 40
    assert ctypes.sizeof(bmc_self._Recv) == 48
    assert ctypes.sizeof(bmc_self._Addr) == 40  # struct ipmi_addr: int, short, char[32], padded


def test_no_device_is_silent_and_cheap(tmp_path: Path) -> None:
    start = time.monotonic()
    assert bmc_self.read((tmp_path / "ipmi0", tmp_path / "ipmi/0")) == {}
    assert time.monotonic() - start < 0.05


def test_modules_only_where_the_firmware_declares_a_bmc(tmp_path: Path) -> None:
    sys = tmp_path / "sys"
    (sys / "bus/acpi/devices/PNP0A03:00").mkdir(parents=True)
    (sys / "bus/platform/devices/serial8250").mkdir(parents=True)
    assert bmc_self.modules_needed(sys) == ()
    (sys / "bus/acpi/devices/IPI0001:00").mkdir()  # ACPI IPMI device (QEMU's isa-ipmi-kcs, most servers)
    assert bmc_self.modules_needed(sys) == ("ipmi_si", "ipmi_devintf")
    other = tmp_path / "sys2"
    (other / "bus/platform/devices/dmi-ipmi-si.0").mkdir(parents=True)  # SMBIOS type 38 only
    assert bmc_self.firmware_declares_ipmi(other)
