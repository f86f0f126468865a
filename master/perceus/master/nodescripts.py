"""Node scripts: the Perceus 1.x `nodescripts/<state>/{vnfs/V,all,group/G,node/N}` tree (1.x ref §5.5).

Selection and order are the original's: a more specific scope overrides a same-named file (node > group >
all > vnfs), names ending in `~` are skipped, and the result is sorted by basename.  Executable files run on
the master with the original environment and their stdout is sent; other files are sent from their first
`#!/bin/sh` line.  Better than the original: IPADDR is filled in, scripts never run inside the bus loop
(the caller runs `render` in a worker when `needs_master` is true), and a failing or slow generator yields
a script that fails loudly on the node instead of a truncated one.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from perceus.master.legacy import stock_generators
from perceus.master.store.models import Node
from perceus.protocol import names
from perceus.protocol.messages import Script

log = structlog.get_logger("perceus.nodescripts")

GENERATOR_TIMEOUT = 20.0
# Plans are cached this long: a new or removed script reaches nodes within a second, and a check-in
# does not pay four directory stats (this is the hot path at thousands of check-ins per second).
PLAN_TTL = 1.0
MAX_SCRIPT_BYTES = 512 * 1024
_SAFE = str.maketrans({c: "_" for c in "/\\\0\n "})


@dataclass(frozen=True)
class Entry:
    """One selected script file."""

    name: str
    path: Path
    executable: bool
    # A stock 1.x generator answered in-process (legacy/stock_generators.py): no fork, no worker thread.
    native: stock_generators.Native | None = None


@dataclass(frozen=True)
class Plan:
    """The scripts that apply to one (state, node), before rendering."""

    entries: tuple[Entry, ...]

    @property
    def needs_master(self) -> bool:
        """True when a generator must run as a process on the master (render it off the event loop)."""
        return any(e.executable and e.native is None for e in self.entries)


def environment(node: Node, state: str, statedir: Path, master_ip: str) -> dict[str, str]:
    """The variables Perceus 1.x gave node scripts (1.x ref §5.5); IPADDR is the node's address (fixed)."""
    return {
        "PATH": "/bin:/usr/bin:/sbin:/usr/sbin",
        "STATE": state,
        "NODENAME": node.hostname,
        "NODEID": node.nodeid,
        "GROUPNAME": node.group,
        "VNFS": node.vnfs,
        "ENABLED": "1" if node.enabled else "",
        "DEBUG": str(node.debug) if node.debug else "",
        "IPADDR": node.ip,
        "STATEDIR": str(statedir),
        "VNFSMASTER": master_ip,
        "VNFSMETHOD": "bus",
        "VNFSPREFIX": "",
    }


