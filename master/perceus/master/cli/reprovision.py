"""`perceus node reprovision NODES [--vnfs X] [--batch N|N%]` (issue 19): a rolling reprovision over kexec.

Running nodes go back into stage one without firmware or POST (provisiond kexecs the stage-one image the
master serves, perceus.agent.reprovision), fetch their — new, with `--vnfs` — capsule and come back.  Batch by
batch: the next batch starts only when every node of this one is `ready` again on its assigned capsule (the
health gate, reprovision/plan.py); a node that does not acknowledge in time is power-cycled through its BMC
(power/runner.py; a node without one fails with that line); the run stops after the first batch with a
failure and lists what it left untouched.  perceus-bus does the talking (control `reprovision`, tracker.py).
Perceus 1.x had no such command: an admin rebooted nodes by hand or with an ipmitool loop.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from perceus.errors import NotFoundError, PerceusError, UsageError
from perceus.master.bus.control import poke
from perceus.master.cli import output
from perceus.master.cli.context import CliContext
from perceus.master.cli.nodespec import select
from perceus.master.power.runner import Job
from perceus.master.power.runner import run as power_run
from perceus.master.power.store import BmcStore
from perceus.master.reprovision.plan import Verdict, batch_size, judge, split, stage
from perceus.master.security.audit import AuditLog
from perceus.master.store.models import Node

POLL = 0.5
PROGRESS_EVERY = 10.0
BOOT_AFTER_ACK = 180.0  # an acknowledged kexec that shows no stage one by then hung: the BMC takes over
POWER_TIMEOUT = 10.0


def register_reprovision(verbs: Any) -> None:
    v = verbs.add_parser("reprovision", help="running nodes kexec back into stage one and boot their (new) capsule")
    v.add_argument("nodes", nargs="+", help="names, globs (n00*) or ranges (n[0001-0128])")
    v.add_argument("--vnfs", help="set this capsule on the nodes first (it must exist)")
    v.add_argument("--batch", default="10%", help="nodes per batch: N or N%% of the nodes (default 10%%)")
    v.add_argument("--timeout", type=float, default=600.0,
                   help="seconds each node of a batch has to be ready again (default 600)")  # fmt: skip
    v.add_argument("--ack-timeout", type=float, default=30.0,
                   help="seconds for provisiond to acknowledge, else its BMC power-cycles it (default 30)")  # fmt: skip
    v.add_argument("--no-power-fallback", action="store_true", help="never power-cycle: a silent node fails")
    v.set_defaults(func=reprovision)


@dataclass
class Result:
    """One node's line in the result table (`--json`: one object per node)."""

    node: str
    hostname: str
    batch: int
    result: str = "untouched"  # ready | failed | untouched
    how: str = ""  # kexec | power
    seconds: float = 0.0
    detail: str = ""
    vnfs: str = ""
    manifest: str = ""


class _Bus:
    """The control channel to the running perceus-bus (bus/control.py), as `node exec` uses it."""

    def __init__(self, ctx: CliContext) -> None:
        self.socket = ctx.paths.control_socket

    def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
        reply = poke(self.socket, cmd, timeout=10.0, **args)
        if reply is None:
            raise PerceusError("perceus-bus is not running (or did not answer): node reprovision needs it")
        if not reply.get("ok"):
            raise PerceusError(f"perceus-bus: {reply.get('error', 'refused')}")
        return reply


