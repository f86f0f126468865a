"""The node's own BMC LAN address, asked of the BMC through the kernel's IPMI device (`/dev/ipmi0`).

Stage one carries no ipmitool: the agent sends "Get Channel Info" (App, netfn 0x06 cmd 0x42) to find the
802.3 LAN channels and "Get LAN Configuration Parameters" (Transport, netfn 0x0C cmd 0x02; parameter 3 IP
address, 4 address source, 5 MAC) itself, with the `IPMICTL_SEND_COMMAND` / `IPMICTL_RECEIVE_MSG_TRUNC`
ioctls of `linux/ipmi.h` (fcntl + ctypes structs, no third-party code).  The kernel side is `ipmi_si` (binds
the KCS/BT/SMIC interface the firmware declares in ACPI `IPI0001` or SMBIOS type 38) and `ipmi_devintf` (the
character device, which nothing loads by modalias): `modules_needed()` names both when the firmware declares
an IPMI interface, so nodes without a BMC never load or probe anything.

What this returns is node-reported and unauthenticated: the master shows it as a hint, never uses it for
anything security-relevant.  A missing device is silent and costs a few `stat` calls.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import ipaddress
import os
import select
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

log = structlog.get_logger("perceus.agent.bmc_self")

DEVICES = (Path("/dev/ipmi0"), Path("/dev/ipmi/0"), Path("/dev/ipmidev/0"))
MODULES = ("ipmi_si", "ipmi_devintf")  # ipmi_msghandler comes with them (modules.dep)

# linux/ipmi.h
IPMI_SYSTEM_INTERFACE_ADDR_TYPE = 0x0C
IPMI_BMC_CHANNEL = 0x0F
IPMI_MAX_ADDR_SIZE = 32
IPMI_RESPONSE_RECV_TYPE = 1
# IPMI 2.0 spec: network functions, commands, channel medium type 0x04 (802.3 LAN, table 6-3)
NETFN_APP, CMD_GET_CHANNEL_INFO = 0x06, 0x42
NETFN_TRANSPORT, CMD_GET_LAN_CONFIG = 0x0C, 0x02
MEDIUM_LAN = 0x04
PARAM_IP, PARAM_IP_SOURCE, PARAM_MAC = 3, 4, 5
IP_SOURCES = {0: "unspecified", 1: "static", 2: "dhcp", 3: "bios", 4: "other"}  # parameter 4, bits 3:0
CHANNELS = range(1, 12)  # 1..0x0B are the implementation-specific channels; 0 is IPMB, 0x0E/0x0F special


class _SystemInterfaceAddr(ctypes.Structure):
    _fields_ = (("addr_type", ctypes.c_int), ("channel", ctypes.c_short), ("lun", ctypes.c_ubyte))


class _Addr(ctypes.Structure):  # struct ipmi_addr: room for any address type
    _fields_ = (("addr_type", ctypes.c_int), ("channel", ctypes.c_short), ("data", ctypes.c_char * IPMI_MAX_ADDR_SIZE))


class _Msg(ctypes.Structure):
    _fields_ = (
        ("netfn", ctypes.c_ubyte),
        ("cmd", ctypes.c_ubyte),
        ("data_len", ctypes.c_ushort),
        ("data", ctypes.POINTER(ctypes.c_ubyte)),
    )


class _Req(ctypes.Structure):
    _fields_ = (
        ("addr", ctypes.POINTER(ctypes.c_ubyte)),
        ("addr_len", ctypes.c_uint),
        ("msgid", ctypes.c_long),
        ("msg", _Msg),
    )


class _Recv(ctypes.Structure):
    _fields_ = (
        ("recv_type", ctypes.c_int),
        ("addr", ctypes.POINTER(ctypes.c_ubyte)),
        ("addr_len", ctypes.c_uint),
        ("msgid", ctypes.c_long),
        ("msg", _Msg),
    )


def _ioc(direction: int, nr: int, size: int) -> int:
    """Linux `_IOC(dir, 'i', nr, size)` (asm-generic layout, as on x86 and arm64)."""
    return (direction << 30) | (size << 16) | (ord("i") << 8) | nr


IPMICTL_RECEIVE_MSG_TRUNC = _ioc(3, 11, ctypes.sizeof(_Recv))  # _IOWR
IPMICTL_SEND_COMMAND = _ioc(2, 13, ctypes.sizeof(_Req))  # _IOR


# ---------------------------------------------------------------------------------------------- parsing


def channel_medium(response: bytes) -> int | None:
    """Get Channel Info's response (completion code first): the channel medium type, None on an error."""
    if len(response) < 3 or response[0] != 0:
        return None
    return response[2] & 0x7F


def lan_parameter(response: bytes, length: int) -> bytes | None:
    """Get LAN Configuration Parameters' response: completion code, parameter revision, then the data;
    None on a non-zero completion code (0x80: parameter not supported) or a short answer."""
    if len(response) < 2 + length or response[0] != 0:
        return None
    return bytes(response[2 : 2 + length])


def ip_text(data: bytes | None) -> str:
    """Parameter 3 (or 6, 12): four bytes, most significant first; "" for 0.0.0.0 (not configured)."""
    if data is None or len(data) != 4 or not any(data):
        return ""
    return str(ipaddress.IPv4Address(data))


def mac_text(data: bytes | None) -> str:
    if data is None or len(data) != 6 or not any(data):
        return ""
    return ":".join(f"{b:02X}" for b in data)


