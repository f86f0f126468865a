"""/etc/passwd and /etc/group from master entries, merged with the node's own system accounts.

Rules (issue 7): the node's own system accounts (uid/gid < 1000) and root are never removed or changed;
entries from the master are validated (field count, names, numeric ids, no duplicate name or id) and a file
that fails is refused whole with a log line — the old file stays.  Writes are atomic.  Perceus 1.x's
masterauth overwrote the node's files entirely, system accounts included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perceus.errors import ConfigError
from perceus.fsatomic import replace_file

SYSTEM_MAX = 999
# fullmatch, and no control characters: a `$` anchor let "name\n" (a second passwd line) through before issue 14.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?", re.ASCII)
_FIELD = re.compile(r"[^:\x00-\x1f\x7f]*")
MAX_ENTRIES = 200_000


@dataclass(frozen=True)
class Entry:
    """One line of passwd (7 fields) or group (4 fields), kept as text fields plus its name and id."""

    name: str
    ident: int
    fields: tuple[str, ...]

    def line(self) -> str:
        return ":".join(self.fields)


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(f"bad {what} name {name!r}")


def _passwd(fields: Sequence[Any]) -> Entry:
    if len(fields) != 7:
        raise ConfigError(f"passwd entry needs 7 fields, has {len(fields)}")
    name, pw, uid, gid, gecos, home, shell = fields
    _check_name(str(name), "user")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in (uid, gid)):
        raise ConfigError(f"user {name!r}: uid/gid must be numbers")
    texts = (str(pw), str(gecos), str(home), str(shell))
    if not all(isinstance(v, str) and _FIELD.fullmatch(v) for v in (pw, gecos, home, shell)):
        raise ConfigError(f"user {name!r}: a field contains ':', a newline or another control character")
    if texts[0] not in ("x", "*", "!", ""):
        raise ConfigError(f"user {name!r}: password hashes are never accepted in passwd")
    return Entry(str(name), int(uid), (str(name), texts[0], str(uid), str(gid), texts[1], texts[2], texts[3]))


def _group(fields: Sequence[Any]) -> Entry:
    if len(fields) != 4:
        raise ConfigError(f"group entry needs 4 fields, has {len(fields)}")
    name, pw, gid, members = fields
    _check_name(str(name), "group")
    if not (isinstance(gid, int) and not isinstance(gid, bool) and 0 <= gid < 2**32):
        raise ConfigError(f"group {name!r}: gid must be a number")
    if not isinstance(pw, str) or pw not in ("x", "*", "!", ""):
        raise ConfigError(f"group {name!r}: bad password field")
    if not isinstance(members, list | tuple):
        raise ConfigError(f"group {name!r}: members must be a list")
    for member in members:
        if not isinstance(member, str):
            raise ConfigError(f"group {name!r}: bad member {member!r}")
        _check_name(member, "member")
    return Entry(str(name), gid, (str(name), pw, str(gid), ",".join(members)))


def validate(kind: str, entries: Any) -> list[Entry]:
    """Master entries → checked Entries; ConfigError for the first problem (the whole set is refused)."""
    if not isinstance(entries, list | tuple) or len(entries) > MAX_ENTRIES:
        raise ConfigError(f"{kind}: entries must be a list")
    parse = _passwd if kind == "passwd" else _group
    out = []
    for item in entries:
        if not isinstance(item, list | tuple):
            raise ConfigError(f"{kind}: an entry is not a list")
        out.append(parse(item))
    _unique(out, kind)
    return out


def _unique(entries: Iterable[Entry], kind: str) -> None:
    names: set[str] = set()
    ids: set[int] = set()
    for e in entries:
        if e.name in names:
            raise ConfigError(f"{kind}: duplicate name {e.name!r}")
        if e.ident in ids:
            raise ConfigError(f"{kind}: duplicate id {e.ident} ({e.name!r})")
        names.add(e.name)
        ids.add(e.ident)


def parse_local(kind: str, text: str) -> list[Entry]:
    """The node's current file (lenient: unparsable lines are kept verbatim only if they are system lines)."""
    width = 7 if kind == "passwd" else 4
    out = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) != width or not fields[2].isdigit():
            continue
        out.append(Entry(fields[0], int(fields[2]), tuple(fields)))
    return out


def merge(local: Sequence[Entry], incoming: Sequence[Entry]) -> list[Entry]:
    """Local system entries (id ≤ 999, and root) first, untouched; then the master's entries except those
    whose name or id collides with a kept local entry.  A local line identical to a master entry is the
    master's (written by an earlier sync), so a repeated sync is a no-op rather than a reordering."""
    wanted = set(incoming)
    kept = [e for e in local if (e.ident <= SYSTEM_MAX or e.name == "root") and e not in wanted]
    names = {e.name for e in kept}
    ids = {e.ident for e in kept}
    return kept + [e for e in incoming if e.name not in names and e.ident not in ids]


@dataclass(frozen=True)
class Outcome:
    path: Path
    changed: bool
    entries: int
    skipped: int


def apply(root: Path, kind: str, entries: Any) -> Outcome:
    """Validate, merge with the node's file and replace it atomically if anything changed."""
    incoming = validate(kind, entries)
    path = root / "etc" / kind
    try:
        old = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        old = ""
    merged = merge(parse_local(kind, old), incoming)
    _unique(merged, kind)
    text = "".join(e.line() + "\n" for e in merged)
    present = set(merged)
    skipped = sum(1 for e in incoming if e not in present)
    if text == old:
        return Outcome(path, False, len(merged), skipped)
    replace_file(path, text.encode("utf-8", errors="surrogateescape"))
    return Outcome(path, True, len(merged), skipped)
