"""What the master does with a node's `bad` and `dead` reports about swarm peers (issue 21): nothing blindly.

- A report counts only about a peer the master itself assigned to that reporter (recently, for a chunk it
  names): nobody can report on peers it was never sent to.
- `bad` (the peer's bytes failed verification at the reporter): the master checks that chunk at the accused
  peer itself (swarm_verify.py) and excludes the peer only if the bytes it gets fail the manifest's hash.  While
  the check runs the peer is skipped, as for `dead`.  A check that finds good bytes is a strike for the
  reporter; a peer that does not answer the check is only skipped for a while.
- `dead` (the peer did not answer): the peer is skipped for `dead_for` seconds (the policy's setting), then it is
  a source again — a dead report never excludes anybody.
- A reporter with STRIKES false reports is not listened to any more (for the life of the bus): its reports are
  dropped, with one audit line.
Bounded: recent assignments for at most MAX_REPORTERS nodes (LRU), PEERS_PER_REPORTER peers each; strikes for
at most MAX_REPORTERS nodes (when full, those not yet ignored are forgotten first).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from perceus.master.capsule.swarm import Swarm
from perceus.master.capsule.swarm_verify import Check, Verdict, Verifier

log = structlog.get_logger("perceus.capsule.swarm")

STRIKES = 3
MAX_REPORTERS = 65_536
PEERS_PER_REPORTER = 32
RECENT_S = 60.0  # a report about an assignment older than this is not about anything the master knows


@dataclass
class Reports:
    """Recent assignments per reporter, strikes, and the checks in flight (all calls from the bus loop)."""

    verifier: Verifier
    clock: Callable[[], float]
    audit: Callable[..., None] = lambda event, source, **fields: None  # AuditLog.refusal
    recent: OrderedDict[str, dict[str, tuple[str, int, float]]] = field(default_factory=OrderedDict)
    strikes: Counter[str] = field(default_factory=Counter)
    ignored: int = 0
    _said: dict[tuple[str, str], float] = field(default_factory=dict)

    def _say(self, event: str, reporter: str, **fields: object) -> None:
        """One log line per reporter and event per minute: a node's reports must not flood the log."""
        now = self.clock()
        if now - self._said.get((reporter, event), float("-inf")) < 60.0:
            return
        if len(self._said) >= MAX_REPORTERS:
            self._said.clear()
        self._said[(reporter, event)] = now
        log.info(event, reporter=reporter, **fields)

    def assigned(self, node: str, peer: str, manifest: str, idx: int) -> None:
        """The master told `node` to fetch chunk `idx` of `manifest` from `peer`."""
        mine = self.recent.pop(node, None) or {}
        mine[peer] = (manifest, idx, self.clock())
        if len(mine) > PEERS_PER_REPORTER:
            del mine[next(iter(mine))]
        self.recent[node] = mine
        while len(self.recent) > MAX_REPORTERS:
            self.recent.popitem(last=False)

    def _about(self, reporter: str, peer: str, manifest: str) -> int | None:
        """The chunk index the master assigned `reporter` from `peer` recently, or None."""
        found = self.recent.get(reporter, {}).get(peer)
        if found is None or found[0] != manifest or self.clock() - found[2] > RECENT_S:
            return None
        return found[1]

    def _listened(self, reporter: str) -> bool:
        if self.strikes[reporter] < STRIKES:
            return True
        self.ignored += 1
        return False

    def bad(self, swarm: Swarm, reporter: str, peer: str, manifest: str, chunk_hash: Callable[[int], str],
            endpoint: tuple[str, str] | None) -> None:  # fmt: skip
        """`reporter` says `peer` served bad bytes: check it (the peer is skipped meanwhile)."""
        if not self._listened(reporter) or peer in swarm.excluded:
            return
        idx = self._about(reporter, peer, manifest)
        if idx is None or endpoint is None:
            self._say("swarm_report_ignored", reporter, peer=peer, report="bad", reason="not assigned")
            return
        swarm.unreachable(peer)  # not used while it is checked; the check ends that
        check = Check(manifest, chunk_hash(idx), peer, endpoint[0], endpoint[1], reporter)
        if not self.verifier.submit(check):
            self._say("swarm_report_deferred", reporter, peer=peer, busy=len(self.verifier.busy))

    def dead(self, swarm: Swarm, reporter: str, peer: str, manifest: str) -> None:
        """`reporter` says `peer` did not answer: skipped for the policy's `dead_for`, never excluded."""
        if not self._listened(reporter) or self._about(reporter, peer, manifest) is None:
            return
        self._say("swarm_peer_unreachable", reporter, peer=peer)
        swarm.unreachable(peer)

    def settle(self, swarms: dict[str, Swarm]) -> list[Verdict]:
        """Apply the verdicts reached since the last call; returns them (the caller notes exclusions)."""
        out = self.verifier.verdicts()
        for v in out:
            c = v.check
            swarm = swarms.get(c.manifest)
            if swarm is None:
                continue
            if v.result == "bad":
                log.warning("swarm_peer_excluded", peer=c.peer, reporter=c.reporter, chunk=c.chunk[:16],
                            verified="by the master")  # fmt: skip
                self.audit("swarm_peer_excluded", c.peer, reporter=c.reporter, chunk=c.chunk[:16])
                swarm.bad(c.reporter, c.peer)
            elif v.result == "good":
                swarm.dead.pop(c.peer, None)  # the report was false: the peer is a source again at once
                if c.reporter not in self.strikes and len(self.strikes) >= MAX_REPORTERS:
                    self.strikes = Counter({k: v for k, v in self.strikes.items() if v >= STRIKES})
                    if len(self.strikes) >= MAX_REPORTERS:
                        self.strikes.clear()
                self.strikes[c.reporter] += 1
                log.warning("swarm_false_report", reporter=c.reporter, peer=c.peer, strikes=self.strikes[c.reporter])
                if self.strikes[c.reporter] == STRIKES:
                    self.audit("swarm_reporter_ignored", c.reporter, peer=c.peer, strikes=STRIKES)
            # "silent": the peer stays skipped until its dead_for ends, like a dead report
        return out