def ip_source(data: bytes | None) -> str:
    if not data:
        return ""
    return IP_SOURCES.get(data[0] & 0x0F, "")


# ---------------------------------------------------------------------------------------------- the device


class IpmiDevice:
    """One open `/dev/ipmi0`: requests to the BMC over the system interface, one at a time."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self._msgid = 0

    def close(self) -> None:
        os.close(self.fd)

    def request(self, netfn: int, cmd: int, data: bytes, timeout: float) -> bytes:
        """The response data (completion code first); OSError on a failed ioctl, TimeoutError on silence."""
        self._msgid += 1
        addr = _SystemInterfaceAddr(IPMI_SYSTEM_INTERFACE_ADDR_TYPE, IPMI_BMC_CHANNEL, 0)
        body = (ctypes.c_ubyte * max(len(data), 1)).from_buffer_copy(data.ljust(1, b"\0"))
        req = _Req(
            ctypes.cast(ctypes.pointer(addr), ctypes.POINTER(ctypes.c_ubyte)),
            ctypes.sizeof(addr),
            self._msgid,
            _Msg(netfn, cmd, len(data), ctypes.cast(body, ctypes.POINTER(ctypes.c_ubyte))),
        )
        fcntl.ioctl(self.fd, IPMICTL_SEND_COMMAND, req)
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                raise TimeoutError(f"no IPMI answer to netfn {netfn:#04x} cmd {cmd:#04x} within {timeout} s")
            raddr = _Addr()
            rbuf = (ctypes.c_ubyte * 272)()
            recv = _Recv(
                0,
                ctypes.cast(ctypes.pointer(raddr), ctypes.POINTER(ctypes.c_ubyte)),
                ctypes.sizeof(raddr),
                0,
                _Msg(0, 0, len(rbuf), ctypes.cast(rbuf, ctypes.POINTER(ctypes.c_ubyte))),
            )
            try:
                fcntl.ioctl(self.fd, IPMICTL_RECEIVE_MSG_TRUNC, recv)
            except OSError as exc:
                if exc.errno == errno.EMSGSIZE:  # truncated: what fits is still the answer's head
                    pass
                elif exc.errno == errno.EAGAIN:
                    continue
                else:
                    raise
            # Events and other users' answers may arrive too: keep only the response to this request.
            if recv.recv_type == IPMI_RESPONSE_RECV_TYPE and recv.msgid == self._msgid and recv.msg.cmd == cmd:
                return bytes(rbuf[: recv.msg.data_len])


def _lan_channels(dev: IpmiDevice, timeout: float) -> list[int]:
    found = []
    for channel in CHANNELS:
        try:
            if channel_medium(dev.request(NETFN_APP, CMD_GET_CHANNEL_INFO, bytes([channel]), timeout)) == MEDIUM_LAN:
                found.append(channel)
        except TimeoutError:
            break  # a BMC that stops answering answers nothing more
    return found or [1]  # a BMC without Get Channel Info: channel 1 is the usual LAN channel


def _parameter(dev: IpmiDevice, channel: int, param: int, length: int, timeout: float) -> bytes | None:
    return lan_parameter(
        dev.request(NETFN_TRANSPORT, CMD_GET_LAN_CONFIG, bytes([channel, param, 0, 0]), timeout), length
    )


def read(devices: Sequence[Path] = DEVICES, timeout: float = 1.0) -> dict[str, str]:
    """{"address", "mac", "source", "channel"} of the first LAN channel with an address; {} without a device
    (silently: most nodes have none) or when the BMC cannot say."""
    path = next((d for d in devices if d.exists()), None)
    if path is None:
        return {}
    start = time.monotonic()
    try:
        dev = IpmiDevice(path)
    except OSError as exc:
        log.warning("bmc_device_unusable", device=str(path), error=str(exc))
        return {}
    try:
        for channel in _lan_channels(dev, timeout):
            address = ip_text(_parameter(dev, channel, PARAM_IP, 4, timeout))
            if not address:
                continue
            out = {
                "address": address,
                "mac": mac_text(_parameter(dev, channel, PARAM_MAC, 6, timeout)),
                "source": ip_source(_parameter(dev, channel, PARAM_IP_SOURCE, 1, timeout)),
                "channel": str(channel),
            }
            log.info("bmc_lan_read", **out, duration_ms=round((time.monotonic() - start) * 1000, 1))
            return out
        log.info("bmc_lan_unconfigured", device=str(path), duration_ms=round((time.monotonic() - start) * 1000, 1))
    except (OSError, TimeoutError) as exc:
        log.warning("bmc_lan_read_failed", device=str(path), error=str(exc))
    finally:
        dev.close()
    return {}


def firmware_declares_ipmi(sys: Path = Path("/sys")) -> bool:
    """Whether ACPI (`IPI0001`) or SMBIOS type 38 (the kernel's built-in DMI decode makes a `dmi-ipmi-si`
    platform device) describes an IPMI system interface: a few directory lookups, no probing."""
    for pattern in ("bus/acpi/devices/IPI0001:*", "bus/platform/devices/dmi-ipmi-si.*"):
        if any(sys.glob(pattern)):
            return True
    return False


def modules_needed(sys: Path = Path("/sys")) -> tuple[str, ...]:
    """The modules to load explicitly in the drivers phase: the IPMI ones when the firmware has a BMC."""
    return MODULES if firmware_declares_ipmi(sys) else ()
