"""The modules feature of perceus-bus: module actions on welcome/ack, activation reloads, `node exec`."""

from __future__ import annotations

from typing import Any

import structlog

from perceus.master.daemon import Daemon
from perceus.master.modules.resolver import Resolver
from perceus.master.modules.xcpu import ExecJobs
from perceus.master.store.models import Node
from perceus.protocol.messages import ExecResult

log = structlog.get_logger("perceus.modules")

RELOAD_EVERY = 5.0  # activations written by another master or by hand show up within this


def install(daemon: Daemon) -> None:
    disp = daemon.dispatcher
    resolver = Resolver(daemon.paths, master_device=lambda: disp.config.master_device)

    def reload(_: dict[str, Any] | None = None) -> dict[str, Any]:
        resolver.set_activations(daemon.store.activations())
        return {"ok": True}

    reload()

    def stays(node: Node) -> bool:
        return any(a.module == "xcpu" and a.state == "init" for a in resolver.active(node))

    disp.actions_for = resolver.actions_for
    disp.stays_in_stage1 = stays
    daemon.server.add_ticker(RELOAD_EVERY, lambda: resolver.set_activations(daemon.store.activations()))
    daemon.server.control_handlers["modules_changed"] = reload
    jobs = ExecJobs(daemon.server.publish)
    disp.extra[ExecResult] = jobs.on_result
    daemon.server.control_handlers["exec"] = jobs.start
    daemon.server.control_handlers["exec_results"] = jobs.results
    daemon.server.add_ticker(60.0, jobs.expire)
