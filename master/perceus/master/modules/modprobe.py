"""The modprobe module's file: `<config>/modules/modprobe`, lines `name: mod1 mod2`.

`name` is `all`, a node, a group or a capsule (vnfs) name.  Perceus 1.x wrote the selector as a regex
character class, so almost every line matched every node (1.x ref §8.2); here a line applies only when its
name equals `all` or one of the node's own names.  Module names are checked, so nothing but a module name
ever reaches the node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from perceus.errors import ConfigError
from perceus.master.store.models import Node

_KMOD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Entry:
    name: str
    modules: tuple[str, ...]


def parse(text: str, source: str = "modprobe") -> tuple[Entry, ...]:
    entries: list[Entry] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or not name or " " in name:
            raise ConfigError(f"expected 'name: module …', got {line[:60]!r}", path=source, line=n)
        mods = tuple(rest.split())
        for mod in mods:
            if not _KMOD.match(mod):
                raise ConfigError(f"{mod!r} is not a kernel module name", path=source, line=n)
        entries.append(Entry(name, mods))
    return tuple(entries)


def modules_for(entries: tuple[Entry, ...], node: Node) -> tuple[str, ...]:
    """Modules of every line naming `all`, the node, its group or its capsule, in file order, once each."""
    names = {"all", node.hostname} | ({node.group} if node.group else set()) | ({node.vnfs} if node.vnfs else set())
    out: list[str] = []
    for entry in entries:
        if entry.name in names:
            out.extend(m for m in entry.modules if m not in out)
    return tuple(out)


def load(path: Path) -> tuple[Entry, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from None
    return parse(text, str(path))
