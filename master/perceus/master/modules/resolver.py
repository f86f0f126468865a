"""`actions_for(node, state)`: the typed module actions of one check-in, cached (it is on every check-in's path).

Activations are a snapshot refreshed on the bus loop (ticker + `modules_changed` control poke), never read
from the store here, because this may run in a nodescript worker thread.  Configuration files are
re-stat'ed at most once per second; any change bumps a generation that invalidates the per-(node, state)
cache.  The node's own fields are part of the cache key, so `perceus node set group …` needs no hook.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from perceus.errors import PerceusError
from perceus.master.config import Paths
from perceus.master.modules import accounts, ipaddr, modprobe, registry, rootkey
from perceus.master.modules.roles import applies
from perceus.master.modules.stateful import StatefulFlags
from perceus.master.store.models import Activation, Node
from perceus.protocol.messages import Action

log = structlog.get_logger("perceus.modules")

STAT_EVERY = 1.0
CACHE_MAX = 200_000


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@dataclass
class _Sources:
    """Parsed module configuration, re-read when a file's stamp changes."""

    ipaddr: tuple[ipaddr.Line, ...] = ()
    ipaddr_error: str = ""
    hosts: dict[str, str] | None = None
    modprobe: tuple[modprobe.Entry, ...] = ()
    modprobe_error: str = ""
    rootkey: tuple[str, ...] = ()
    rootkey_error: str = ""


