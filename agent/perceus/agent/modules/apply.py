"""Apply the module actions of one welcome/ack: each action in its own error boundary, one log line each.

Unlike Perceus 1.x (one shell script per check-in, whose failure stopped provisiond), a failing module is
logged and the others still run; the daemon goes on.  In stage one only what belongs there runs (modprobe,
stateful, xcpu); the rest is the runtime OS's and arrives again when provisiond starts (state `boot`).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from perceus.agent.modules import accounts, netconf, rootkey, system
from perceus.agent.modules.syncnodes import SyncNodes
from perceus.errors import ConfigError, PerceusError
from perceus.protocol.messages import Action

log = structlog.get_logger("perceus.agent.modules")

STAGE1_KINDS = {("modprobe", "load"), ("stateful", "install"), ("xcpu", "stay"), ("xcpu", "accept")}


def _reboot() -> None:
    subprocess.run(["systemctl", "reboot"], check=False, timeout=30)


def _wall(text: str) -> None:
    subprocess.run(["wall", text], check=False, timeout=10, capture_output=True)


@dataclass
class Applier:
    """Applies actions under `root` ("/" on a real node; a temp dir in tests)."""

    root: Path = Path("/")
    stage1: bool = False
    load_kmods: Callable[[Sequence[str]], list[str]] = system.modprobe
    reboot: Callable[[], None] = _reboot
    wall: Callable[[str], None] = _wall
    flags_dir: Path | None = None  # stage one: stateful flags go to its run dir, not <root>/run/perceus
    xcpu: bool = False
    failures: int = 0
    _sync: SyncNodes | None = field(default=None, repr=False)

    @property
    def live(self) -> bool:
        return self.root == Path("/")

    def apply(self, actions: Iterable[Action]) -> dict[str, str]:
        """module.kind → outcome ("ok …", "skipped", "failed: …"); never raises."""
        outcomes: dict[str, str] = {}
        for action in actions:
            key = f"{action.module}.{action.kind}"
            if self.stage1 and (action.module, action.kind) not in STAGE1_KINDS:
                log.debug("module_deferred", module=action.module, kind=action.kind)
                outcomes[key] = "skipped"
                continue
            start = time.monotonic()
            try:
                detail = self._one(action)
            except (PerceusError, OSError, ValueError, TypeError) as exc:
                self.failures += 1
                outcomes[key] = f"failed: {exc}"
                log.error("module_failed", module=action.module, kind=action.kind, error=str(exc))
                continue
            except Exception as exc:  # the boundary: one module never stops the daemon
                self.failures += 1
                outcomes[key] = f"failed: {type(exc).__name__}"
                log.exception("module_failed", module=action.module, kind=action.kind)
                continue
            outcomes[key] = detail
            log.info("module_applied", module=action.module, kind=action.kind, result=detail,
                     duration_ms=round((time.monotonic() - start) * 1000, 1))  # fmt: skip
        return outcomes

    def _one(self, action: Action) -> str:
        data = action.data
        kind = (action.module, action.kind)
        if action.kind in ("passwd", "group") and action.module in ("masterauth", "passwdfile", "groupfile"):
            entries = data.get("entries") if isinstance(data, dict) else None
            out = accounts.apply(self.root, action.kind, entries)
            return f"{'written' if out.changed else 'unchanged'} {out.entries} entries, {out.skipped} kept local"
        if kind == ("hostname", "set"):
            changed = system.set_hostname(self.root, data.get("hostname"), live=self.live)
            return "set" if changed else "unchanged"
        if kind == ("modprobe", "load"):
            mods = system.module_names(data)
            failed = self.load_kmods(mods)
            if failed:
                raise ConfigError("modprobe: " + "; ".join(failed))
            return f"loaded {' '.join(mods)}"
        if kind == ("ipaddr", "interfaces"):
            files = netconf.apply(self.root, data)
            return f"{len(files)} files changed"
        if kind == ("stateful", "install"):
            path = system.stateful_flag(self.flags_dir or self.root / "run" / "perceus", bool(data.get("install")))
            return f"{'install' if data.get('install') else 'keep'} ({path})"
        if kind == ("stateful", "installed"):
            return "installed"
        if kind == ("syncnodes", "assigned"):
            if self._sync is None:
                self._sync = SyncNodes(self.root, self.reboot, self.wall)
            return self._sync.apply(data)
        if action.module == "xcpu":
            self.xcpu = True
            return "accepting commands"
        if kind == ("rootkey", "authorized_keys"):
            return "written" if rootkey.apply(self.root, data) else "unchanged"
        if kind == ("sshkeys", "host_keys"):
            # Cluster SSH host keys: sent only over the authenticated bus, never in a capsule (security.md).
            from perceus.agent.security import apply_host_keys

            return f"{len(apply_host_keys(data, self.root))} host key files"
        raise ConfigError(f"unknown module action {action.module}.{action.kind}")
