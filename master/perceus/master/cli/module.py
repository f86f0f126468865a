"""`perceus module …` (1.x ref §4.7): list, activate, deactivate, show, summary, states, import, delete; plus
`perceus node exec` (xcpu), registered into the node noun by `register_exec`."""

from __future__ import annotations

import argparse
import fnmatch
import time
from collections.abc import Sequence
from typing import Any

from perceus.errors import ConflictError, NotFoundError, PerceusError, UsageError
from perceus.master.cli.context import CliContext
from perceus.master.cli.nodespec import select
from perceus.master.modules import pmod, registry, seed
from perceus.master.modules.roles import overlap, parse_role
from perceus.master.store.models import Activation

EXEC_POLL = 0.05


def register(sub: Any) -> None:
    p = sub.add_parser("module", help="activate and inspect Perceus modules")
    verbs = p.add_subparsers(dest="verb", metavar="<subcommand>", parser_class=type(p))
    for name, func, hlp in (
        ("list", list_, "installed modules (built-in and imported)"),
        ("summary", summary, "each module with its active roles"),
        ("states", states, "each role with its active modules"),
    ):
        v = verbs.add_parser(name, help=hlp)
        v.add_argument("globs", nargs="*", default=["*"])
        v.set_defaults(func=func)
    v = verbs.add_parser("activate", help="activate for roles STATE/all|group/G|vnfs/V|node/N (default roles)")
    v.add_argument("module")
    v.add_argument("roles", nargs="*")
    v.set_defaults(func=activate)
    v = verbs.add_parser("deactivate", help="deactivate for roles (all of them when none are given)")
    v.add_argument("module")
    v.add_argument("roles", nargs="*")
    v.set_defaults(func=deactivate)
    v = verbs.add_parser("show", help="what a module does, its default and active roles, its configuration")
    v.add_argument("module")
    v.set_defaults(func=show)
    v = verbs.add_parser("import", help="install a Perceus 1.x module (*.pmod)")
    v.add_argument("file")
    v.set_defaults(func=import_)
    v = verbs.add_parser("delete", help="deactivate everywhere and remove an imported module")
    v.add_argument("module")
    v.set_defaults(func=delete)


def register_exec(node_verbs: Any) -> None:
    """`perceus node exec NODES… -- COMMAND ARGS…` (called by the node noun's register)."""
    v = node_verbs.add_parser("exec", help="run a command on nodes with the xcpu module active")
    v.add_argument("--timeout", type=float, default=60.0, help="seconds per node (default 60)")
    v.add_argument("args", nargs=argparse.REMAINDER, metavar="NODES… -- COMMAND")
    v.set_defaults(func=exec_)


# ---------------------------------------------------------------------------------------------- helpers


def _known(ctx: CliContext) -> list[str]:
    return sorted(set(registry.BUILTIN) | set(pmod.installed(ctx.paths)))


def _require(ctx: CliContext, module: str) -> None:
    if module not in registry.BUILTIN and module not in pmod.installed(ctx.paths):
        raise NotFoundError("module", module)


def _match(names: Sequence[str], globs: Sequence[str]) -> list[str]:
    return [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)]


def _changed(ctx: CliContext) -> None:
    ctx.notify("modules_changed")


def _conflicts(ctx: CliContext, wanted: Sequence[Activation]) -> None:
    """masterauth with passwdfile/groupfile on overlapping scopes is refused before anything is written."""
    existing = ctx.store.activations()
    for new in wanted:
        for one, others in registry.CONFLICTS:
            rivals = others if new.module == one else ({one} if new.module in others else set())
            for old in existing:
                if old.module in rivals and overlap(new, old):
                    raise ConflictError(
                        f"module {new.module!r} at {new.role!r} would meet {old.module!r} active at {old.role!r} on "
                        f"the same nodes; both write /etc/passwd or /etc/group (deactivate {old.module!r} first)"
                    )


# ---------------------------------------------------------------------------------------------- verbs