def reprovision(ctx: CliContext, ns: argparse.Namespace) -> int:
    if ns.timeout <= 0 or ns.ack_timeout <= 0:
        raise UsageError("--timeout and --ack-timeout must be > 0")
    nodes, missing = select(ctx.store.list_nodes(), ns.nodes, by_nodeid=ctx.by_nodeid)
    for name in missing:
        if name != "*":
            raise NotFoundError("node", name)
    if not nodes:
        raise NotFoundError("node", " ".join(ns.nodes))
    if ns.vnfs is not None:
        _check_capsule(ctx, ns.vnfs)
    batches = split(nodes, batch_size(ns.batch, len(nodes)))
    what = f" onto {ns.vnfs}" if ns.vnfs else ""
    question = f"Are you sure you wish to reprovision {len(nodes)} nodes{what} in {len(batches)} batches?"
    if not ctx.confirm(question, output.confirm_rows(nodes)):
        ctx.info("Nothing done.")
        return 1
    bus = _Bus(ctx)
    bus.ask("ping")
    audit = AuditLog.for_paths(ctx.paths)
    if ns.vnfs is not None:
        ctx.store.update([n.nodeid for n in nodes], {"vnfs": ns.vnfs})
        ctx.notify("nodes_changed")
    audit.record("reprovision_started", nodes=len(nodes), batches=len(batches), vnfs=ns.vnfs or "",
                 batch=ns.batch)  # fmt: skip
    results = {n.nodeid: Result(n.nodeid, n.hostname, i + 1) for i, b in enumerate(batches) for n in b}
    run = _Run(ctx, ns, bus, audit, results, len(batches))
    for i, batch in enumerate(batches):
        if not run.batch(i + 1, batch):
            break
    rows = list(results.values())
    for r in rows:
        if r.result == "untouched":
            r.detail = "not started: an earlier batch failed"
    for r in rows:
        audit.record("reprovision", node=r.node, hostname=r.hostname, result=r.result, how=r.how, detail=r.detail,
                     vnfs=r.vnfs)  # fmt: skip
    _print(ctx, rows)
    return 0 if all(r.result == "ready" for r in rows) else 1


def _check_capsule(ctx: CliContext, name: str) -> None:
    from perceus.master.capsule.layout import Store
    from perceus.master.capsule.pack import current

    try:
        manifest = current(Store(ctx.paths).existing(name))
    except PerceusError:
        manifest = None
    if manifest is None:
        raise NotFoundError("VNFS", name)


