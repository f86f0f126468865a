"""What perceus-bus features plug into: the running server, its dispatcher, store and configuration.

Each optional feature (capsule delivery, the legacy TCP 987 listener, dnsmasq supervision, modules,
multi-master heartbeats …) lives in its own module with `install(daemon) -> None`, registers handlers,
tickers, readers or control commands, and adds clean-up callbacks.  busd.py only lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from perceus.master.bus.handlers import Dispatcher
from perceus.master.bus.server import BusServer
from perceus.master.config import MasterConfig, Paths
from perceus.master.store.base import NodeStore


@dataclass
class Daemon:
    """The pieces of one running perceus-bus."""

    paths: Paths
    config: MasterConfig
    store: NodeStore
    dispatcher: Dispatcher
    server: BusServer
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run `fn` when the daemon stops (in reverse order of registration)."""
        self.cleanups.append(fn)

    def close(self) -> None:
        while self.cleanups:
            try:
                self.cleanups.pop()()
            except Exception:  # clean-up must go on; the failure is logged by the caller's logger  # noqa: BLE001
                import structlog

                structlog.get_logger("perceus.bus").exception("cleanup_failed")