class Resolver:
    def __init__(
        self,
        paths: Paths,
        *,
        master_device: Callable[[], str] = lambda: "",
        hosts_file: Path = Path("/etc/hosts"),
        nss: accounts.NssAccounts | None = None,
        net_lookup: Callable[[str], tuple[str, str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.paths = paths
        self.base = paths.config_dir / "modules"
        self.hosts_file = hosts_file
        self.nss = nss or accounts.NssAccounts()
        self.master_device = master_device
        self.net_lookup = net_lookup
        self.clock = clock
        self.stateful = StatefulFlags(self.base / "stateful")
        self._lock = threading.RLock()
        self._activations: tuple[Activation, ...] = ()
        self._generation = 0
        self._stamp: tuple[int, ...] = ()
        self._checked = -1e18
        self._sources = _Sources()
        self._cache: dict[tuple[Any, ...], tuple[int, tuple[Action, ...]]] = {}
        self.computed = 0  # cache misses (tests, stats)

    # ------------------------------------------------------------------ snapshot
    def set_activations(self, activations: Sequence[Activation]) -> None:
        snapshot = tuple(sorted(activations))
        with self._lock:
            if snapshot != self._activations:
                self._activations = snapshot
                self._generation += 1
                log.info("module_activations_loaded", count=len(snapshot))

    def _stamps(self) -> tuple[int, ...]:
        return (
            _mtime(self.base / "ipaddr"),
            _mtime(self.base / "modprobe"),
            _mtime(self.hosts_file),
            accounts.tree_stamp(self.base / "passwdfile"),
            accounts.tree_stamp(self.base / "groupfile"),
            _mtime(rootkey.keys_file(self.paths)),
        )

    def _refresh(self) -> None:
        now = self.clock()
        if now - self._checked < STAT_EVERY:
            return
        self._checked = now
        stamp = self._stamps()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        self._generation += 1
        src = _Sources()
        try:
            src.ipaddr = ipaddr.load(self.base / "ipaddr")
        except PerceusError as exc:
            src.ipaddr_error = str(exc)
            log.error("module_config_invalid", module="ipaddr", error=str(exc))
        try:
            src.modprobe = modprobe.load(self.base / "modprobe")
        except PerceusError as exc:
            src.modprobe_error = str(exc)
            log.error("module_config_invalid", module="modprobe", error=str(exc))
        try:
            src.rootkey = tuple(rootkey.load(rootkey.keys_file(self.paths)))
        except PerceusError as exc:
            src.rootkey_error = str(exc)
            log.error("module_config_invalid", module=rootkey.MODULE, error=str(exc))
        self._sources = src

    def _hosts(self) -> dict[str, str]:
        if self._sources.hosts is None:
            try:
                self._sources.hosts = ipaddr.parse_hosts(self.hosts_file.read_text(errors="replace"))
            except OSError:
                self._sources.hosts = {}
        return self._sources.hosts

    # ------------------------------------------------------------------ the hook
    def active(self, node: Node) -> list[Activation]:
        return [a for a in self._activations if applies(a, node)]

    def actions_for(self, node: Node, state: str) -> tuple[Action, ...]:
        with self._lock:
            self._refresh()
            names = {a.module for a in self.active(node)}
            users_gen = self.nss.generation if "masterauth" in names else 0
            if "masterauth" in names:
                self.nss.get()  # may bump the NSS generation (new LDAP user)
                users_gen = self.nss.generation
            key = (node.nodeid, node.hostname, node.group, node.vnfs, node.enabled, state)
            generation = self._generation * 1_000_003 + users_gen
            hit = self._cache.get(key)
            if hit is not None and hit[0] == generation:
                cached = hit[1]
            else:
                cached = self._compute(node, state)
                if len(self._cache) >= CACHE_MAX:
                    self._cache.clear()
                self._cache[key] = (generation, cached)
            return cached + self._stateful(node, state)

    def _stateful(self, node: Node, state: str) -> tuple[Action, ...]:
        if not any(a.module == "stateful" and a.state == state for a in self.active(node)):
            return ()
        try:
            if state == "init":
                return (self.stateful.init(node),)
            if state == "ready":
                return (self.stateful.ready(node),)
        except OSError as exc:
            log.error("module_failed", module="stateful", node=node.hostname, error=str(exc))
        return ()

    def _compute(self, node: Node, state: str) -> tuple[Action, ...]:
        self.computed += 1
        active = self.active(node)
        names = {a.module for a in active}
        if state == registry.BOOT_STATE:
            wanted = [a.module for a in active if a.state == "ready" or
                      (a.state == "init" and a.module in registry.BOOT_FROM_INIT)]  # fmt: skip
        else:
            wanted = [a.module for a in active if a.state == state]
        modules = [m for m in dict.fromkeys(wanted) if m in registry.BUILTIN and m != "stateful"]
        clash = registry.conflicting(names)
        if clash is not None:
            log.error("module_conflict", node=node.hostname, modules=",".join(clash),
                      error=f"{clash[0]} and {clash[1]} are both active for {node.hostname}: no user or group "
                            "action is sent until one is deactivated")  # fmt: skip
            modules = [m for m in modules if not registry.BUILTIN[m].writes_users]
        out: list[Action] = []
        for module in modules:
            try:
                out.extend(self._build(module, node, state))
            except PerceusError as exc:
                log.error("module_failed", module=module, node=node.hostname, error=str(exc))
        return tuple(out)

    def _build(self, module: str, node: Node, state: str) -> list[Action]:
        if module == "masterauth":
            users, groups = self.nss.get()
            return [
                Action(module=module, kind="passwd", data={"entries": [list(u) for u in users]}),
                Action(module=module, kind="group", data={"entries": [[g[0], g[1], g[2], list(g[3])] for g in groups]}),
            ]
        if module == "passwdfile":
            entries = accounts.passwd_from_files(accounts.merge_parts(self.base / "passwdfile", node))
            return [Action(module=module, kind="passwd", data={"entries": [list(e) for e in entries]})]
        if module == "groupfile":
            groups = accounts.group_from_files(accounts.merge_parts(self.base / "groupfile", node))
            return [Action(module=module, kind="group",
                           data={"entries": [[g[0], g[1], g[2], list(g[3])] for g in groups]})]  # fmt: skip
        if module == "hostname":
            return [Action(module=module, kind="set", data={"hostname": node.hostname})]
        if module == "ipaddr":
            if self._sources.ipaddr_error:
                raise PerceusError(self._sources.ipaddr_error)
            evaluator = ipaddr.Evaluator(self._hosts(), ipaddr.MasterNet(self.master_device(), self.net_lookup))
            ifaces = evaluator.interfaces(self._sources.ipaddr, node.hostname)
            return [Action(module=module, kind="interfaces", data={"interfaces": [i.as_data() for i in ifaces]})]
        if module == "modprobe":
            if self._sources.modprobe_error:
                raise PerceusError(self._sources.modprobe_error)
            mods = modprobe.modules_for(self._sources.modprobe, node)
            return [Action(module=module, kind="load", data={"modules": list(mods)})] if mods else []
        if module == "syncnodes":
            return [Action(module=module, kind="assigned", data={"vnfs": node.vnfs, "enabled": node.enabled})]
        if module == "xcpu":
            return [Action(module=module, kind="stay" if state == "init" else "accept", data={})]
        if module == rootkey.MODULE:
            if self._sources.rootkey_error:
                raise PerceusError(self._sources.rootkey_error)
            return rootkey.actions_for(self._sources.rootkey)
        return []
