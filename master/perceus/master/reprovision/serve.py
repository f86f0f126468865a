"""The reprovision feature of perceus-bus: control commands, the `reprovision_ack` handler, the event tap.

Installed by security/service.py once the gate exists: the instruction goes only to sessions the gate has
bound (and proven), and the acknowledgement's re-entry key is the gate's to accept.
"""

from __future__ import annotations

from typing import Any

from perceus.master.daemon import Daemon
from perceus.master.reprovision.instruction import StageOne
from perceus.master.reprovision.tracker import ReprovisionJobs, Sessions
from perceus.master.security.audit import AuditLog
from perceus.protocol.messages import Message, ReprovisionAck


def install(daemon: Daemon, sessions: Sessions, audit: AuditLog) -> ReprovisionJobs:
    disp = daemon.dispatcher
    jobs = ReprovisionJobs(StageOne(daemon.paths, daemon.config), sessions, daemon.server.push, daemon.store.get,
                           disp, audit)  # fmt: skip
    disp.extra[ReprovisionAck] = jobs.on_ack
    publish = disp.publish

    def tapped(msg: Message) -> None:
        jobs.on_event(msg)
        publish(msg)

    disp.publish = tapped
    handlers = daemon.server.control_handlers
    handlers["reprovision"] = jobs.start
    handlers["reprovision_status"] = jobs.status
    handlers["reprovision_forget"] = jobs.forget

    def expire(_: Any = None) -> None:
        jobs.expire()

    daemon.server.add_ticker(60.0, expire)
    return jobs
