"""The agent's one typed configuration, read from the kernel command line (1.x ref §6.3 plus `perceus.*` keys).

Unknown keys are ignored (the command line belongs to the kernel and to everyone else); a key we know with a
bad value raises ConfigError naming the key, so a typo in a PXE config shows up on the console at once.
Original 1.x spellings are accepted next to the new ones: `masterip=`, `enable-kmods=`, `enable-debug=`,
`perceusd_args=nodename=…`.  Unlike 1.x a value may contain `=` and parameters may come first on the line.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from perceus.errors import ConfigError, PerceusError
from perceus.protocol import hwaddr

DEFAULT_PORT = 9987
MAX_DEBUG = 3
_HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_MODULE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_CONSOLE = re.compile(r"^[A-Za-z0-9/_.-]{1,32}(,[A-Za-z0-9]+)?$")


class Mode(StrEnum):
    """Which program the agent is: the stage-one provisioner or provisiond in the runtime OS."""

    STAGE1 = "stage1"
    RUNTIME = "runtime"


@dataclass(frozen=True, slots=True)
class Master:
    """One master address (`host:port`); `host` is an IP or a DNS name."""

    host: str
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class StaticNet:
    """`perceus.net=IP/PLEN,GW,DEV`: the address stage one leased, handed to the runtime at kexec."""

    ip: str
    prefixlen: int
    gateway: str
    device: str

    def __str__(self) -> str:
        return f"{self.ip}/{self.prefixlen},{self.gateway},{self.device}"


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything the kernel command line tells the agent; defaults mean "not given"."""

    mode: Mode = Mode.STAGE1
    masters: tuple[Master, ...] = ()
    events: Master | None = None
    debug: int = 0
    consoles: tuple[str, ...] = ()
    kmods: tuple[str, ...] = ()
    noload: tuple[str, ...] = ()
    dhcp_eth: str = ""
    dhcp_mac: str = ""
    eth_mtu: int = 0
    nodename: str = ""
    node: str = ""
    net: StaticNet | None = None
    unknown: tuple[str, ...] = field(default=(), compare=False)

    @property
    def event_endpoint(self) -> Master | None:
        """The master's PUB address: `perceus.events=` or the first master's port + 1 (the default layout)."""
        if self.events is not None:
            return self.events
        if self.masters:
            first = self.masters[0]
            return Master(first.host, first.port + 1)
        return None


def tokens(text: str) -> list[str]:
    """Split like the kernel does (whitespace, double quotes group); a stray quote is not fatal."""
    try:
        lexer = shlex.shlex(text, posix=True)
        lexer.whitespace_split = True
        lexer.commenters = ""
        lexer.quotes = '"'
        return list(lexer)
    except ValueError:
        return text.split()


def _pairs(words: Iterable[str]) -> Iterator[tuple[str, str]]:
    for word in words:
        if word == "--":  # everything after `--` belongs to init, not to us
            return
        key, _, value = word.partition("=")
        yield key, value


def _int(key: str, value: str, lo: int, hi: int) -> int:
    try:
        number = int(value, 10)
    except ValueError:
        raise ConfigError(f"{key}={value!r}: expected an integer {lo}..{hi}", path="kernel command line") from None
    if not lo <= number <= hi:
        raise ConfigError(f"{key}={value!r}: out of range {lo}..{hi}", path="kernel command line")
    return number


def _bad(key: str, value: str, why: str) -> ConfigError:
    return ConfigError(f"{key}={value!r}: {why}", path="kernel command line")


def parse_master(key: str, value: str) -> Master:
    """`host`, `host:port`, `[v6]:port` → Master; the default port is the bus port 9987."""
    text = value.strip()
    if not text:
        raise _bad(key, value, "empty master address")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            raise _bad(key, value, "expected [IPv6]:port")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    port = _int(key, port_text, 1, 65535) if port_text else DEFAULT_PORT
    if not host or not all(c.isalnum() or c in "-.:_" for c in host):
        raise _bad(key, value, "not a host name or IP address")
    return Master(host, port)


def _list(key: str, value: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in value.split(",") if part.strip())
    for item in items:
        if not pattern.match(item):
            raise _bad(key, value, f"{item!r} is not a valid {what}")
    return items


