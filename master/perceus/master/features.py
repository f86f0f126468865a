"""The optional perceus-bus features, each installed from its own module (see daemon.py)."""

from __future__ import annotations

import importlib

import structlog

from perceus.errors import PerceusError
from perceus.master.daemon import Daemon

log = structlog.get_logger("perceus.bus")


def _capsules(daemon: Daemon) -> None:
    from perceus.master.capsule.serve import install

    install(daemon.dispatcher, daemon.paths)


def _legacy(daemon: Daemon) -> None:
    from perceus.master.legacy.listener import install

    listener = install(daemon.server, daemon.dispatcher, daemon.config)
    if listener is not None:
        daemon.on_close(listener.close)


# (name, installer): a callable here, or "module:function" taking the Daemon.  A feature whose module does
# not exist in this build is skipped; one that fails to start stops the daemon with its error.
FEATURES: list[tuple[str, object]] = [
    ("capsules", _capsules),
    ("legacy", _legacy),
    ("node_changes", "perceus.master.multimaster:install"),
    ("dnsmasq", "perceus.master.netmgr.supervisor:install"),
    ("modules", "perceus.master.modules.serve:install"),
]


def install_all(daemon: Daemon) -> list[str]:
    """Install every available feature; returns the names installed."""
    installed: list[str] = []
    for name, installer in FEATURES:
        try:
            if isinstance(installer, str):
                module_name, _, func = installer.partition(":")
                try:
                    module = importlib.import_module(module_name)
                except ModuleNotFoundError as exc:
                    if exc.name and module_name.startswith(exc.name):
                        continue
                    raise
                getattr(module, func)(daemon)
            else:
                installer(daemon)  # type: ignore[operator]
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("perceus."):
                continue
            raise
        except PerceusError:
            raise
        installed.append(name)
    log.info("features_installed", features=",".join(installed))
    return installed
