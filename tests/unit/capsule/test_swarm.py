"""Swarm policy (capsule/swarm.py): rack first, the master once per chunk, bad and dead peers, byte counts."""

from __future__ import annotations

from perceus.master.capsule.swarm import MASTER, Swarm, SwarmSettings

MB = 1 << 20


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def swarm(chunks: int = 4, **settings: float) -> tuple[Swarm, Clock]:
    clock = Clock()
    s = Swarm([MB] * chunks, SwarmSettings(**settings), clock=clock)  # type: ignore[arg-type]
    return s, clock


def test_nobody_holds_a_chunk_the_master_sends_it_once_and_others_wait() -> None:
    s, _ = swarm()
    for n in ("a", "b", "c"):
        s.join(n, "r1")
    assert s.assign("a", [0, 1], 2) == [(0, MASTER), (1, MASTER)]
    # b wants the same chunks: a is getting them, so b is told to wait rather than load the master twice
    assert s.assign("b", [0, 1], 2) == []
    assert s.assign("b", [0, 1, 2], 2) == [(2, MASTER)]
    s.have("a", [0])
    assert s.assign("c", [0], 1) == [(0, "a")]


def test_same_rack_first_and_fewest_uploads() -> None:
    s, _ = swarm(peer_slots=1)
    s.join("far", "r2")
    s.join("near1", "r1")
    s.join("near2", "r1")
    s.join("me", "r1")
    s.join("me2", "r1")
    for n in ("far", "near1", "near2"):
        s.have(n, [0])
    first = s.assign("me", [0], 1)
    second = s.assign("me2", [0], 1)
    assert {first[0][1], second[0][1]} == {"near1", "near2"}  # one upload slot each: spread over both


def test_a_chunk_crosses_into_a_rack_once() -> None:
    s, _ = swarm()
    s.join("src", "r1")
    s.join("x", "r2")
    s.join("y", "r2")
    s.have("src", [0])
    assert s.assign("x", [0], 1) == [(0, "src")]
    assert s.assign("y", [0], 1) == []  # x of the same rack is getting it: y takes it from x
    s.have("x", [0])
    assert s.assign("y", [0], 1) == [(0, "x")]
    assert s.totals()["r2"] == {"master": 0, "peers": MB, "cross_rack": MB}


def test_bad_peer_is_excluded_and_the_chunk_comes_from_elsewhere() -> None:
    s, _ = swarm()
    for n in ("evil", "good", "me"):
        s.join(n, "")
    s.have("evil", [0])
    assert s.assign("me", [0], 1) == [(0, "evil")]
    s.bad("me", "evil")
    assert s.excluded == {"evil"}
    # the only holder is excluded: the master sends it (the node re-asks for what failed)
    assert s.assign("me", [0], 1) == [(0, MASTER)]
    s.have("good", [0])
    assert s.assign("good", [0], 1) == []  # a holder never gets its own chunk
    s.have("me", [0])
    assert "evil" not in [src for _, src in s.assign("other", [0], 1)]


def test_dead_peer_is_skipped_for_a_while_then_used_again() -> None:
    s, clock = swarm(dead_for=30.0)
    for n in ("p", "me"):
        s.join(n, "")
    s.have("p", [0])
    s.unreachable("p")
    assert s.assign("me", [0], 1) == [(0, MASTER)]
    s._drop(("me", 0))
    clock.t = 31.0
    assert s.assign("me", [0], 1) == [(0, "p")]


def test_master_slots_cap_what_the_master_sends_at_once_and_spread_it_over_nodes() -> None:
    s, _ = swarm(chunks=10, master_slots=6)
    first = s.assign("a", list(range(10)), 10)
    assert len(first) == 2  # at most two master chunks to one node at once
    # past half the slots, one at a time per node: the uplink feeds several node links, not one
    assert [len(s.assign(n, list(range(10)), 10)) for n in ("b", "c", "d", "e", "f")] == [1, 1, 1, 1, 0]
    assert s.assign("a", [i for i in range(10) if ("a", i) not in s.pending], 10) == []  # all 6 slots busy
    s.have("a", [first[0][0]])
    assert s.master_busy == 5
    assert s.totals()[""]["master"] == MB
    assert s.assign("f", list(range(10)), 10) == [(0, "a"), (6, MASTER)]  # a holds 0 now; the freed slot


def test_spare_master_slots_send_a_held_chunk_again_at_most_twice_per_rack() -> None:
    s, _ = swarm(chunks=1, peer_slots=1, master_slots=11)
    for n in ("src", "a", "b", "c", "d"):
        s.join(n, "r1")
    assert s.assign("src", [0], 1) == [(0, MASTER)]
    s.have("src", [0])
    assert s.assign("a", [0], 1) == [(0, "src")]
    assert s.assign("b", [0], 1) == [(0, MASTER)]  # src's one upload slot is busy, the master idle: copy 2
    assert s.assign("c", [0], 1) == []  # two copies into r1: wait for a holder's free slot
    s.have("a", [0])
    assert s.assign("c", [0], 1) == [(0, "a")]
    s.join("e", "r2")
    s.join("f", "r2")
    assert s.assign("d", [0], 1) == [(0, "src")]  # src's slot is free again since a confirmed
    assert s.assign("e", [0], 1) == [(0, MASTER)]  # every holder busy; nobody in r2 getting it: r2's first copy
    assert s.assign("f", [0], 1) == []  # e is getting it into r2: f takes it from e
    assert sum(s.master_sent.values()) == 3


def test_assignments_lapse_and_a_leaving_node_holds_nothing() -> None:
    s, clock = swarm(assign_ttl=5.0)
    s.join("a", "")
    s.join("b", "")
    assert s.assign("a", [0], 1) == [(0, MASTER)]
    clock.t = 6.0
    assert s.assign("b", [0], 1) == [(0, MASTER)]  # a's assignment lapsed unconfirmed
    s.have("b", [0, 1])
    s.leave("b")
    assert not s.holders[0] and s.held.get("b") is None


def test_a_peer_chunk_that_arrives_after_its_assignment_lapsed_counts_as_from_the_peer() -> None:
    # On a slow link a node waits longer than `assign_ttl`; the bytes still came from the peer, and `vnfs status`
    # must not book them to the master (at 100 emulated nodes it booked ~3x the master's real share).
    s, clock = swarm(assign_ttl=5.0)
    for n in ("a", "b"):
        s.join(n, "r1")
    assert s.assign("a", [0], 1) == [(0, MASTER)]
    s.have("a", [0])
    assert s.assign("b", [0], 1) == [(0, "a")]
    clock.t = 6.0
    s.assign("b", [1], 1)  # any call expires what lapsed
    assert ("b", 0) not in s.pending
    s.have("b", [0])
    assert s.totals()["r1"]["peers"] == MB and s.totals()["r1"]["master"] == MB
