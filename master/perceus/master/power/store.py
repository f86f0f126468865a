"""The BMC file: `<state>/bmc/bmc.json`, mode 0600 in a 0700 directory, holding every node's and group's
BMC entry including passwords — kept out of the database, which other tools and users may read.

Read-modify-write happens under an flock on `<state>/bmc/.lock`, and the file is replaced atomically, so two
`perceus node set bmc …` at once never lose an entry.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from perceus.errors import ConfigError, UsageError
from perceus.master.config import Paths
from perceus.master.fsutil import atomic_write
from perceus.master.power.records import FIELDS, BmcRecord, resolve
from perceus.master.store.models import Node

Entry = dict[str, object]


def bmc_dir(paths: Paths) -> Path:
    return paths.state_dir / "bmc"


class BmcStore:
    """Node and group BMC entries; `resolve(node)` gives the record to use or the reason there is none."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.nodes: dict[str, Entry] = {}
        self.groups: dict[str, Entry] = {}

    @classmethod
    def for_paths(cls, paths: Paths) -> BmcStore:
        store = cls(bmc_dir(paths) / "bmc.json")
        store.load()
        return store

    def load(self) -> None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the BMC file: {exc}", path=str(self.path)) from None
        if not isinstance(raw, dict):
            raise ConfigError("the BMC file is not a JSON object", path=str(self.path))
        self.nodes = {str(k): _entry(v) for k, v in dict(raw.get("nodes", {})).items()}
        self.groups = {str(k): _entry(v) for k, v in dict(raw.get("groups", {})).items()}

    def save(self) -> None:
        data = {"version": 1, "nodes": self.nodes, "groups": self.groups}
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        atomic_write(self.path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(), mode=0o600)

    @contextmanager
    def editing(self) -> Iterator[BmcStore]:
        """Reload under the lock, let the caller change entries, save."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path.parent / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.load()
            yield self
            self.save()
        finally:
            os.close(fd)

    def update(self, table: str, key: str, fields: Mapping[str, object]) -> None:
        """Merge `fields` into one entry (`table` is "nodes" or "groups"); an empty value removes a field."""
        entries = self.nodes if table == "nodes" else self.groups
        entry = dict(entries.get(key, {}))
        for name, value in fields.items():
            if name not in FIELDS:
                raise ValueError(name)
            if value in (None, ""):
                entry.pop(name, None)
            else:
                entry[name] = value
        if entry:
            entries[key] = entry
        else:
            entries.pop(key, None)

    def resolve(self, node: Node) -> BmcRecord | str:
        return resolve(node.hostname, self.groups.get(node.group, {}), self.nodes.get(node.nodeid, {}))

    def public(self, node: Node) -> dict[str, object]:
        """What `perceus node bmc` may show: the merged entry without the password (only whether one is set)."""
        merged = {**self.groups.get(node.group, {}), **self.nodes.get(node.nodeid, {})}
        shown: dict[str, object] = {k: v for k, v in merged.items() if k != "password"}
        shown["password"] = "set" if merged.get("password") else "unset"
        resolved = self.resolve(node)
        shown["url"] = resolved.url if isinstance(resolved, BmcRecord) else ""
        shown["problem"] = "" if isinstance(resolved, BmcRecord) else resolved
        return shown


def _entry(value: Any) -> Entry:
    return {str(k): v for k, v in dict(value).items() if k in FIELDS} if isinstance(value, dict) else {}


def read_password(source: str, stdin_line: Callable[[], str]) -> str:
    """`-` reads one line from stdin, `@FILE` the first line of a file; a literal is refused (shell history)."""
    if source == "-":
        value = stdin_line()
    elif source.startswith("@"):
        try:
            value = Path(source[1:]).read_text(encoding="utf-8").splitlines()[0] if source[1:] else ""
        except (OSError, IndexError) as exc:
            raise ConfigError(f"cannot read the password file: {exc}", path=source[1:]) from None
    else:
        raise UsageError("give the BMC password as - (one line on stdin) or @FILE, never on the command line")
    value = value.rstrip("\r\n")
    if not value:
        raise UsageError("empty BMC password")
    return value
