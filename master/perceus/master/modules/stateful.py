"""The stateful module's flag files: `<config>/modules/stateful/ready/<node>` and `reinit/{vnfs,group,node}/<n>`.

As in Perceus 1.x (1.x ref §8.2): in `init`, a node without a `ready` flag, or with a reinit flag for its vnfs,
group or node, is told to (re)install, and those flags are consumed; in `ready` the node's flag is set.
These are master-side effects, so they are computed per request (a few stat calls), never cached.
"""

from __future__ import annotations

import threading
from pathlib import Path

import structlog

from perceus.master.fsutil import atomic_write
from perceus.master.store.models import Node
from perceus.protocol.messages import Action

log = structlog.get_logger("perceus.modules")


class StatefulFlags:
    def __init__(self, base: Path) -> None:
        self.base = base
        self._lock = threading.Lock()
        self._flagged: set[str] = set()

    def _reinit_flags(self, node: Node) -> list[Path]:
        out = []
        for scope, name in (("vnfs", node.vnfs), ("group", node.group), ("node", node.hostname)):
            if name:
                path = self.base / "reinit" / scope / name
                if path.exists():
                    out.append(path)
        return out

    def init(self, node: Node) -> Action:
        """Stage one: decide install vs keep, consuming the flags that asked for a reinstall."""
        with self._lock:
            ready = self.base / "ready" / node.hostname
            flags = self._reinit_flags(node)
            install = not ready.exists() or bool(flags)
            if install:
                for path in [ready, *flags]:
                    path.unlink(missing_ok=True)
                self._flagged.discard(node.hostname)
                log.info("stateful_install_requested", node=node.hostname,
                         reasons=",".join(str(p.relative_to(self.base)) for p in flags) or "not installed")  # fmt: skip
            return Action(module="stateful", kind="install", data={"install": install})

    def ready(self, node: Node) -> Action:
        """A running node checked in: it is installed (the flag is written once per master run)."""
        with self._lock:
            if node.hostname not in self._flagged:
                path = self.base / "ready" / node.hostname
                if not path.exists():
                    atomic_write(path, b"", mode=0o644)
                self._flagged.add(node.hostname)
            return Action(module="stateful", kind="installed", data={})
