"""Hardware inventory sent with `hello`: CPU, memory, NICs, disks, DMI ids (pure, bounded reads of /sys).

Every read is capped in size and every list in length, and a missing or unreadable file yields "" or 0, never
an exception: a node with odd firmware still boots.  (1.x sent no inventory; the master only knew the MAC.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from perceus.agent import bmc_self

MAX_READ = 4096
MAX_NICS = 64
MAX_DISKS = 128
ARPHRD_ETHER = 1
ARPHRD_INFINIBAND = 32
_SKIP_DISKS = ("loop", "ram", "zram", "fd", "sr", "nbd")


def _read(path: Path, limit: int = MAX_READ) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode(errors="replace").strip()
    except OSError:
        return ""


def _int(path: Path) -> int:
    try:
        return int(_read(path, 64))
    except ValueError:
        return 0


def cpu(proc: Path = Path("/proc")) -> dict[str, Any]:
    model = ""
    for line in _read(proc / "cpuinfo", 1 << 16).splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model", "uarch"):
            model = value.strip()
            break
    return {"model": model, "count": os.cpu_count() or 0}


def memory_bytes(proc: Path = Path("/proc")) -> int:
    for line in _read(proc / "meminfo", 8192).splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return 0


def nics(sys: Path = Path("/sys")) -> list[dict[str, Any]]:
    """Ethernet and IPoIB links with a backing device (virtual links are not hardware)."""
    out: list[dict[str, Any]] = []
    base = sys / "class/net"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return out
    for name in names[: MAX_NICS * 4]:
        path = base / name
        if _int(path / "type") not in (ARPHRD_ETHER, ARPHRD_INFINIBAND) or not (path / "device").exists():
            continue
        try:
            driver = os.path.basename(os.readlink(path / "device/driver"))
        except OSError:
            driver = ""
        speed = _int(path / "speed")  # EINVAL while the link is down → 0
        out.append({
            "name": name,
            "mac": _read(path / "address", 128).upper(),
            "driver": driver,
            "link": _read(path / "carrier", 8) == "1",
            "speed": max(speed, 0),
        })  # fmt: skip
        if len(out) >= MAX_NICS:
            break
    return out


def disks(sys: Path = Path("/sys")) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    base = sys / "block"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return out
    for name in names:
        if name.startswith(_SKIP_DISKS):
            continue
        path = base / name
        out.append({
            "name": name,
            "size": _int(path / "size") * 512,  # always 512-byte sectors, whatever the logical block size
            "model": _read(path / "device/model", 256),
        })  # fmt: skip
        if len(out) >= MAX_DISKS:
            break
    return out


def dmi(sys: Path = Path("/sys")) -> dict[str, str]:
    base = sys / "class/dmi/id"
    return {
        "vendor": _read(base / "sys_vendor", 256),
        "product": _read(base / "product_name", 256),
        "serial": _read(base / "product_serial", 256),  # root-only; "" when unreadable
    }


IPMI_DEVICES = bmc_self.DEVICES


def bmc(devices: tuple[Path, ...] = IPMI_DEVICES) -> dict[str, str]:
    """The BMC's LAN address (and MAC, address source), asked of the BMC through the kernel's IPMI device
    (perceus.agent.bmc_self; stage one has no ipmitool); {} at once on the many nodes without one."""
    return bmc_self.read(devices)


def collect(
    *, proc: Path = Path("/proc"), sys: Path = Path("/sys"), ipmi: tuple[Path, ...] = IPMI_DEVICES
) -> dict[str, Any]:
    """The whole inventory as plain msgpack-able data."""
    return {
        "cpu": cpu(proc),
        "memory": memory_bytes(proc),
        "nics": nics(sys),
        "disks": disks(sys),
        "dmi": dmi(sys),
        "bmc": bmc(ipmi),
        "kernel": os.uname().release,
    }


def hardware_macs(sys: Path = Path("/sys"), first: str = "") -> list[str]:
    """Every hardware MAC, `first` (the leased link's, or the configured NodeID) leading: the master takes
    the first one as the NodeID of a new node."""
    macs = [nic["mac"] for nic in nics(sys) if nic["mac"] and nic["mac"].strip("0:")]
    if first:
        macs = [first.upper(), *(m for m in macs if m != first.upper())]
    return list(dict.fromkeys(macs))
