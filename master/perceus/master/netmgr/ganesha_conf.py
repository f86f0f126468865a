"""The nfs-ganesha configuration for hybrid capsules: NFSv4 only, read-only, one EXPORT per capsule.

Rendered from the capsules' export trees (capsule/hybrid.py) and the provisioning address: ganesha listens on
that address only (`Bind_addr`), each export admits the provisioning network only (a `CLIENT` block; the
export's own Access_Type is None), with sys security, no root squash (the node's root reads root-owned files),
numeric owners (without `Only_Numeric_Owners` a node sees every file owned by 4294967294), no NLM, no RQUOTA,
no rpcbind (v4 needs none), a graceless start (nothing to recover on a read-only export), and the recovery
and callback-credentials directories under the state dir (else it writes under /var).
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Sequence
from glob import glob
from pathlib import Path

from perceus.master.capsule.hybrid import Export

NFS_PORT = 2049
_PLUGINS_GLOB = "/usr/lib/*/ganesha"


def plugins_dir() -> str:
    """Where Debian's nfs-ganesha keeps its FSAL plugins (libfsalvfs.so); "" when not installed."""
    found = sorted(p for p in glob(_PLUGINS_GLOB) if Path(p, "libfsalvfs.so").exists())
    return found[0] if found else ""


def export_ids(names: Sequence[str]) -> dict[str, int]:
    """A stable Export_Id per capsule: it is inside every file handle a node holds, so it must not shift when
    another capsule comes or goes (a shifted id would point a node's handles at another capsule)."""
    ids: dict[str, int] = {}
    used: set[int] = set()
    for name in sorted(names):
        n = zlib.crc32(name.encode()) % 60000 + 2  # 0 is the pseudo root; keep 1 free (ganesha's default)
        while n in used:
            n = n + 1 if n < 60001 else 2
        used.add(n)
        ids[name] = n
    return ids


def _quote(value: str) -> str:
    if any(c in value for c in '"\n\\'):
        raise ValueError(f"path {value!r} cannot be written into a ganesha config")
    return f'"{value}"'


def render(
    exports: Sequence[Export],
    *,
    bind: ipaddress.IPv4Address,
    network: ipaddress.IPv4Network,
    recovery: Path,
    plugins: str,
    ccache: Path | None = None,
    port: int = NFS_PORT,
) -> str:
    ids = export_ids([e.name for e in exports])
    lines = [
        "# Written by perceus-bus for hybrid capsules (master/perceus/master/netmgr/nfs.py); do not edit.",
        "NFS_CORE_PARAM {",
        "    Protocols = 4;",
        f"    Bind_addr = {bind};",
        f"    NFS_Port = {port};",
        "    Enable_NLM = false;",
        "    Enable_RQUOTA = false;",
        *([f"    Plugins_Dir = {_quote(plugins)};"] if plugins else []),
        "}",
        "NFSV4 {",
        "    Graceless = true;",
        "    Allow_Numeric_Owners = true;",
        "    Only_Numeric_Owners = true;",
        "    Minor_Versions = 0, 1, 2;",
        "    RecoveryBackend = fs;",
        f"    RecoveryRoot = {_quote(str(recovery))};",
        "}",
        "NFS_KRB5 {",
        "    Active_krb5 = false;",
        *([f"    CCacheDir = {_quote(str(ccache))};"] if ccache is not None else []),  # else /var/run/ganesha
        "}",
    ]
    for e in exports:
        lines += [
            f"# capsule {e.name}, export tree stamp {e.stamp}",
            "EXPORT {",
            f"    Export_Id = {ids[e.name]};",
            f"    Path = {_quote(str(e.path))};",
            f"    Pseudo = {_quote(e.pseudo)};",
            "    Access_Type = None;",
            "    Squash = No_Root_Squash;",
            "    SecType = sys;",
            "    Protocols = 4;",
            "    Transports = TCP;",
            f"    CLIENT {{ Clients = {network}; Access_Type = RO; }}",
            "    FSAL { Name = VFS; }",
            "}",
        ]
    return "\n".join(lines) + "\n"
