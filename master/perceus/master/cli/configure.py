"""`perceus configure …` (alias `config`): dhcpd, hosts, database, … — each verb in its own module when big."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from perceus.master.cli.context import CliContext
from perceus.master.fsutil import atomic_write

# Verbs that live in their own modules: (module, function that registers on the verbs subparsers).
_PLUGINS = (
    ("perceus.master.cli.configure_database", "register_database"),
    ("perceus.master.cli.configure_dhcpd", "register_dhcpd"),
    ("perceus.master.cli.configure_sshkeys", "register_sshkeys"),
    ("perceus.master.cli.configure_keys", "register_keys"),
)
BEGIN = "# BEGIN perceus nodes (managed by `perceus configure hosts`)"
END = "# END perceus nodes"


def register(sub: Any) -> None:
    p = sub.add_parser("configure", aliases=["config"], help="configure master services")
    verbs = p.add_subparsers(dest="verb", metavar="<subcommand>", parser_class=type(p))
    v = verbs.add_parser("hosts", help="/etc/hosts lines for nodes with an address")
    v.add_argument("--write", metavar="FILE", help="replace the managed block in FILE (e.g. /etc/hosts) atomically")
    v.set_defaults(func=hosts)
    for module, func in _PLUGINS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        getattr(mod, func)(verbs)


def host_lines(ctx: CliContext) -> list[str]:
    domain = ctx.config.raw.get("dns domain", [""])[0]
    lines = []
    for node in ctx.store.list_nodes():
        if node.ip:
            names = f"{node.hostname}.{domain} {node.hostname}" if domain else node.hostname
            lines.append(f"{node.ip}\t\t{names}")
    return lines


def merge_block(existing: str, lines: list[str]) -> str:
    """Replace (or append) the managed block; everything outside it is kept byte for byte."""
    block = "\n".join([BEGIN, *lines, END]) + "\n"
    if BEGIN in existing and END in existing:
        head, _, rest = existing.partition(BEGIN)
        _, _, tail = rest.partition(END)
        return head + block + tail.lstrip("\n")
    sep = "" if existing.endswith("\n") or not existing else "\n"
    return existing + sep + block


def hosts(ctx: CliContext, ns: argparse.Namespace) -> int:
    lines = host_lines(ctx)
    if ns.write:
        target = Path(ns.write)
        existing = target.read_text() if target.exists() else ""
        atomic_write(target, merge_block(existing, lines).encode(), mode=0o644)
        ctx.info(f"Wrote {len(lines)} node entries to {target}")
        return 0
    if ctx.json:
        ctx.emit_json([{"ip": ln.split()[0], "names": ln.split()[1:]} for ln in lines])
        return 0
    for line in lines:
        ctx.out(line)
    return 0