def list_(ctx: CliContext, ns: argparse.Namespace) -> int:
    names = _match(_known(ctx), ns.globs)
    active = {a.module for a in ctx.store.activations()}
    if ctx.json:
        ctx.emit_json(
            [
                {"name": n, "builtin": n in registry.BUILTIN, "active": n in active,
                 "summary": registry.BUILTIN[n].summary if n in registry.BUILTIN else "imported 1.x module"}
                for n in names
            ]
        )  # fmt: skip
        return 0
    for n in names:
        ctx.out(n)
    return 0


def _roles(ctx: CliContext, module: str, roles: Sequence[str]) -> list[Activation]:
    if roles:
        return [parse_role(module, r) for r in roles]
    defaults = (
        registry.BUILTIN[module].default_roles if module in registry.BUILTIN else pmod.default_roles(ctx.paths, module)
    )
    if not defaults:
        raise UsageError(f"module {module!r} has no default roles; name them (e.g. ready/all)")
    return [parse_role(module, r) for r in defaults]


def activate(ctx: CliContext, ns: argparse.Namespace) -> int:
    module = ns.module
    _require(ctx, module)
    wanted = _roles(ctx, module, ns.roles)  # every role is checked before anything is written
    have = set(ctx.store.activations(module))
    new = [a for a in dict.fromkeys(wanted) if a not in have]
    for a in wanted:
        if a in have:
            ctx.warn(f"module '{module}' is already active at '{a.role}'")
    if not new:
        return 0
    _conflicts(ctx, new)
    links: list[Any] = []
    try:
        if module in registry.BUILTIN:
            for path in seed.seed(ctx.paths, module):
                ctx.info(f"Created {path}")
        else:
            for a in new:
                links.extend(pmod.link(ctx.paths, a))
        ctx.store.activate(new)
    except BaseException:
        for path in links:
            path.unlink(missing_ok=True)
        raise
    _changed(ctx)
    for a in new:
        ctx.info(f"Perceus Module '{module}' has been enabled in '{a.role}'")
    return 0


def deactivate(ctx: CliContext, ns: argparse.Namespace) -> int:
    module = ns.module
    _require(ctx, module)
    active = ctx.store.activations(module)
    chosen = [parse_role(module, r) for r in ns.roles] if ns.roles else active
    gone = [a for a in chosen if a in active]
    for a in chosen:
        if a not in active:
            ctx.warn(f"module '{module}' is not active at '{a.role}'")
    if not gone:
        return 0 if not ns.roles else 1
    ctx.store.deactivate(gone)
    if module not in registry.BUILTIN:
        for a in gone:
            pmod.unlink(ctx.paths, a)
    _changed(ctx)
    for a in gone:
        ctx.info(f"Perceus Module '{module}' has been disabled in '{a.role}'")
    return 0


def show(ctx: CliContext, ns: argparse.Namespace) -> int:
    module = ns.module
    _require(ctx, module)
    kind = registry.BUILTIN.get(module)
    info: dict[str, Any] = {
        "name": module,
        "builtin": kind is not None,
        "summary": kind.summary if kind else "imported 1.x module (node scripts)",
        "default_roles": list(kind.default_roles) if kind else pmod.default_roles(ctx.paths, module),
        "active": [a.role for a in ctx.store.activations(module)],
        "config": str(seed.config_path(ctx.paths, module)) if kind else "",
        "scripts": [] if kind else [p.name for p in pmod.scripts(ctx.paths, module)],
    }
    if ctx.json:
        ctx.emit_json(info)
        return 0
    ctx.out(f"{module}: {info['summary']}")
    ctx.out(f"   default roles: {' '.join(info['default_roles']) or '-'}")
    ctx.out(f"   active:        {' '.join(info['active']) or '-'}")
    if info["config"]:
        ctx.out(f"   config:        {info['config']}")
    if info["scripts"]:
        ctx.out(f"   node scripts:  {' '.join(info['scripts'])}")
    return 0


def summary(ctx: CliContext, ns: argparse.Namespace) -> int:
    names = _match(_known(ctx), ns.globs)
    by_module: dict[str, list[str]] = {n: [] for n in names}
    for a in ctx.store.activations():
        if a.module in by_module:
            by_module[a.module].append(a.role)
    if ctx.json:
        ctx.emit_json(by_module)
        return 0
    for name, roles in by_module.items():
        ctx.out(f"{name}:")
        for role in roles:
            ctx.out(f"\t{role}")
    return 0


