"""The perceus-bus features, each installed from its own module (see daemon.py)."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from perceus.master import multimaster
from perceus.master.capsule import serve as capsule_serve
from perceus.master.daemon import Daemon
from perceus.master.legacy import listener as legacy_listener
from perceus.master.modules import serve as modules_serve
from perceus.master.netmgr import http_boot, nfs
from perceus.master.netmgr import supervisor as dnsmasq

log = structlog.get_logger("perceus.bus")


def _capsules(daemon: Daemon) -> None:
    server = capsule_serve.install(daemon.dispatcher, daemon.paths)
    # perceus-web's /metrics and boot progress page read the bytes served over the control socket.
    daemon.server.control_handlers["capsule_stats"] = lambda _request: {
        "ok": True, "sent_bytes": server.sent_bytes, "sent_chunks": server.sent_chunks,
    }  # fmt: skip
    pacer = server.pacer  # boot-storm pacing (capsule/pacing.py): queue positions for `perceus node status`
    if pacer is not None:
        daemon.server.control_handlers["capsule_queue"] = lambda _request: pacer.snapshot()


def _legacy(daemon: Daemon) -> None:
    listener = legacy_listener.install(daemon.server, daemon.dispatcher, daemon.config)
    if listener is not None:
        daemon.on_close(listener.close)


# (name, installer taking the Daemon), in installation order; one that fails to start stops the daemon with
# its error.
FEATURES: list[tuple[str, Callable[[Daemon], None]]] = [
    ("capsules", _capsules),
    ("legacy", _legacy),
    ("node_changes", multimaster.install),
    ("http_boot", http_boot.install),  # before dnsmasq: listening when the first node asks
    ("dnsmasq", dnsmasq.install),
    ("nfs", nfs.install),  # hybrid capsules' NFS parts (nfs-ganesha)
    ("modules", modules_serve.install),
]


def install_all(daemon: Daemon) -> list[str]:
    """Install every feature; returns the names installed."""
    for _, installer in FEATURES:
        installer(daemon)
    installed = [name for name, _ in FEATURES]
    log.info("features_installed", features=",".join(installed))
    return installed