def _static_net(key: str, value: str) -> StaticNet:
    parts = value.split(",")
    if len(parts) not in (2, 3):
        raise _bad(key, value, "expected IP/PLEN,GATEWAY[,DEVICE]")
    try:
        iface = ipaddress.IPv4Interface(parts[0])
        gateway = str(ipaddress.IPv4Address(parts[1])) if parts[1] else ""
    except ValueError as exc:
        raise _bad(key, value, str(exc)) from None
    if "/" not in parts[0]:
        raise _bad(key, value, "the address needs a prefix length (IP/PLEN)")
    device = parts[2] if len(parts) == 3 else ""
    if device and not _IFNAME.match(device):
        raise _bad(key, value, f"{device!r} is not an interface name")
    return StaticNet(str(iface.ip), iface.network.prefixlen, gateway, device)


def _mac(key: str, value: str) -> str:
    try:
        return hwaddr.normalize(value)
    except PerceusError:
        raise _bad(key, value, "not a hardware address") from None


def parse(text: str) -> AgentConfig:
    """Parse a kernel command line into an AgentConfig; raises ConfigError on a bad value of a known key."""
    values: dict[str, object] = {}
    masters: list[Master] = []
    legacy_masters: list[Master] = []  # 1.x `masterip=`: used only when no perceus.master= is given
    consoles: list[str] = []
    kmods: list[str] = []
    noload: list[str] = []
    unknown: list[str] = []
    for key, value in _pairs(tokens(text)):
        if key == "perceus.master":
            masters.extend(parse_master(key, part) for part in value.split(",") if part.strip())
            if not masters:
                raise _bad(key, value, "empty master address")
        elif key == "masterip":
            if value == "cloud":  # 1.x's hard-coded public master: never contact a stranger's server
                raise _bad(key, value, "provisioning from 'the cloud' is not supported")
            legacy_masters.append(parse_master(key, value))
        elif key == "perceus.events":
            values["events"] = parse_master(key, value)
        elif key in ("perceus.debug", "enable-debug", "perceus_debug"):
            values["debug"] = _int(key, value, 0, MAX_DEBUG)
        elif key == "console":
            if not _CONSOLE.match(value):
                raise _bad(key, value, "not a console device")
            consoles.append(value)
        elif key in ("perceus.kmods", "enable-kmods"):
            kmods.extend(_list(key, value, _MODULE, "module name"))
        elif key == "noload":
            noload.extend(_list(key, value, _MODULE, "module name"))
        elif key == "dhcp_eth":
            if not _IFNAME.match(value):
                raise _bad(key, value, "not an interface name")
            values["dhcp_eth"] = value
        elif key == "dhcp_mac":
            values["dhcp_mac"] = _mac(key, value)
        elif key == "eth_mtu":
            values["eth_mtu"] = _int(key, value, 68, 65535)
        elif key == "perceus.nodename" or (key == "perceusd_args" and value.startswith("nodename=")):
            name = value.removeprefix("nodename=") if key == "perceusd_args" else value
            if not _HOSTNAME.match(name):
                raise _bad(key, value, "not a host name")
            values["nodename"] = name
        elif key in ("perceus.node", "nodeid"):
            values["node"] = _mac(key, value)
        elif key == "perceus.mode":
            try:
                values["mode"] = Mode(value)
            except ValueError:
                raise _bad(key, value, "expected stage1 or runtime") from None
        elif key == "perceus.net":
            values["net"] = _static_net(key, value)
        elif key.startswith("perceus."):
            unknown.append(key)  # a newer master's key: ignore, but let the caller log it
    return AgentConfig(
        masters=tuple(dict.fromkeys(masters or legacy_masters)),
        consoles=tuple(consoles),
        kmods=tuple(dict.fromkeys(kmods)),
        noload=tuple(dict.fromkeys(noload)),
        unknown=tuple(unknown),
        **values,  # type: ignore[arg-type]
    )


def load(path: Path = Path("/proc/cmdline")) -> AgentConfig:
    """Read and parse the running kernel's command line (or a file standing in for it)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read the kernel command line: {exc.strerror}", path=str(path)) from None
    return parse(text)


def handover(config: AgentConfig, *, node: str, net: StaticNet | None, master: Master | None) -> list[str]:
    """The `perceus.*` words stage one appends to the runtime kernel's command line at kexec.

    The runtime agent then needs neither DHCP nor enrollment: it knows its node id, address and master.
    `masterip=` is kept for 1.x capsules whose own provisiond still reads it.
    """
    words = ["perceus.mode=runtime", f"perceus.node={node}"]
    masters = list(config.masters) or ([master] if master else [])
    if masters:
        words.append("perceus.master=" + ",".join(str(m) for m in masters))
        words.append(f"masterip={masters[0].host}")
    if config.events is not None:
        words.append(f"perceus.events={config.events}")
    if net is not None:
        words.append(f"perceus.net={net}")
    if config.debug:
        words.append(f"perceus.debug={config.debug}")
    return words
