"""Limits of a node's swarm peer server (issue 21): what one asker, one address and everybody together may cost.

The peer server runs in the same process as the node's own capsule fetch, so a hostile client flooding it must
never take the CPU that the node's boot needs.  Three bounds, each a token bucket:
- handshakes per source address and per Curve key (checked by the ZAP handler: new connections);
- requests per asker key, and — much smaller — refused requests per asker key: an honest asker is rarely
  refused (a voucher just expired, a chunk lost with a restart), so one that keeps being refused is answered
  `RATE_LIMITED`, cheaply, without a signature check or a file read, until its budget refills;
- requests per second over all askers (past it the server stops reading: the ROUTER's receive queue fills and
  TCP pushes back on the senders, which costs this process nothing).
Tables are bounded: when full, the buckets that are full again (idle sources) are dropped first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_SOURCES = 4096


@dataclass
class Buckets:
    """One token bucket per source: `burst` tokens, refilled at `rate` per second."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)  # source → (tokens, when)

    def allow(self, source: str, cost: float = 1.0) -> bool:
        now = self.clock()
        tokens, then = self._state.get(source, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens < cost:
            self._state[source] = (tokens, now)
            return False
        if source not in self._state and len(self._state) >= MAX_SOURCES:
            self._evict(now)
        self._state[source] = (tokens - cost, now)
        return True

    def has(self, source: str, cost: float = 1.0) -> bool:
        """Would `allow(source, cost)` pass now? (nothing is taken)"""
        now = self.clock()
        tokens, then = self._state.get(source, (self.burst, now))
        return min(self.burst, tokens + (now - then) * self.rate) >= cost

    def _evict(self, now: float) -> None:
        full = [s for s, (t, w) in self._state.items() if t + (now - w) * self.rate >= self.burst]
        for s in full or list(self._state)[: MAX_SOURCES // 2]:
            del self._state[s]

    def __len__(self) -> int:
        return len(self._state)


@dataclass
class PeerLimits:
    """The peer server's budgets (defaults: generous for an honest swarm, small against one flooding client)."""

    handshakes_per_address: Buckets = field(default_factory=lambda: Buckets(rate=4.0, burst=32.0))
    handshakes_per_key: Buckets = field(default_factory=lambda: Buckets(rate=2.0, burst=16.0))
    requests_per_asker: Buckets = field(default_factory=lambda: Buckets(rate=1000.0, burst=64.0))
    refusals_per_asker: Buckets = field(default_factory=lambda: Buckets(rate=2.0, burst=16.0))
    requests_total: Buckets = field(default_factory=lambda: Buckets(rate=2000.0, burst=256.0))
    handshakes_refused: int = 0

    def admit(self, address: str, key: str) -> bool:
        """A Curve handshake from `address` with client key `key` (ZAP): within both handshake budgets?"""
        ok = self.handshakes_per_address.allow(address) and self.handshakes_per_key.allow(key)
        if not ok:
            self.handshakes_refused += 1
        return ok

    def pause(self) -> float:
        """Seconds to stop reading requests (0: go on) once the all-askers budget is spent."""
        if self.requests_total.allow("*"):
            return 0.0
        return 1.0 / self.requests_total.rate