class _Run:
    """One reprovision run: sends each batch through the bus and holds it at the health gate."""

    def __init__(self, ctx: CliContext, ns: argparse.Namespace, bus: _Bus, audit: AuditLog,
                 results: dict[str, Result], batches: int) -> None:  # fmt: skip
        self.ctx, self.ns, self.bus, self.audit, self.results, self.batches = ctx, ns, bus, audit, results, batches
        self.start = time.time()
        self.progress = sys.stderr if ctx.json else ctx.stdout

    def say(self, text: str) -> None:
        if not self.ctx.quiet:
            print(f"[{time.time() - self.start:7.1f}s] {text}", file=self.progress, flush=True)

    def batch(self, number: int, nodes: list[Node]) -> bool:
        """Send one batch, hold it until every node is ready or failed; True when all are ready."""
        ns = self.ns
        names = " ".join(n.hostname for n in nodes)
        reply = self.bus.ask("reprovision", nodes=[n.nodeid for n in nodes])
        job, started = str(reply["job"]), time.time()
        self.say(f"batch {number}/{self.batches}: {names}: reprovision sent")
        for nodeid, track in reply["nodes"].items():
            if track.get("problem"):
                self.say(f"{self.results[nodeid].hostname}: not sent: {track['problem']}")
        by_id = {n.nodeid: n for n in nodes}
        pending, cycled = set(by_id), set[str]()
        boot_timeout = min(BOOT_AFTER_ACK, ns.timeout / 2)
        last_line, last_at = "", 0.0
        while pending:
            tracks = self.bus.ask("reprovision_status", job=job)["nodes"]
            now = time.time()
            power: dict[str, str] = {}
            for nodeid in sorted(pending):
                track = tracks.get(nodeid, {})
                verdict = judge(track, now=now, started=started, ack_timeout=ns.ack_timeout,
                                boot_timeout=boot_timeout, timeout=ns.timeout, cycled=nodeid in cycled,
                                vnfs=ns.vnfs or "")  # fmt: skip
                r = self.results[nodeid]
                if verdict.verdict is Verdict.READY:
                    r.result, r.how, r.seconds = "ready", "power" if nodeid in cycled else "kexec", now - started
                    r.vnfs, r.manifest = str(track.get("vnfs", "")), str(track.get("manifest", ""))
                    r.detail = f"on {r.vnfs} (manifest {r.manifest[:12]})"
                    pending.discard(nodeid)
                    self.say(f"{r.hostname}: ready on {r.vnfs} after {r.seconds:.1f} s ({r.how})")
                elif verdict.verdict is Verdict.FAILED:
                    self._fail(r, now - started, verdict.why, "power" if nodeid in cycled else "")
                    pending.discard(nodeid)
                elif verdict.verdict is Verdict.POWER:
                    power[nodeid] = verdict.why
            if power:
                cycled |= self._power(by_id, power, started)
                pending -= {n for n in power if n not in cycled}
            line = ", ".join(f"{self.results[n].hostname} {stage(tracks.get(n, {}))}" for n in sorted(pending))
            if pending and (line != last_line or now - last_at >= PROGRESS_EVERY):
                self.say(f"batch {number}/{self.batches}: waiting: {line}")
                last_line, last_at = line, now
            if pending:
                time.sleep(POLL)
        failed = [self.results[n.nodeid] for n in nodes if self.results[n.nodeid].result != "ready"]
        if failed:
            self.say(f"batch {number}/{self.batches}: {len(failed)} failed: stopping")
        return not failed

    def _fail(self, r: Result, seconds: float, why: str, how: str = "") -> None:
        r.result, r.seconds, r.detail, r.how = "failed", seconds, why, how
        self.say(f"{r.hostname}: FAILED: {why}")

    def _power(self, by_id: dict[str, Node], why: dict[str, str], started: float) -> set[str]:
        """Power-cycle the nodes in `why` through their BMCs; the ones that were cycled."""
        now = time.time() - started
        if self.ns.no_power_fallback:
            for nodeid, reason in why.items():
                self._fail(self.results[nodeid], now, f"{reason}; --no-power-fallback: not power-cycled")
            return set()
        self.bus.ask("reprovision_forget", nodes=list(why))  # the PXE boot must not wait for a re-entry key
        bmcs = BmcStore.for_paths(self.ctx.paths)
        jobs: list[Job] = []
        ids: dict[str, str] = {}
        for nodeid, reason in why.items():
            node = by_id[nodeid]
            resolved = bmcs.resolve(node)
            if isinstance(resolved, str):
                self._fail(self.results[nodeid], now, f"{reason}; {resolved}: not power-cycled")
                continue
            jobs.append(Job(node.hostname, resolved))
            ids[node.hostname] = nodeid
        cycled: set[str] = set()
        for o in power_run(jobs, "cycle", timeout=POWER_TIMEOUT, retries=1, parallel=64) if jobs else []:
            nodeid = ids[o.node]
            self.audit.record("power_cycle", node=nodeid, hostname=o.node, bmc=o.bmc, ok=o.ok, state=o.state,
                              error=o.error, reason=f"reprovision: {why[nodeid]}")  # fmt: skip
            if o.ok:
                cycled.add(nodeid)
                self.say(f"{o.node}: {why[nodeid]}: power-cycled through {o.bmc}")
            else:
                self._fail(self.results[nodeid], now, f"{why[nodeid]}; power cycle through {o.bmc} failed: {o.error}")
        return cycled


def _print(ctx: CliContext, rows: list[Result]) -> None:
    if ctx.json:
        ctx.emit_json([asdict(r) for r in rows])
        return
    ctx.out(f"{'HostName':<20} {'Batch':>5} {'Result':<9} {'How':<6} {'Time':>7}  Detail")
    ctx.out("-" * 79)
    for r in rows:
        result = "FAILED" if r.result == "failed" else r.result
        when = f"{r.seconds:.1f}s" if r.result != "untouched" else "-"
        ctx.out(f"{r.hostname:<20} {r.batch:>5} {result:<9} {r.how or '-':<6} {when:>7}  {r.detail}".rstrip())
    counts = {k: sum(1 for r in rows if r.result == k) for k in ("ready", "failed", "untouched")}
    ctx.out(f"reprovision: {counts['ready']} ready, {counts['failed']} failed, {counts['untouched']} untouched")
