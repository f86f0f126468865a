"""ipaddr on the node: typed per-interface settings → systemd-networkd `.network` files.

Perceus 1.x echoed Red Hat ifcfg (and Caos nics) files.  Capsules built today (Debian 12 debootstrap, EL9)
all carry systemd-networkd or NetworkManager, and NetworkManager reads networkd-style keyfiles poorly but
EL9 no longer reads ifcfg by default either; networkd is the one format a minimal modern capsule runs
without extra packages, so that is what we write: `/etc/systemd/network/10-perceus-<dev>.network`.
1.x aliases (`eth0_1` → `eth0:1`) become extra `Address=` lines of their parent's file.  Options: `MTU=` is
translated; anything else 1.x passed through verbatim has no networkd meaning and is logged, not written.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from perceus.errors import ConfigError
from perceus.fsatomic import replace_file

log = structlog.get_logger("perceus.agent.modules")

_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
NETWORK_DIR = Path("etc/systemd/network")
PREFIX = "10-perceus-"


@dataclass
class Link:
    device: str
    dhcp: bool = False
    addresses: list[str] = field(default_factory=list)
    gateway: str = ""
    mtu: int = 0


def _one(item: Any) -> tuple[str, str, bool, str, str, dict[str, str]]:
    if not isinstance(item, dict):
        raise ConfigError("ipaddr: an interface is not a map")
    device, alias_of = str(item.get("device", "")), str(item.get("alias_of", ""))
    base = alias_of or device
    if not _IFNAME.match(base) or (alias_of and not device.startswith(alias_of + ":")):
        raise ConfigError(f"ipaddr: refusing device {device!r}")
    dhcp = bool(item.get("dhcp", False))
    address = ""
    if not dhcp:
        try:
            address = str(ipaddress.IPv4Interface(f"{item.get('address')}/{int(item.get('prefixlen', 32))}"))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"ipaddr: {device}: {exc}") from None
    gateway = str(item.get("gateway") or "")
    if gateway:
        try:
            ipaddress.IPv4Address(gateway)
        except ValueError as exc:
            raise ConfigError(f"ipaddr: {device}: {exc}") from None
    options = item.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"ipaddr: {device}: options must be a map")
    return base, device, dhcp, address, gateway, {str(k): str(v) for k, v in options.items()}


def links(interfaces: Sequence[Any]) -> list[Link]:
    """Validate everything first (nothing is written when one entry is bad), grouping aliases."""
    out: dict[str, Link] = {}
    for item in interfaces:
        base, device, dhcp, address, gateway, options = _one(item)
        link = out.setdefault(base, Link(base))
        if device == base:
            link.dhcp = dhcp
            link.gateway = gateway or link.gateway
        if address:
            link.addresses.append(address)
        for key, value in options.items():
            if key == "MTU" and value.isdigit():
                link.mtu = int(value)
            elif key not in ("TYPE", "ONBOOT", "DEVICE"):
                log.warning("ipaddr_option_ignored", device=device, option=f"{key}={value}")
    return list(out.values())


def render(link: Link) -> str:
    lines = ["# Written by perceus provisiond (module ipaddr); edits are replaced.", "[Match]",
             f"Name={link.device}", "", "[Network]"]  # fmt: skip
    if link.dhcp:
        lines.append("DHCP=ipv4")
    lines.extend(f"Address={a}" for a in link.addresses)
    if link.gateway:
        lines.append(f"Gateway={link.gateway}")
    if link.mtu:
        lines += ["", "[Link]", f"MTUBytes={link.mtu}"]
    return "\n".join(lines) + "\n"


def apply(root: Path, data: Any) -> list[Path]:
    """Write one file per link, remove our files for links no longer configured; returns changed paths."""
    interfaces = data.get("interfaces") if isinstance(data, dict) else None
    if not isinstance(interfaces, list | tuple):
        raise ConfigError("ipaddr: interfaces must be a list")
    wanted = {link.device: render(link) for link in links(interfaces)}
    directory = root / NETWORK_DIR
    changed: list[Path] = []
    for device, text in wanted.items():
        path = directory / f"{PREFIX}{device}.network"
        try:
            if path.read_text() == text:
                continue
        except FileNotFoundError:
            pass
        replace_file(path, text.encode(), mode=0o644)
        changed.append(path)
    if directory.is_dir():
        for path in directory.glob(f"{PREFIX}*.network"):
            if path.name[len(PREFIX) : -len(".network")] not in wanted:
                path.unlink()
                changed.append(path)
    return changed
