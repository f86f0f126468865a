"""The peer server's budgets (perceus.agent.peer_limits), on an injected clock."""

from __future__ import annotations

from perceus.agent import peer_limits
from perceus.agent.peer_limits import Buckets, PeerLimits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate_per_source() -> None:
    clock = Clock()
    b = Buckets(rate=2.0, burst=4.0, clock=clock)
    assert [b.allow("x") for _ in range(5)] == [True, True, True, True, False]
    assert b.allow("y")  # another source has its own bucket
    assert not b.has("x")
    clock.now += 0.5  # one token back
    assert b.has("x") and b.allow("x") and not b.allow("x")
    clock.now += 60
    assert [b.allow("x") for _ in range(5)] == [True, True, True, True, False]  # never more than the burst


def test_the_table_of_sources_is_bounded() -> None:
    clock = Clock()
    b = Buckets(rate=1.0, burst=2.0, clock=clock)
    for i in range(peer_limits.MAX_SOURCES * 3):
        b.allow(f"10.0.{i // 256}.{i % 256}")
    assert len(b) <= peer_limits.MAX_SOURCES


def test_handshakes_are_limited_per_address_and_per_key() -> None:
    clock = Clock()
    limits = PeerLimits(
        handshakes_per_address=Buckets(rate=1.0, burst=3.0, clock=clock),
        handshakes_per_key=Buckets(rate=1.0, burst=2.0, clock=clock),
    )
    assert limits.admit("10.0.0.1", "k1") and limits.admit("10.0.0.1", "k1")
    assert not limits.admit("10.0.0.2", "k1")  # that key's third handshake, from anywhere
    assert limits.admit("10.0.0.1", "k2")
    assert not limits.admit("10.0.0.1", "k3")  # that address's fourth
    assert limits.handshakes_refused == 2


def test_past_the_total_request_rate_the_server_pauses() -> None:
    clock = Clock()
    limits = PeerLimits(requests_total=Buckets(rate=100.0, burst=3.0, clock=clock))
    assert [limits.pause() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limits.pause() == 0.01
    clock.now += 0.01
    assert limits.pause() == 0.0