def states(ctx: CliContext, ns: argparse.Namespace) -> int:
    names = set(_match(_known(ctx), ns.globs))
    by_role: dict[str, list[str]] = {}
    for a in ctx.store.activations():
        if a.module in names:
            by_role.setdefault(a.role, []).append(a.module)
    by_role = dict(sorted(by_role.items()))
    if ctx.json:
        ctx.emit_json(by_role)
        return 0
    for role, modules in by_role.items():
        ctx.out(f"{role}:")
        for m in modules:
            ctx.out(f"   {m}")
    return 0


def import_(ctx: CliContext, ns: argparse.Namespace) -> int:
    from pathlib import Path

    name = pmod.import_pmod(ctx.paths, Path(ns.file))
    ctx.info(f"Perceus Module '{name}' has been imported; activate it with 'perceus module activate {name}'")
    for program in ("install", "activate"):
        if (pmod.modules_dir(ctx.paths) / name / program).exists():
            ctx.warn(f"the module's '{program}' program was not run (review it and run it by hand if needed)")
    return 0


def delete(ctx: CliContext, ns: argparse.Namespace) -> int:
    module = ns.module
    if module in registry.BUILTIN:
        raise UsageError(f"'{module}' is built in; deactivate it instead")
    _require(ctx, module)
    if not ctx.confirm(f"Delete module '{module}'?"):
        return 1
    active = ctx.store.activations(module)
    if active:
        ctx.store.deactivate(active)
        for a in active:
            pmod.unlink(ctx.paths, a)
        _changed(ctx)
    pmod.delete(ctx.paths, module)
    ctx.info(f"Perceus Module '{module}' has been deleted")
    return 0


def _split_exec(args: Sequence[str]) -> tuple[list[str], list[str]]:
    args = list(args)
    if "--" not in args:
        raise UsageError("perceus node exec: separate the command with '--' (node exec NODES… -- COMMAND)")
    cut = args.index("--")
    nodes, argv = args[:cut], args[cut + 1 :]
    if not nodes or not argv:
        raise UsageError("perceus node exec: need NODES… -- COMMAND [ARGS…]")
    return nodes, argv


def exec_(ctx: CliContext, ns: argparse.Namespace) -> int:
    specs, argv = _split_exec(ns.args)
    nodes, missing = select(ctx.store.list_nodes(), specs, by_nodeid=ctx.by_nodeid)
    if not nodes:
        raise NotFoundError("node", " ".join(specs))
    for name in missing:
        ctx.warn(f"node '{name}' does not exist")
    reply = ctx.notify("exec", nodes=[n.nodeid for n in nodes], argv=argv, seconds=ns.timeout)
    if reply is None:
        raise PerceusError("perceus-bus is not running (node exec goes over the bus)")
    if not reply.get("ok"):
        raise PerceusError(f"perceus-bus refused the command: {reply.get('error')}")
    job = reply["job"]
    deadline = time.monotonic() + ns.timeout + 5.0
    results: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = ctx.notify("exec_results", job=job)
        if state is None or not state.get("ok"):
            break
        results = state.get("results", {})
        if state.get("done"):
            break
        time.sleep(EXEC_POLL)
    failed = 0
    rows: list[dict[str, Any]] = []
    for node in nodes:
        r = results.get(node.nodeid)
        if r is None:
            failed += 1
            rows.append({"node": node.hostname, "status": None, "stdout": "", "stderr": "no answer (timed out)"})
            continue
        failed += r["status"] != 0
        rows.append({"node": node.hostname, "status": r["status"],
                     "stdout": bytes(r["stdout"]).decode(errors="replace"),
                     "stderr": bytes(r["stderr"]).decode(errors="replace")})  # fmt: skip
    if ctx.json:
        ctx.emit_json(rows)
    else:
        for row in rows:
            status = "timed out" if row["status"] is None else f"exit {row['status']}"
            ctx.out(f"{row['node']}: {status}")
            for line in (row["stdout"] + row["stderr"]).splitlines():
                ctx.out(f"   {line}")
    return 1 if failed else 0
