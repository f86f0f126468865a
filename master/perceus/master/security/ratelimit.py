"""Token buckets keyed by source (a node's curve key, else its IP): a flooding peer is told RATE_LIMITED.

Perceus 1.x forked a Perl interpreter per request with no cap at all (1.x ref §13).  One bucket costs a dict
entry and two floats; the table is bounded, dropping full (idle) buckets first when it grows past `max_sources`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    """`rate` tokens per second, at most `burst` saved up; rate 0 disables the limiter."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    max_sources: int = 200_000
    _buckets: dict[str, list[float]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, source: str, cost: float = 1.0) -> bool:
        """Take `cost` tokens from `source`'s bucket; False (nothing taken) when it is empty."""
        if self.rate <= 0:
            return True
        now = self.clock()
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                self._evict(now)
            bucket = self._buckets[source] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < cost:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - cost
        return True

    def _evict(self, now: float) -> None:
        # A bucket that would be full again carries no state worth keeping.
        full = [k for k, (tokens, t) in self._buckets.items() if tokens + (now - t) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_sources:  # everyone is busy: forget the oldest half
            for k in sorted(self._buckets, key=lambda k: self._buckets[k][1])[: len(self._buckets) // 2]:
                del self._buckets[k]

    def __len__(self) -> int:
        return len(self._buckets)


def is_loopback(address: str) -> bool:
    """Local processes (tests, benchmarks, a co-located proxy) are not an attacker on the provisioning network."""
    return address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")
