"""Bash completion for `perceus` (argcomplete): nouns, verbs, options, node, group and capsule names.

`scripts/setup` installs `register-python-argcomplete perceus` into /etc/bash_completion.d; bash then runs
`perceus` with `_ARGCOMPLETE` set and this module answers from the parser tree plus the store (node and
group names) and the capsule directory (VNFS names): no `perceus node list` subprocess per TAB.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from typing import Any

from perceus.master.cli.context import CliContext
from perceus.master.cli.helptext import children

Completer = Callable[..., Iterable[str]]
# `node set KEY VALUE NODE…`: the attributes 1.x documents (FAQ: debug, desc, enabled, group, hostname, vnfs).
NODE_KEYS = ("debug", "desc", "enabled", "group", "hostname", "vnfs", "ip", "boot")
# The global options split_globals takes anywhere on the line; offered at the top level.
GLOBALS = ("-i", "-y", "-n", "-q", "-v", "-d", "-e", "--nodeid", "--yes", "--no", "--quiet", "--verbose",
           "--debug", "--json", "--config-dir", "--state-dir")  # fmt: skip


class Names:
    """Node, group and capsule names of this master, read once per completion."""

    def __init__(self, ctx: CliContext) -> None:
        self.ctx = ctx

    def nodes(self) -> list[str]:
        try:
            return [n.hostname for n in self.ctx.store.list_nodes()]
        except Exception:  # a completion never fails loudly (no database yet, locked, …)  # noqa: BLE001
            return []

    def groups(self) -> list[str]:
        try:
            return list(self.ctx.store.groups())
        except Exception:  # noqa: BLE001 - an error boundary: any failure here is one line and the caller goes on
            return []

    def capsules(self) -> list[str]:
        try:
            return sorted(p.name for p in self.ctx.paths.vnfs.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return []


def _lazy(source: Callable[[], list[str]]) -> Completer:
    def complete(**_: Any) -> Iterable[str]:
        return source()

    return complete


def _set_args(names: Names, targets: Callable[[], list[str]]) -> Completer:
    """`KEY VALUE NAME…`: attribute names, then a value (capsules, groups, 0-3, yes/no), then node names."""

    def complete(parsed_args: argparse.Namespace, **_: Any) -> Iterable[str]:
        given = list(getattr(parsed_args, "args", None) or [])
        if not given:
            return NODE_KEYS
        if len(given) == 1:
            key = given[0]
            if key == "vnfs":
                return names.capsules()
            if key == "group":
                return names.groups()
            if key == "debug":
                return ("0", "1", "2", "3")
            if key == "enabled":
                return ("yes", "no")
            return ()
        return targets()

    return complete


def attach(parser: argparse.ArgumentParser, names: Names) -> None:
    """Give every positional that takes a name the completer for it; global options at the top level."""
    for option in GLOBALS:
        parser.add_argument(option, action="store_true", help="global option (anywhere on the line)")
    by_dest: dict[tuple[str, str], Completer] = {
        ("node", "nodes"): _lazy(names.nodes),
        ("node", "node"): _lazy(names.nodes),
        ("node", "old"): _lazy(names.nodes),
        ("node", "args"): _set_args(names, names.nodes),
        ("group", "groups"): _lazy(names.groups),
        ("group", "args"): _set_args(names, names.groups),
        ("vnfs", "name"): _lazy(names.capsules),
        ("vnfs", "globs"): _lazy(names.capsules),
        ("vnfs", "source"): _lazy(names.capsules),
    }
    for noun, sub in children(parser).items():
        for verb_parser in [sub, *children(sub).values()]:
            for action in verb_parser._actions:
                completer = by_dest.get((noun, action.dest))
                if completer is not None and not action.option_strings:
                    if noun == "vnfs" and action.dest == "source" and verb_parser.prog.endswith(" import"):
                        continue  # `vnfs import SOURCE` is a path: the shell's file completion
                    action.completer = completer  # type: ignore[attr-defined]


def autocomplete(parser: argparse.ArgumentParser, ctx: CliContext) -> None:
    """Answer a bash completion request and exit (argcomplete's protocol); a no-op otherwise."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    attach(parser, Names(ctx))
    argcomplete.autocomplete(parser, always_complete_options="long")
