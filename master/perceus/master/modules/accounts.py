"""User and group actions: masterauth (the master's NSS view) and passwdfile/groupfile (merged config files).

Entries travel typed (lists of fields), never as shell: the node validates them again before writing.  Like
Perceus 1.x's masterauth, no shadow data is ever sent (passwords stay `x`; logins use SSH keys).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perceus.errors import ConfigError
from perceus.master.store.models import Node

NSS_TTL = 60.0  # LDAP/NIS have no mtime to watch: re-read the NSS view at most this often
_NAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}\$?$")
_FREE = re.compile(r"^[^:\n]*$")

PasswdEntry = tuple[str, str, int, int, str, str, str]  # name, passwd, uid, gid, gecos, home, shell
GroupEntry = tuple[str, str, int, tuple[str, ...]]  # name, passwd, gid, members


def parse_passwd_line(line: str, where: str = "") -> PasswdEntry:
    fields = line.split(":")
    if len(fields) != 7:
        raise ConfigError(f"passwd line needs 7 fields, has {len(fields)}: {line[:60]!r}", path=where or None)
    name, pw, uid, gid, gecos, home, shell = fields
    if not _NAME.match(name):
        raise ConfigError(f"bad user name {name!r}", path=where or None)
    if not (uid.isdigit() and gid.isdigit()):
        raise ConfigError(f"user {name!r}: uid/gid must be numbers", path=where or None)
    return (name, "x" if pw else "", int(uid), int(gid), gecos, home, shell)


def parse_group_line(line: str, where: str = "") -> GroupEntry:
    fields = line.split(":")
    if len(fields) != 4:
        raise ConfigError(f"group line needs 4 fields, has {len(fields)}: {line[:60]!r}", path=where or None)
    name, pw, gid, members = fields
    if not _NAME.match(name):
        raise ConfigError(f"bad group name {name!r}", path=where or None)
    if not gid.isdigit():
        raise ConfigError(f"group {name!r}: gid must be a number", path=where or None)
    users = tuple(m for m in members.split(",") if m)
    for user in users:
        if not _NAME.match(user):
            raise ConfigError(f"group {name!r}: bad member {user!r}", path=where or None)
    return (name, "x" if pw else "", int(gid), users)


def check_unique(names: Iterable[str], ids: Iterable[int], what: str) -> None:
    """Duplicate names or ids make a file ambiguous: refuse it whole."""
    seen_names: set[str] = set()
    seen_ids: set[int] = set()
    for name, num in zip(names, ids, strict=True):
        if name in seen_names:
            raise ConfigError(f"duplicate {what} name {name!r}")
        if num in seen_ids:
            raise ConfigError(f"duplicate {what} id {num} ({name!r})")
        seen_names.add(name)
        seen_ids.add(num)


def _clean(text: str) -> str:
    return text if _FREE.match(text) else text.replace(":", " ").replace("\n", " ")


@dataclass
class NssAccounts:
    """masterauth: the master's users and groups from NSS (files, LDAP, NIS …), cached."""

    ttl: float = NSS_TTL
    clock: Callable[[], float] = time.monotonic
    watch: tuple[Path, ...] = (Path("/etc/passwd"), Path("/etc/group"))
    getpwall: Callable[[], list[pwd.struct_passwd]] = pwd.getpwall
    getgrall: Callable[[], list[grp.struct_group]] = grp.getgrall
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stamp: tuple[int, ...] = ()
    _checked: float = -1e18
    _data: tuple[tuple[PasswdEntry, ...], tuple[GroupEntry, ...]] = ((), ())
    generation: int = 0

    def _mtimes(self) -> tuple[int, ...]:
        out = []
        for path in self.watch:
            try:
                out.append(path.stat().st_mtime_ns)
            except OSError:
                out.append(0)
        return tuple(out)

    def get(self) -> tuple[tuple[PasswdEntry, ...], tuple[GroupEntry, ...]]:
        with self._lock:
            now = self.clock()
            stamp = self._mtimes() if now - self._checked >= 1.0 or not self._stamp else self._stamp
            if stamp != self._stamp or now - self._checked >= self.ttl:
                self._data = self._read()
                self._stamp, self._checked = stamp, now
                self.generation += 1
            return self._data

    def _read(self) -> tuple[tuple[PasswdEntry, ...], tuple[GroupEntry, ...]]:
        users: dict[str, PasswdEntry] = {}
        for p in self.getpwall():  # NSS may list a user twice (files + LDAP): first wins, as getpwnam does
            users.setdefault(
                p.pw_name,
                (p.pw_name, "x", p.pw_uid, p.pw_gid, _clean(p.pw_gecos), _clean(p.pw_dir), _clean(p.pw_shell)),
            )
        groups: dict[str, GroupEntry] = {}
        for g in self.getgrall():
            groups.setdefault(g.gr_name, (g.gr_name, "x", g.gr_gid, tuple(g.gr_mem)))
        return tuple(users.values()), tuple(groups.values())


def merge_parts(base: Path, node: Node) -> list[Path]:
    """passwdfile/groupfile: `all`, then `vnfs/V`, `group/G`, `node/N` — the original's concatenation order."""
    parts = [base / "all"]
    if node.vnfs:
        parts.append(base / "vnfs" / node.vnfs)
    if node.group:
        parts.append(base / "group" / node.group)
    parts.append(base / "node" / node.hostname)
    return parts


def merged_lines(parts: Sequence[Path]) -> list[tuple[str, str]]:
    """(line, where) of every non-empty, non-comment line; missing parts are skipped (1.x created them
    empty as a side effect; we never write the config tree while serving)."""
    out: list[tuple[str, str]] = []
    for path in parts:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read: {exc}", path=str(path)) from None
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.rstrip("\r")
            if line.strip() and not line.lstrip().startswith("#"):
                out.append((line, f"{path}:{n}"))
    return out


def passwd_from_files(parts: Sequence[Path]) -> tuple[PasswdEntry, ...]:
    entries = tuple(parse_passwd_line(line, where) for line, where in merged_lines(parts))
    check_unique((e[0] for e in entries), (e[2] for e in entries), "user")
    return entries


def group_from_files(parts: Sequence[Path]) -> tuple[GroupEntry, ...]:
    entries = tuple(parse_group_line(line, where) for line, where in merged_lines(parts))
    check_unique((e[0] for e in entries), (e[2] for e in entries), "group")
    return entries


def tree_stamp(base: Path) -> int:
    """A cheap change stamp for a passwdfile/groupfile tree: the newest mtime of its directories and files.
    Directories change when files are added or renamed in; files when edited in place."""
    newest = 0
    try:
        for dirpath, _dirs, files in os.walk(base):
            newest = max(newest, os.stat(dirpath).st_mtime_ns)
            for name in files:
                try:
                    newest = max(newest, os.stat(os.path.join(dirpath, name)).st_mtime_ns)
                except OSError:
                    pass
    except OSError:
        return 0
    return newest
