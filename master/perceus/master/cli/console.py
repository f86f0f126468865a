"""`perceus node console NODE` (IPMI Serial-over-LAN, logged) and `perceus node log NODE` (the last boot's
console lines next to the agent's phase timeline), issue 19."""

from __future__ import annotations

import argparse
import os
import select
import termios
import threading
import time
import tty
from datetime import UTC, datetime
from typing import Any

from perceus.errors import NotFoundError, PerceusError, UsageError
from perceus.master.cli.context import CliContext
from perceus.master.cli.nodespec import select as select_nodes
from perceus.master.power import consolelog
from perceus.master.power.store import BmcStore
from perceus.master.store.models import Node

ESCAPE = b"~."  # after a newline, as ssh and ipmitool's SOL: detach


def register_console(verbs: Any) -> None:
    v = verbs.add_parser("console", help="attach to a node's Serial-over-LAN console (~. detaches); logged")
    v.add_argument("node")
    v.add_argument(
        "--capture",
        type=float,
        metavar="SECONDS",
        default=0.0,
        help="record and print SOL output for SECONDS without a terminal (no input)",
    )
    v.set_defaults(func=console)

    v = verbs.add_parser("log", help="a node's last boot: console lines and agent phases, in time order")
    v.add_argument("node")
    v.add_argument("--lines", type=int, default=200, help="at most this many console lines, newest (default 200)")
    v.add_argument("--all", action="store_true", help="every captured boot, not only the last")
    v.set_defaults(func=log)


def _one(ctx: CliContext, spec: str) -> Node:
    nodes, _ = select_nodes(ctx.store.list_nodes(), [spec], by_nodeid=ctx.by_nodeid)
    if len(nodes) != 1:
        if nodes:
            raise UsageError(f"{spec!r} names {len(nodes)} nodes; give exactly one")
        raise NotFoundError("node", spec)
    return nodes[0]


# ---------------------------------------------------------------------------------------------- console


def console(ctx: CliContext, ns: argparse.Namespace) -> int:
    node = _one(ctx, ns.node)
    record = BmcStore.for_paths(ctx.paths).resolve(node)
    if isinstance(record, str):
        raise PerceusError(f"{node.hostname}: {record}")
    if record.protocol != "ipmi":
        raise PerceusError(f"{node.hostname}: consoles need IPMI SOL (this BMC is {record.protocol})")
    interactive = ns.capture <= 0
    if interactive and not ctx.stdin.isatty():
        raise UsageError("node console needs a terminal; use --capture SECONDS to record without one")
    logfile = consolelog.ConsoleLog(consolelog.console_path(ctx.paths, node.hostname))
    out = ctx.stdout

    def on_data(data: bytes) -> None:
        logfile.feed(data)
        out.write(data.decode("utf-8", "replace"))
        out.flush()

    def on_note(text: str) -> None:
        logfile.note(text)
        print(f"perceus: {node.hostname}: {text}", file=ctx.stderr)

    from perceus.master.power.ipmi import SolConsole

    logfile.note(f"SOL attached ({record.url})")
    sol = SolConsole(record, on_data, on_note)
    try:
        if interactive:
            _interactive(ctx, sol, node.hostname)
        else:
            end = time.monotonic() + ns.capture
            sol.run(lambda: time.monotonic() >= end)
    finally:
        sol.close()
        logfile.flush()
        logfile.note("SOL detached")
    if sol.broken.is_set():
        raise PerceusError(f"{node.hostname}: SOL session lost ({record.url})")
    return 0


def _interactive(ctx: CliContext, sol: Any, hostname: str) -> None:
    fd = ctx.stdin.fileno()
    saved = termios.tcgetattr(fd)
    stop = threading.Event()
    print(f"[perceus: {hostname} console; type ~. after Enter to detach]\r", file=ctx.stderr)

    def pump() -> None:
        at_line_start, pending = True, b""
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            data = os.read(fd, 1024)
            if not data:
                stop.set()
                return
            for byte in data:
                ch = bytes([byte])
                if at_line_start and (pending + ch) == ESCAPE[: len(pending) + 1]:
                    pending += ch
                    if pending == ESCAPE:
                        stop.set()
                        return
                    continue
                sol.send(pending + ch)
                pending = b""
                at_line_start = ch in (b"\r", b"\n")

    tty.setraw(fd)
    reader = threading.Thread(target=pump, name="console-input", daemon=True)
    reader.start()
    try:
        sol.run(stop.is_set)
    finally:
        stop.set()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        print("\r\n[perceus: detached]", file=ctx.stderr)


# ---------------------------------------------------------------------------------------------- log


def log(ctx: CliContext, ns: argparse.Namespace) -> int:
    node = _one(ctx, ns.node)
    path = consolelog.console_path(ctx.paths, node.hostname)
    lines = consolelog.read(path)
    if not ns.all:
        lines = consolelog.last_boot(lines)
    if ns.lines > 0:
        lines = lines[-ns.lines :]
    events = ctx.store.events(node.nodeid)
    if ctx.json:
        ctx.emit_json(
            {
                "hostname": node.hostname,
                "console_log": str(path),
                "console": [{"t": ln.t, "text": ln.text} for ln in lines],
                "timeline": [e.as_dict() for e in events],
            }
        )
        return 0
    if not lines and not events:
        ctx.warn(f"nothing recorded for {node.hostname} (no {path}, no boot events)")
        return 1
    boot = events[0].boot_id if events else "-"
    ctx.info(f"{node.hostname}: boot {boot}; {len(lines)} console lines from {path}, {len(events)} agent phases")
    rows: list[tuple[float, int, str]] = [(ln.t, 0, f"  {ln.text}") for ln in lines]
    rows += [
        (
            e.t,
            1,
            f"* {e.phase} {'done' if e.done else 'start'}{'' if e.ok else ' FAILED'}"
            f"{'  ' + e.detail if e.detail else ''}",
        )
        for e in events
    ]
    for t, _, text in sorted(rows):
        ctx.out(f"{_clock(t)} {text}")
    return 0


def _clock(t: float) -> str:
    dt = datetime.fromtimestamp(t, UTC)
    return f"{dt.strftime('%H:%M:%S')}.{dt.microsecond // 1000:03d}"
