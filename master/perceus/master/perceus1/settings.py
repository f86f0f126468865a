"""Config takeover: the old perceus.conf and defaults.conf carried over as they are, plus what is obsolete.

The new master reads the original syntax, so the files are kept byte for byte; the upgrade only appends a
marked block turning on the legacy TCP 987 listener for nodes that still run the C provisiond.  When the old
and new config dirs are the same (an in-place upgrade), the original file is first saved as
`perceus.conf.perceus1`, so going back is copying one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from perceus.master.config import DEFAULTS_CONF, PERCEUS_CONF, parse_config

BACKUP_SUFFIX = ".perceus1"
LEGACY_KEYS = (("legacy listener", "yes"), ("legacy port", "987"))

_BUS = "capsules now travel over the bus as BLAKE3-verified chunks"
_REPLACED: dict[str, str] = {
    "database type": "the node store is SQLite (<state>/perceus.db) or a postgresql:// URL; the 1.x "
    "btree/hash/mysql tables are read once by this import",
    "database server": "MySQL connection of the 1.x store: not used after the import",
    "database name": "MySQL connection of the 1.x store: not used after the import",
    "database user": "MySQL connection of the 1.x store: not used after the import",
    "database pass": "MySQL connection of the 1.x store: not used after the import (remove the password)",
    "vnfs transfer method": f"{_BUS}; only nodes still on the C provisiond (legacy listener) get it as "
    "VNFSMETHOD, so keep the NFS export/Apache alias until they run the new agent",
    "vnfs transfer master": f"{_BUS}; still given to legacy provisiond nodes as VNFSMASTER",
    "vnfs transfer prefix": f"{_BUS}; still given to legacy provisiond nodes as VNFSPREFIX",
    "controlport bind address": "the TCP 9870 control port is replaced by the local control socket "
    "<state>/run/control.sock (mode 0600) and `perceus info`",
    "controlport allow address": "no IP regex any more: access to the control socket is its file mode (root)",
}
_STILL_USED = {
    "master network device": "DHCP/TFTP interface, VNFSMASTER and the legacy listener's address",
    "node timeout": "now used by `perceus node status` too (1.x: only the web UI)",
}


@dataclass(frozen=True)
class Setting:
    """One key of the old perceus.conf and what the new master does with it."""

    key: str
    value: str
    status: str  # "kept" | "obsolete" | "unknown"
    note: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "status": self.status, "note": self.note}


def review(perceus_conf: Path) -> list[Setting]:
    """Classify every key of an old perceus.conf."""
    known_new = set(parse_config_text(PERCEUS_CONF))
    out: list[Setting] = []
    for key, values in sorted(parse_config(perceus_conf).items()):
        value = ",".join(values)
        if key in _REPLACED:
            out.append(Setting(key, "***" if key == "database pass" else value, "obsolete", _REPLACED[key]))
        elif key in _STILL_USED:
            out.append(Setting(key, value, "kept", _STILL_USED[key]))
        elif key in known_new or key in dict(LEGACY_KEYS):
            out.append(Setting(key, value, "kept", "understood by the new master"))
        else:
            out.append(Setting(key, value, "unknown", "not read by the new master; left in the file"))
    return out


def parse_config_text(text: str) -> dict[str, list[str]]:
    """parse_config for a string (the shipped templates)."""
    result: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if key.strip() and value.strip():
            result[key.strip()] = [value.strip()]
    return result


def with_legacy_block(text: str) -> str:
    """The old perceus.conf with the legacy listener keys appended (only the missing ones)."""
    present = parse_config_text(text)
    missing = [(k, v) for k, v in LEGACY_KEYS if k not in present]
    if not missing:
        return text
    block = "\n# Added by `perceus import perceus1`: serve nodes that still run the Perceus 1.x provisiond\n"
    block += "".join(f"{k} = {v}\n" for k, v in missing)
    return (text if text.endswith("\n") or not text else text + "\n") + block


@dataclass(frozen=True)
class FilePlan:
    """What happens to one config file: action is write | unchanged | conflict."""

    name: str
    source: Path
    target: Path
    action: str
    data: bytes
    backup: Path | None = None
    note: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "file": self.name,
            "from": str(self.source),
            "to": str(self.target),
            "action": self.action,
            "note": self.note,
        }


def plan_file(name: str, old_dir: Path, new_dir: Path, *, force: bool) -> FilePlan:
    """Decide how `name` (perceus.conf / defaults.conf) moves from old_dir to new_dir."""
    source, target = old_dir / name, new_dir / name
    template = PERCEUS_CONF if name == "perceus.conf" else DEFAULTS_CONF
    try:
        old = source.read_bytes()
    except FileNotFoundError:
        return FilePlan(name, source, target, "unchanged", b"", note="not present in the old config dir")
    wanted = with_legacy_block(old.decode("utf-8", "replace")).encode() if name == "perceus.conf" else old
    same_file = source.resolve() == target.resolve()
    try:
        current: bytes | None = target.read_bytes()
    except FileNotFoundError:
        current = None
    if current == wanted:
        return FilePlan(name, source, target, "unchanged", wanted, note="already migrated")
    if same_file:
        backup = source.with_name(name + BACKUP_SUFFIX)
        return FilePlan(
            name,
            source,
            target,
            "write",
            wanted,
            backup=None if backup.exists() else backup,
            note=f"in place; the 1.x file is saved as {backup.name}",
        )
    if current is not None and current != template.encode() and not force:
        return FilePlan(
            name,
            source,
            target,
            "conflict",
            wanted,
            note="the new file was already edited; kept (use --force to replace it)",
        )
    return FilePlan(name, source, target, "write", wanted)
