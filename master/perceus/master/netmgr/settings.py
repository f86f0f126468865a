"""The network manager's typed view of perceus.conf plus the provisioning interface's addresses.

perceus.conf keys (all optional but `master network device`):
    dhcp range start / dhcp range end   unknown nodes' pool; default as Perceus 1.x (1.x ref §2.4): the top
                                        quarter of the subnet, at most 256 addresses, up to broadcast − 1
    dhcp lease time                     dnsmasq syntax (`1h`, `45m`, `infinite`); default 1h
    dhcp router                         option 3 for nodes; default: dnsmasq sends its own address
    dns domain                          DNS for node names under this domain; absent = DNS off (`port=0`)
    dhcp log                            yes = dnsmasq `log-dhcp` (every packet; PXE debugging)
    dnsmasq user                        user dnsmasq drops to (default: dnsmasq's own, never root)
    ipxe directory                      where undionly.kpxe / ipxe.efi come from (default /usr/lib/ipxe)
    uefi loader                         what UEFI firmware PXE gets: ipxe.efi (default) or snponly.efi
    boot http port                      perceus-bus serves stage one over HTTP here (default 9989; 0 = TFTP only)
    stage1 append                       extra kernel command-line words for stage one (e.g. `panic=30`)
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from perceus.errors import ConfigError
from perceus.master.config import MasterConfig
from perceus.master.netmgr.files import UEFI_LOADER, UEFI_LOADERS

DEFAULT_LEASE_TIME = "1h"
DEFAULT_IPXE_DIR = Path("/usr/lib/ipxe")
DEFAULT_HTTP_PORT = 9989
_LEASE = re.compile(r"^(?:infinite|\d+[smhdw]?)$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# Kernel command-line words we pass through into an iPXE script: no spaces, quotes, `$` or `#` (iPXE syntax).
_WORD = re.compile(r"^[A-Za-z0-9_.,:=/+@%-]+$")
_WILDCARD = ("", "0.0.0.0", "*", "::")  # noqa: S104 - the any-address: 1.x's documented default, or a value compared


def default_range(network: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """Perceus 1.x's default pool: network | (hostmask − min(hostmask >> 2, 256)) … broadcast − 1.

    .192–.254 on a /24; x.x.254.255–x.x.255.254 on a /16.
    """
    if network.prefixlen > 30:
        raise ConfigError(f"network {network} is too small for a DHCP range")
    hostmask = int(network.hostmask)
    start = int(network.network_address) | (hostmask - min(hostmask >> 2, 256))
    return ipaddress.IPv4Address(start), network.broadcast_address - 1


def _key(conf: dict[str, list[str]], key: str) -> str:
    values = conf.get(key)
    return values[0].strip() if values else ""


def _ipv4(conf: dict[str, list[str]], key: str) -> ipaddress.IPv4Address | None:
    raw = _key(conf, key)
    if not raw:
        return None
    try:
        return ipaddress.IPv4Address(raw)
    except ValueError:
        raise ConfigError(f"'{key} = {raw}' is not an IPv4 address") from None


def _port(conf: dict[str, list[str]], key: str, default: int) -> int:
    raw = _key(conf, key)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigError(f"'{key} = {raw}' is not a TCP port (0 turns it off)")
    return int(raw)


def _uefi_loader(conf: dict[str, list[str]]) -> str:
    raw = _key(conf, "uefi loader") or UEFI_LOADER
    if raw not in UEFI_LOADERS:
        raise ConfigError(f"'uefi loader = {raw}' is not one of {', '.join(UEFI_LOADERS)}")
    return raw


def _yes(conf: dict[str, list[str]], key: str) -> bool:
    raw = _key(conf, key).lower()
    if raw in ("", "no", "false", "0", "off"):
        return False
    if raw in ("yes", "true", "1", "on"):
        return True
    raise ConfigError(f"'{key} = {raw}' is not yes/no")


@dataclass(frozen=True)
class NetSettings:
    """Everything the dnsmasq config, hosts file and boot scripts are rendered from."""

    interface: str
    address: ipaddress.IPv4Interface
    range_start: ipaddress.IPv4Address
    range_end: ipaddress.IPv4Address
    lease_time: str = DEFAULT_LEASE_TIME
    router: str = ""
    domain: str = ""
    log_dhcp: bool = False
    user: str = ""
    ipv6: tuple[ipaddress.IPv6Network, ...] = ()
    master_host: str = ""
    bus_port: int = 9987
    event_port: int = 9988
    append: tuple[str, ...] = ()
    ipxe_dir: Path = DEFAULT_IPXE_DIR
    http_port: int = DEFAULT_HTTP_PORT  # 0: stage one over TFTP only
    uefi_loader: str = UEFI_LOADER

    @property
    def http_base(self) -> str:
        """`http://<provisioning address>:<port>`, where the http_boot feature listens ("" when off)."""
        return f"http://{self.address.ip}:{self.http_port}" if self.http_port else ""

    @property
    def network(self) -> ipaddress.IPv4Network:
        return self.address.network

    @property
    def range_size(self) -> int:
        return int(self.range_end) - int(self.range_start) + 1

    @classmethod
    def build(
        cls,
        config: MasterConfig,
        *,
        address: ipaddress.IPv4Interface | None,
        ipv6: list[ipaddress.IPv6Network] | tuple[ipaddress.IPv6Network, ...] = (),
        bus_host: str = "",
        bus_port: int | None = None,
        event_port: int | None = None,
    ) -> NetSettings:
        """Validate perceus.conf against the interface's address (`address`, read by the caller)."""
        conf = config.raw
        device = config.master_device
        if not device:
            raise ConfigError("you need to set 'master network device' in perceus.conf")
        if address is None:
            raise ConfigError(f"the master network device '{device}' has no IPv4 address")
        start = _ipv4(conf, "dhcp range start")
        end = _ipv4(conf, "dhcp range end")
        default_start, default_end = default_range(address.network)
        start, end = start or default_start, end or default_end
        for name, value in (("start", start), ("end", end)):
            if value not in address.network:
                raise ConfigError(f"'dhcp range {name} = {value}' is outside {device}'s network {address.network}")
        if start > end:
            raise ConfigError(f"dhcp range start {start} is after dhcp range end {end}")
        lease = _key(conf, "dhcp lease time") or DEFAULT_LEASE_TIME
        if not _LEASE.match(lease):
            raise ConfigError(f"'dhcp lease time = {lease}' is not a dnsmasq lease time (e.g. 1h, 45m, infinite)")
        domain = _key(conf, "dns domain")
        if domain and not _DOMAIN.match(domain):
            raise ConfigError(f"'dns domain = {domain}' is not a DNS domain")
        router = _ipv4(conf, "dhcp router")
        user = _key(conf, "dnsmasq user")
        if user and not _USER.match(user):
            raise ConfigError(f"'dnsmasq user = {user}' is not a user name")
        # parse_config split the value on commas; rejoin so `console=ttyS0,115200` survives.
        append = tuple(",".join(conf.get("stage1 append", [])).split())
        for word in append:
            if not _WORD.match(word):
                raise ConfigError(f"'stage1 append' word {word!r} has characters iPXE would misread")
        host = bus_host if bus_host not in _WILDCARD else ""
        host = host or (config.bus_address if config.bus_address not in _WILDCARD else "") or str(address.ip)
        return cls(
            interface=device,
            address=address,
            range_start=start,
            range_end=end,
            lease_time=lease,
            router=str(router) if router else "",
            domain=domain,
            log_dhcp=_yes(conf, "dhcp log"),
            user=user,
            ipv6=tuple(ipv6),
            master_host=host,
            bus_port=config.bus_port if bus_port is None else bus_port,
            event_port=config.event_port if event_port is None else event_port,
            append=append,
            ipxe_dir=Path(_key(conf, "ipxe directory") or DEFAULT_IPXE_DIR),
            http_port=_port(conf, "boot http port", DEFAULT_HTTP_PORT),
            uefi_loader=_uefi_loader(conf),
        )


def from_system(
    config: MasterConfig, *, bus_host: str = "", bus_port: int | None = None, event_port: int | None = None
) -> NetSettings:
    """NetSettings for this machine: perceus.conf plus the live addresses of `master network device`."""
    from perceus.master.netmgr import iface  # ioctl and /proc: kept out of the pure rendering path

    device = config.master_device
    return NetSettings.build(
        config,
        address=iface.ipv4_interface(device),
        ipv6=iface.ipv6_prefixes(device),
        bus_host=bus_host,
        bus_port=bus_port,
        event_port=event_port,
    )