class NodeScripts:
    """Selects and renders node scripts; caches directory listings and file bodies by mtime."""

    def __init__(
        self, root: Path, *, clock: Callable[[], float] | None = None, ttl: float = PLAN_TTL, native: bool = True
    ) -> None:
        self.root = root
        self._native = native  # False: every generator runs as a process, as in 1.x (tests compare the two)
        self._clock = clock
        self._ttl = ttl
        self._plans: dict[tuple[str, str, str, str], tuple[float, Plan]] = {}
        self._node_listing: dict[str, tuple[float, frozenset[str]]] = {}
        self._listing: dict[Path, tuple[int, tuple[Entry, ...]]] = {}
        self._bodies: dict[Path, tuple[int, int, str]] = {}

    def _list(self, directory: Path) -> tuple[Entry, ...]:
        try:
            mtime = directory.stat().st_mtime_ns
        except OSError:
            return ()
        cached = self._listing.get(directory)
        if cached and cached[0] == mtime:
            return cached[1]
        entries: list[Entry] = []
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            names = []
        for name in names:
            if name.endswith("~") or name.startswith("."):
                continue
            path = directory / name
            try:
                st = path.stat()  # follows module symlinks, as the original did
            except OSError:
                log.warning("nodescript_dangling", path=str(path))
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            executable = bool(st.st_mode & 0o111)
            native = stock_generators.recognise(path) if executable and self._native else None
            entries.append(Entry(name=name, path=path, executable=executable, native=native))
        result = tuple(entries)
        self._listing[directory] = (mtime, result)
        return result

    def plan(self, state: str, node: Node) -> Plan:
        """Which files apply, in execution order (cached for PLAN_TTL when a clock was given)."""
        if not names.valid("state", state):  # `..` etc. must never become a path component under nodescripts/
            return Plan(())
        if self._clock is None:
            return self._plan(state, node)
        now = self._clock()
        # Nodes without a `node/<name>` directory of their own (nearly all) share one plan per state, capsule
        # and group, so a node's first check-in is usually a cache hit too.
        own = node.hostname if node.hostname.strip().translate(_SAFE) in self._node_dirs(state, now) else ""
        key = (state, node.vnfs, node.group, own)
        hit = self._plans.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        if len(self._plans) > 100_000:
            self._plans.clear()
        plan = self._plan(state, node)
        self._plans[key] = (now, plan)
        return plan

    def _node_dirs(self, state: str, now: float) -> frozenset[str]:
        """Names under `<state>/node/`, re-listed at most every PLAN_TTL."""
        hit = self._node_listing.get(state)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        try:
            names = frozenset(os.listdir(self.root / state.translate(_SAFE) / "node"))
        except OSError:
            names = frozenset()
        self._node_listing[state] = (now, names)
        return names

    def _plan(self, state: str, node: Node) -> Plan:
        base = self.root / state.translate(_SAFE)
        scopes = [
            base / "vnfs" / node.vnfs.strip().translate(_SAFE) if node.vnfs.strip() else None,
            base / "all",
            base / "group" / node.group.strip().translate(_SAFE) if node.group.strip() else None,
            base / "node" / node.hostname.strip().translate(_SAFE),
        ]
        chosen: dict[str, Entry] = {}
        for scope in scopes:
            if scope is not None:
                for entry in self._list(scope):
                    chosen[entry.name] = entry  # later (more specific) scopes win
        return Plan(tuple(chosen[name] for name in sorted(chosen)))

    def _body(self, path: Path) -> str:
        try:
            st = path.stat()
        except OSError:
            return ""
        cached = self._bodies.get(path)
        if cached and cached[0] == st.st_mtime_ns and cached[1] == st.st_size:
            return cached[2]
        text = path.read_bytes()[:MAX_SCRIPT_BYTES].decode("utf-8", "replace")
        lines = text.splitlines(keepends=True)
        for i, line in enumerate(lines):
            if line.startswith("#!/bin/sh"):
                body = "".join(lines[i:])
                break
        else:
            log.warning("nodescript_without_shebang", path=str(path))
            body = ""
        self._bodies[path] = (st.st_mtime_ns, st.st_size, body)
        return body

    def render(self, plan: Plan, env: Mapping[str, str]) -> tuple[Script, ...]:
        """Turn a plan into scripts; runs generators (executables) on the master — may block."""
        out: list[Script] = []
        for entry in plan.entries:
            if entry.executable:
                out.append(Script(name=entry.name, body=self._native_or_generate(entry, env)))
            else:
                body = self._body(entry.path)
                if body:
                    out.append(Script(name=entry.name, body=body))
        return tuple(out)

    def _native_or_generate(self, entry: Entry, env: Mapping[str, str]) -> str:
        """A stock generator's output made natively when it still is stock (one stat) and can; else run it."""
        if entry.native is not None and stock_generators.recognise(entry.path) is entry.native:
            body = entry.native(env)
            if body is not None:
                return body
        return self._generate(entry, env)

    def _generate(self, entry: Entry, env: Mapping[str, str]) -> str:
        try:
            proc = subprocess.run(
                [str(entry.path)],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=GENERATOR_TIMEOUT,
                check=False,
                cwd=self.root,
            )
        except subprocess.TimeoutExpired:
            log.error("nodescript_timeout", script=entry.name, timeout=GENERATOR_TIMEOUT)
            return f"echo 'ERROR: node script {entry.name} timed out on the master' >&2\nexit 1\n"
        except OSError as exc:
            log.error("nodescript_failed", script=entry.name, error=exc.strerror)
            return f"echo 'ERROR: node script {entry.name} could not run on the master' >&2\nexit 1\n"
        if proc.stderr:
            log.info("nodescript_stderr", script=entry.name, stderr=proc.stderr[-500:].decode("utf-8", "replace"))
        if proc.returncode != 0:
            log.warning("nodescript_exit", script=entry.name, status=proc.returncode)
        return proc.stdout[:MAX_SCRIPT_BYTES].decode("utf-8", "replace")
