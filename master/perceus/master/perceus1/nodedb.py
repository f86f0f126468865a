"""The Perceus 1.x node database → new node records, with every quirk of the original (1.x ref §3.1).

One key → value table per attribute, keyed by the upper-case MAC.  "0" and "" read the same (both mean
disabled for `enabled`), `ipaddr` is a decimal uint32 in network order, extra tables become attributes, and
duplicate hostnames (which 1.x allowed) are problems: strict mode stops, `--skip-invalid` keeps the first
(in NodeID order, the order of the original's BTREE).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from perceus.errors import InvalidHardwareAddress, PerceusError
from perceus.master.perceus1 import bdb, mysqldump
from perceus.master.store.models import NewNode
from perceus.protocol import hwaddr

CORE_FIELDS = ("hostname", "group", "vnfs", "enabled", "debug", "desc", "status", "ipaddr", "lastcontact")
UNUSED_FIELDS = ("hwaddr",)  # created by 1.x, written by nobody: carried over only if someone filled it
BACKEND_SUFFIX = {"btree": ".bdb", "hash": ".db"}


@dataclass(frozen=True)
class Problem:
    """Something in the old data that cannot be carried over as it is."""

    nodeid: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"nodeid": self.nodeid, "message": self.message}

    def __str__(self) -> str:
        return f"{self.nodeid}: {self.message}" if self.nodeid else self.message


@dataclass(frozen=True)
class LegacyNode:
    """One node as it will be stored, plus the daemon-owned fields applied as a contact."""

    new: NewNode
    status: str = ""
    lastcontact: float = 0.0


@dataclass
class NodeDB:
    """What the old database holds: usable nodes, errors (strict stops), warnings (always reported)."""

    backend: str
    source: str
    fields: list[str] = field(default_factory=list)
    nodes: list[LegacyNode] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def groups(self) -> list[str]:
        return sorted({n.new.group for n in self.nodes if n.new.group})


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # 1.x stored whatever Perl had; never lose a byte


def read_tables(backend: str, state_dir: Path, mysql_dump: Path | None = None) -> tuple[str, dict[str, dict[str, str]]]:
    """(source description, field → {key: value}) for one backend."""
    if backend == "mysql":
        if mysql_dump is None:
            raise PerceusError(
                "'database type = mysql': give the database as a dump file with --mysql-dump FILE"
                " (mysqldump <database name> > FILE on the old master)"
            )
        dump = mysqldump.parse(mysql_dump)
        return str(mysql_dump), dump.tables
    suffix = BACKEND_SUFFIX[backend]
    directory = state_dir / "database"
    files = sorted(p for p in directory.glob(f"*{suffix}") if p.is_file())
    if not files:
        raise PerceusError(f"no {backend} node database in {directory} (no *{suffix} files)")
    tool = bdb.find_db_dump()
    tables: dict[str, dict[str, str]] = {}
    for path in files:
        tables[path.name.removesuffix(suffix)] = {
            _text(k).rstrip("\0"): _text(v).rstrip("\0") for k, v in bdb.read_table(path, dump=tool).items()
        }
    return str(directory), tables


def detect_backend(configured: str, state_dir: Path) -> tuple[str, str]:
    """The backend to read and a warning when the files on disk contradict perceus.conf."""
    directory = state_dir / "database"
    present = [b for b, suffix in BACKEND_SUFFIX.items() if any(directory.glob(f"*{suffix}"))]
    if configured in BACKEND_SUFFIX and configured not in present and len(present) == 1:
        return present[0], f"perceus.conf says 'database type = {configured}' but {directory} holds {present[0]} files"
    return configured, ""


def _enabled(value: str | None) -> bool:
    # Perl truth, as 1.x's nodescripts saw it: "" and "0" (and a missing entry) are false.
    return value not in (None, "", "0")


def _ipaddr(value: str) -> str:
    number = int(value)
    return str(ipaddress.IPv4Address(number))


def convert(backend: str, source: str, tables: Mapping[str, Mapping[str, str]]) -> NodeDB:
    """Turn attribute tables into nodes; every quirk becomes either a clean value or a Problem."""
    db = NodeDB(backend=backend, source=source, fields=sorted(tables))
    hostnames = tables.get("hostname", {})
    keys = sorted({k for table in tables.values() for k in table})
    seen_ids: dict[str, str] = {}
    seen_names: dict[str, str] = {}
    for key in keys:
        if not key.strip():
            db.warnings.append(
                Problem("", f"empty NodeID key ignored ({sum(key in t for t in tables.values())} tables)")
            )
            continue
        try:
            nodeid = hwaddr.normalize(key)
        except InvalidHardwareAddress:
            db.errors.append(Problem(key, "NodeID is not a hardware address (1.x accepted letters g-z and junk)"))
            continue
        if nodeid in seen_ids:
            db.errors.append(Problem(key, f"NodeID is the same hardware address as {seen_ids[nodeid]!r}"))
            continue
        seen_ids[nodeid] = key
        hostname = hostnames.get(key, "").strip()
        if not hostname:
            db.errors.append(
                Problem(
                    nodeid,
                    "node has no hostname (present only in: "
                    + ", ".join(sorted(f for f, t in tables.items() if key in t))
                    + ")",
                )
            )
            continue
        if any(c.isspace() for c in hostname):
            db.errors.append(Problem(nodeid, f"hostname {hostname!r} contains whitespace"))
            continue
        if hostname in seen_names:
            db.errors.append(
                Problem(
                    nodeid,
                    f"duplicate hostname {hostname!r} (also NodeID {seen_names[hostname]},"
                    " which is kept with --skip-invalid)",
                )
            )
            continue
        seen_names[hostname] = nodeid

        def get(name: str, _key: str = key) -> str:
            return tables.get(name, {}).get(_key, "")

        if key not in tables.get("enabled", {}):
            db.warnings.append(Problem(nodeid, "no 'enabled' entry: imported as disabled, as 1.x read it"))
        debug = 0
        if get("debug"):
            try:
                debug = max(0, int(get("debug")))
            except ValueError:
                db.warnings.append(Problem(nodeid, f"debug {get('debug')!r} is not a number: imported as 0"))
        ip = ""
        if get("ipaddr"):
            try:
                ip = _ipaddr(get("ipaddr"))
            except (ValueError, ipaddress.AddressValueError):
                db.warnings.append(Problem(nodeid, f"ipaddr {get('ipaddr')!r} is not a decimal IPv4: dropped"))
        lastcontact = 0.0
        if get("lastcontact"):
            try:
                lastcontact = float(get("lastcontact"))
            except ValueError:
                db.warnings.append(Problem(nodeid, f"lastcontact {get('lastcontact')!r} is not a time: dropped"))
        attrs = {
            name: table[key]
            for name, table in sorted(tables.items())
            if name not in CORE_FIELDS and table.get(key, "") != ""
        }
        db.nodes.append(
            LegacyNode(
                new=NewNode(
                    nodeid=nodeid,
                    hostname=hostname,
                    group=get("group").strip(),
                    vnfs=get("vnfs").strip(),
                    ip=ip,
                    enabled=_enabled(tables.get("enabled", {}).get(key)),
                    debug=debug,
                    desc=get("desc"),
                    attrs=attrs,
                ),
                status=get("status").strip(),
                lastcontact=lastcontact,
            )
        )
    if "hostname" not in tables:
        db.errors.append(Problem("", f"{source} has no hostname table"))
    return db


def load(backend: str, state_dir: Path, mysql_dump: Path | None = None) -> NodeDB:
    """Read and convert the old node database."""
    source, tables = read_tables(backend, state_dir, mysql_dump)
    return convert(backend, source, tables)
