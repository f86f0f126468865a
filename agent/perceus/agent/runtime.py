"""provisiond mode: the agent in the running OS checks in `ready` every interval (1.x ref §7), jittered.

Differences from 1.x's C provisiond, on purpose: each check-in is spread by jitter (the first one uniformly
over a whole interval) so a fleet booted together never beats in step; errors back off exponentially instead
of hammering; a failing `ready` script does not end the daemon (1.x stopped looping on a non-zero status);
a `sync` published by the master triggers an immediate check-in.  Module actions from every welcome and ack are
applied by perceus.agent.modules, each in its own error boundary; with xcpu active, published `exec` commands
for this node are run and answered.  On SIGTERM the last state goes out once:
halt / reboot / single-user / unmonitored, from the runlevel as 1.x's init script did (1.x ref §7.3).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import structlog

from perceus.agent import __version__, handover, hybrid_mount, inventory, reprovision, scripts, security
from perceus.agent.bus import BusClient, Subscriber, backoff, wait_any
from perceus.agent.cmdline import AgentConfig
from perceus.agent.modules import xcpu
from perceus.agent.modules.apply import Applier
from perceus.errors import BusError, ConfigError
from perceus.protocol.enums import ErrorCode, Phase, Stage
from perceus.protocol.messages import (
    Ack,
    CheckIn,
    Exec,
    Hello,
    Message,
    Report,
    Reprovision,
    Script,
    Sync,
    Wait,
    Welcome,
)

log = structlog.get_logger("perceus.agent.runtime")

REQUEST_TIMEOUT = 10.0
# A node not yet welcomed retries within a minute: a master back from maintenance sees its nodes quickly,
# and full jitter still spreads a fleet (a check-in interval of 300 s would leave nodes dark for minutes).
HELLO_RETRY_CAP = 60.0
SCRIPT_TIMEOUT = 600.0
JITTER = 0.1  # each interval is drawn from [1-J, 1+J] x interval
_RUNLEVEL_STATE = {"0": "halt", "1": "single-user", "S": "single-user", "6": "reboot"}
_TARGET_STATE = {"poweroff.target": "halt", "halt.target": "halt", "reboot.target": "reboot",
                 "kexec.target": "reboot", "rescue.target": "single-user"}  # fmt: skip


def first_delay(interval: float, rng: random.Random) -> float:
    """Delay before the first check-in of a boot: uniform over a whole interval (a fleet powered on together
    spreads out at once).  bench/fleet.py drives simulated agents with this very function."""
    return rng.uniform(0, interval)


def next_delay(interval: float, rng: random.Random) -> float:
    """Delay between check-ins: the interval ± JITTER, so the spread never collapses back into step."""
    return interval * rng.uniform(1 - JITTER, 1 + JITTER)


class Stopping(Exception):
    """Raised from the SIGTERM handler to leave a blocking wait at once."""


def last_state(env: dict[str, str] | None = None, jobs: Callable[[], str] | None = None) -> str:
    """The state to send on shutdown: from $RUNLEVEL (sysvinit) or systemd's queued target (1.x ref §7.3)."""
    env = dict(os.environ) if env is None else env
    if env.get("RUNLEVEL"):
        return _RUNLEVEL_STATE.get(env["RUNLEVEL"], "unmonitored")
    text = (jobs or _systemd_jobs)()
    for target, state in _TARGET_STATE.items():
        if target in text:
            return state
    return "unmonitored"


def _systemd_jobs() -> str:
    try:
        return subprocess.run(["systemctl", "list-jobs", "--no-legend"], capture_output=True, text=True,
                              timeout=3, check=False).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""


@dataclass
class Options:
    run_dir: Path = Path("/run/perceus")
    root: Path = Path("/")  # where module actions write (/etc/passwd …); a temp dir in tests
    rng: random.Random = field(default_factory=random.Random)
    max_checkins: int = 0  # stop after this many (tests); 0 = forever
    clock: Callable[[], float] = time.monotonic
    # How a `reprovision` enters stage one (perceus.agent.reprovision): kexec, or the fleet emulator's record.
    reenter: reprovision.Jump | None = None


