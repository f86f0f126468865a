"""BMC records: how a node's BMC is reached (protocol, host, port, user, Redfish system path) and its password.

An admin writes a BMC as a URL without a password: `ipmi://admin@10.1.0.5`, `ipmi://admin@127.0.0.1:9001`,
`redfish://admin@bmc5.example` (HTTPS), `redfish+http://admin@127.0.0.1:8000/redfish/v1/Systems/<id>`.
A part left out (user, port, path) is inherited from the node's group default, then from the protocol's
default.  The host may contain `{hostname}`, which group defaults use (`ipmi://admin@{hostname}-ipmi`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from perceus.errors import UsageError

PROTOCOLS = ("ipmi", "redfish")
SCHEMES = {
    "ipmi": ("ipmi", ""),
    "redfish": ("redfish", "https"),
    "redfish+http": ("redfish", "http"),
    "redfish+https": ("redfish", "https"),
}
DEFAULT_PORTS = {"ipmi": 623, "https": 443, "http": 80}
# Fields an entry (node or group) may hold; `password` lives only in the 0600 file, never in the database.
FIELDS = ("protocol", "scheme", "host", "port", "user", "path", "password")
_HOST = re.compile(r"^[A-Za-z0-9_.\-{}\[\]:]{1,255}$")


@dataclass(frozen=True)
class BmcRecord:
    """A node's resolved BMC; `str()` and `url` never contain the password."""

    protocol: str
    host: str
    port: int
    user: str
    password: str = field(default="", repr=False)
    scheme: str = ""
    path: str = ""

    @property
    def url(self) -> str:
        scheme = "ipmi" if self.protocol == "ipmi" else f"redfish+{self.scheme}"
        user = f"{self.user}@" if self.user else ""
        return f"{scheme}://{user}{self.host}:{self.port}{self.path}"

    @property
    def base_url(self) -> str:
        """Redfish: scheme://host:port (what sushy is given)."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.url


def valid_host(host: str) -> bool:
    """A BMC host as the records accept it (name, IPv4, [IPv6], a range, a {hostname} template)."""
    return bool(_HOST.match(host))


def parse_url(text: str) -> dict[str, object]:
    """The fields a BMC URL names (only those present); raises UsageError with the reason."""
    # Host ranges (`10.1.0.[1-128]`) would read as IPv6 brackets: hide them from urlsplit, restore after.
    ranges = re.findall(r"\[[^\]]*\]", text)
    hide = bool(ranges) and "://[" not in text and "@[" not in text
    masked = re.sub(r"\[[^\]]*\]", "\x00", text.strip()) if hide else text.strip()
    try:
        parts = urlsplit(masked)
    except ValueError as exc:
        raise UsageError(f"BMC {text!r}: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise UsageError(f"BMC {text!r}: use ipmi://USER@HOST[:PORT] or redfish[+http]://USER@HOST[:PORT][/PATH]")
    if parts.password is not None:
        # A password on the command line lands in shell history and `ps`: refuse it.
        raise UsageError("a BMC URL must not carry a password; set it with `node set bmc-password - NODES` (stdin)")
    protocol, scheme = SCHEMES[parts.scheme]
    host = _hostpart(parts.netloc)
    if hide:
        for r in ranges:
            host = host.replace("\x00", r, 1)
    if not host or not _HOST.match(host):
        raise UsageError(f"BMC {text!r}: missing or invalid host")
    out: dict[str, object] = {"protocol": protocol, "host": host}
    if scheme:
        out["scheme"] = scheme
    if parts.username:
        out["user"] = unquote(parts.username)
    port = _portpart(parts.netloc)
    if port is not None:
        if not 0 < port < 65536:
            raise UsageError(f"BMC {text!r}: port out of range")
        out["port"] = port
    if parts.path not in ("", "/"):
        if protocol == "ipmi":
            raise UsageError(f"BMC {text!r}: an IPMI address has no path")
        out["path"] = parts.path.rstrip("/")
    return out


def _hostpart(netloc: str) -> str:
    host = netloc.rpartition("@")[2]
    if host.startswith("["):  # [v6]:port
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if re.search(r":\d+$", host) else host


def _portpart(netloc: str) -> int | None:
    m = re.search(r":(\d+)$", netloc.rpartition("@")[2])
    return int(m.group(1)) if m else None


def resolve(hostname: str, group: Mapping[str, object], node: Mapping[str, object]) -> BmcRecord | str:
    """Merge a group default and a node's own entry into a record, or say what is missing."""
    merged: dict[str, object] = {**group, **{k: v for k, v in node.items() if v not in (None, "")}}
    protocol = str(merged.get("protocol", ""))
    host = str(merged.get("host", "")).replace("{hostname}", hostname)
    if protocol not in PROTOCOLS or not host:
        return "no BMC configured"
    scheme = str(merged.get("scheme", "https" if protocol == "redfish" else ""))
    password = str(merged.get("password", ""))
    if not password:
        return "no BMC password set"
    port = int(str(merged.get("port") or DEFAULT_PORTS["ipmi" if protocol == "ipmi" else scheme]))
    return BmcRecord(
        protocol=protocol,
        host=host,
        port=port,
        user=str(merged.get("user", "")),
        password=password,
        scheme=scheme,
        path=str(merged.get("path", "")),
    )
