"""`perceus node exec` on the master: publish `exec`, collect `exec_result` per job for the CLI to poll.

The CLI never talks to nodes: it asks perceus-bus (control `exec`) to publish the command, then polls
(control `exec_results`) until every node answered or the deadline passed.  Jobs are forgotten a while
after their deadline so a CLI that died never leaks memory in the daemon.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from perceus.errors import PerceusError, ProtocolError
from perceus.master.bus.handlers import Dispatcher, Incoming, Outgoing
from perceus.protocol import hwaddr
from perceus.protocol.messages import Ack, Exec, ExecResult, Message

log = structlog.get_logger("perceus.modules")

MAX_ARGV = 256
MAX_TIMEOUT = 3600.0
KEEP_AFTER = 300.0  # seconds a finished job's results stay readable


@dataclass
class Job:
    nodes: tuple[str, ...]
    deadline: float
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class ExecJobs:
    publish: Callable[[Message], None]
    clock: Callable[[], float] = time.monotonic
    jobs: dict[str, Job] = field(default_factory=dict)

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        """Control `exec`: {nodes: [NodeID…], argv: [...], seconds: timeout} → {ok, job}."""
        argv = request.get("argv")
        nodes = request.get("nodes")
        timeout = float(request.get("seconds", 60.0))
        if not isinstance(argv, list) or not argv or len(argv) > MAX_ARGV or not all(isinstance(a, str) for a in argv):
            return {"ok": False, "error": "argv must be a non-empty list of strings"}
        if not isinstance(nodes, list) or not nodes:
            return {"ok": False, "error": "no nodes given"}
        if not 0 < timeout <= MAX_TIMEOUT:
            return {"ok": False, "error": f"timeout must be in (0, {MAX_TIMEOUT:.0f}] seconds"}
        try:
            ids = tuple(hwaddr.normalize(str(n)) for n in nodes)
        except PerceusError as exc:
            return {"ok": False, "error": str(exc)}
        self.expire()
        job = secrets.token_hex(8)
        self.jobs[job] = Job(ids, self.clock() + timeout)
        self.publish(Exec(job=job, nodes=ids, argv=tuple(argv), timeout=timeout))
        log.info("exec_published", job=job, nodes=len(ids), command=argv[0])
        return {"ok": True, "job": job}

    def results(self, request: dict[str, Any]) -> dict[str, Any]:
        """Control `exec_results`: {job} → {ok, results: {NodeID: {status, stdout, stderr}}, done}."""
        job = self.jobs.get(str(request.get("job", "")))
        if job is None:
            return {"ok": False, "error": "unknown or expired job"}
        done = len(job.results) == len(job.nodes) or self.clock() > job.deadline
        return {"ok": True, "results": dict(job.results), "done": done}

    def expire(self) -> None:
        now = self.clock()
        for name in [n for n, j in self.jobs.items() if now > j.deadline + KEEP_AFTER]:
            del self.jobs[name]

    def on_result(self, disp: Dispatcher, item: Incoming) -> Outgoing:
        msg = item.msg
        assert isinstance(msg, ExecResult)
        try:
            node = hwaddr.normalize(msg.node)
        except PerceusError:
            raise ProtocolError(f"invalid node id {msg.node!r}") from None
        job = self.jobs.get(msg.job)
        if job is not None and node in job.nodes:
            job.results[node] = {"status": msg.status, "stdout": msg.stdout, "stderr": msg.stderr}
            log.info("exec_result", job=msg.job, node=node, status=msg.status)
        else:
            log.warning("exec_result_unexpected", job=msg.job, node=node)
        return Outgoing(item.identity, Ack(rid=msg.rid, interval=float(disp.config.checkin_interval)))