class Runtime:
    """One provisiond process."""

    def __init__(self, config: AgentConfig, options: Options | None = None) -> None:
        if not config.masters:
            raise ConfigError("no master: set perceus.master= (stage one passes it at kexec)",
                              path="kernel command line")  # fmt: skip
        self.config = config
        self.options = options or Options()
        self.boot_id = uuid.uuid4().hex
        # One keypair for both sockets, for this boot: the one stage one handed over inside the initramfs when
        # there is one (the master then sees the continuation of the boot it trusts), else a fresh one.
        keypair = handover.read_credential(self.options.root)
        log.info("session_handover", present=keypair is not None)
        self.curve = security.curve_hook(keypair=keypair)
        self.client = BusClient([str(m) for m in config.masters], curve=self.curve)
        # Subscribed after the welcome: the master admits only keys bound to a welcomed node to its events.
        self.sub: Subscriber | None = None
        self.modules = Applier(root=self.options.root)
        self.node = config.node
        self.interval = 300.0
        self.env: dict[str, str] = {}
        self.seq = 0
        self.failures = 0
        self.checkins = 0
        # Hybrid capsules: directories mounted over NFS before anything else; while one is missing the node
        # reports FAILED_STATE (no `ready` scripts on a half root) and retries at each check-in.
        self.state = "ready"
        self.hybrid_problem: str | None = None
        self._hybrid_unreported = False

    def close(self) -> None:
        self.client.close()
        if self.sub is not None:
            self.sub.close()

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> int:
        previous = signal.signal(signal.SIGTERM, self._on_term)
        try:
            self._mount_hybrid()
            self._hello()
            self._report_hybrid()
            next_at = self.options.clock() + first_delay(self.interval, self.options.rng)
            while not self.options.max_checkins or self.checkins < self.options.max_checkins:
                if self._wait_until(next_at):
                    log.info("sync_requested")
                next_at = self.options.clock() + self._checkin()
        except Stopping:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one last message, then out
            self._goodbye()
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.close()
        return 0

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        raise Stopping()

    def _wait_until(self, deadline: float) -> bool:
        """Sleep until `deadline`; True if a `sync` for this node cut it short."""
        while True:
            left = deadline - self.options.clock()
            if left <= 0:
                return False
            msg, pushed = wait_any(self.client, self.sub, left)
            if isinstance(msg, Sync) and (not msg.nodes or self.node in msg.nodes):
                return True
            if isinstance(msg, Exec) and pushed and self.node in msg.nodes:
                self._exec(msg)  # only over this session's own connection, never from the event channel
            if isinstance(msg, Reprovision) and pushed and msg.node == self.node:
                self._reprovision(msg)  # the same: own session only; returns only if stage one was not entered

    def _reprovision(self, msg: Reprovision) -> None:
        """Back into stage one without firmware (issue 19): fetch + verify it, acknowledge, kexec."""
        jump = self.options.reenter or reprovision.KexecJump()
        reprovision.reenter(self.client, msg, node=self.node, boot_id=self.boot_id, work=self.options.run_dir /
                            "reprovision", jump=jump, curve=self.curve is not None)  # fmt: skip

    def _exec(self, msg: Exec) -> None:
        """xcpu: run a published command for this node (only with the module active) and answer."""
        if not self.modules.xcpu:
            log.warning("exec_refused", job=msg.job, reason="xcpu module not active for this node")
            return
        try:
            self.client.request(xcpu.run(msg, self.node), timeout=5.0)
        except BusError as exc:
            log.warning("exec_result_failed", job=msg.job, error=str(exc))

    def _request(self, msg: Message) -> Message:
        log.debug("bus_request", type=msg.TYPE, master=self.client.master)
        reply = self.client.call(msg, timeout=REQUEST_TIMEOUT, attempts=2)
        log.debug("bus_reply", type=reply.TYPE)
        return reply

    def _hello(self) -> None:
        """Say hello until the master answers `welcome` (it knows this node); back off on anything else."""
        macs = inventory.hardware_macs(first=self.config.node)
        attempt = 0
        while True:
            hello = Hello(macs=tuple(macs), state=self.state, stage=Stage.RUNTIME, boot_id=self.boot_id,
                          agent_version=__version__, inventory=inventory.collect())  # fmt: skip
            try:
                reply = self._request(hello)
            except BusError as exc:
                attempt += 1
                delay = backoff(attempt, base=2.0, cap=HELLO_RETRY_CAP, rng=self.options.rng)
                log.warning("hello_failed", code=exc.code, error=str(exc), retry_in=round(delay, 1))
                self._sleep(delay)
                continue
            if isinstance(reply, Welcome):
                self.node, self.interval = reply.node, max(1.0, reply.interval)
                self.client.learn(list(reply.masters))  # multi-master: fail over to every live master
                log.info("node_welcomed", node=reply.node, hostname=reply.hostname, interval=self.interval)
                self.env = dict(reply.env)
                self._subscribe()
                self.modules.apply(reply.actions)
                self._scripts(reply.scripts, self.env)
                return
            retry = reply.retry_after if isinstance(reply, Wait) else backoff(attempt, base=2.0, cap=HELLO_RETRY_CAP)
            log.info("hello_deferred", type=reply.TYPE, retry_in=round(retry, 1))
            self._sleep(retry)

    def _subscribe(self) -> None:
        events = self.config.event_endpoint
        if self.sub is None and events is not None:
            self.sub = Subscriber(str(events), ["sync"], curve=self.curve)

    def _sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def _checkin(self) -> float:
        """One `ready` check-in; returns the delay until the next one (jittered, or backed off)."""
        if self.hybrid_problem is not None:
            self._mount_hybrid()
            self._report_hybrid()
        self.seq += 1
        self.checkins += 1
        msg = CheckIn(node=self.node, state=self.state, boot_id=self.boot_id, seq=self.seq)
        try:
            reply = self._request(msg)
        except BusError as exc:
            self.failures += 1
            delay = backoff(self.failures, base=1.0, cap=min(self.interval, 300.0), rng=self.options.rng)
            log.warning("checkin_failed", code=exc.code, error=str(exc), failures=self.failures,
                        retry_in=round(delay, 1))  # fmt: skip
            if exc.code == ErrorCode.UNKNOWN_NODE:  # deleted on the master: re-introduce ourselves
                self._hello()
            return delay
        self.failures = 0
        if isinstance(reply, Ack):
            self.interval = max(1.0, reply.interval)
            log.info("checked_in", seq=self.seq, interval=self.interval, scripts=len(reply.scripts),
                     actions=len(reply.actions))  # fmt: skip
            self.modules.apply(reply.actions)
            self._scripts(reply.scripts, self.env)
        return next_delay(self.interval, self.options.rng)

    def _mount_hybrid(self) -> None:
        """Mount a hybrid capsule's NFS directories (hybrid_mount.py); a failure is one console line."""
        root = self.options.root
        try:
            plan = hybrid_mount.read_plan(root)
        except ValueError as exc:
            problem: str | None = f"{root / hybrid_mount.CONF}: {exc}"
        else:
            if plan is None:
                return
            server = hybrid_mount.server_address(self.config.masters[0].host)
            problem = hybrid_mount.Mounter(plan, server, root=root).mount_all()
        if problem is not None and problem != self.hybrid_problem:
            sys.stderr.write(f"perceus-agent: error: {problem}\n")  # the one line on the node's console
            sys.stderr.flush()
        self._hybrid_unreported = self._hybrid_unreported or problem != self.hybrid_problem
        self.hybrid_problem = problem
        self.state = hybrid_mount.FAILED_STATE if problem is not None else "ready"

    def _report_hybrid(self) -> None:
        """Tell the master once per change: `node status` shows the state, `node timeline` the reason."""
        if not self._hybrid_unreported or not self.node:
            return
        ok = self.hybrid_problem is None
        report = Report(node=self.node, boot_id=self.boot_id, phase=Phase.RUNTIME, at=time.time(), ok=ok,
                        detail=self.hybrid_problem or "hybrid NFS mounts in place")  # fmt: skip
        try:
            self.client.call(report, timeout=REQUEST_TIMEOUT, attempts=2)
            self._hybrid_unreported = False
        except BusError as exc:
            log.warning("hybrid_report_failed", error=str(exc))

    def _scripts(self, items: tuple[Script, ...], env: Mapping[str, str]) -> None:
        """Run the `ready` node scripts the master sent (1.x piped them to sh); failures are reported only."""
        if not items:
            return
        scripts.run_and_report(self.client, items, env, state="ready", node=self.node, boot_id=self.boot_id,
                               workdir=self.options.run_dir, timeout=SCRIPT_TIMEOUT)  # fmt: skip

    def _goodbye(self) -> None:
        state = last_state()
        if not self.node:
            return
        try:
            self.client.request(CheckIn(node=self.node, state=state, boot_id=self.boot_id, seq=self.seq + 1),
                                timeout=3.0)  # fmt: skip
            log.info("last_state_sent", state=state)
        except BusError as exc:
            log.warning("last_state_failed", state=state, error=str(exc))
