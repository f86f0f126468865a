"""Swarm policy (issue 21): who holds which chunk of a capsule, and where a fetching node gets each next chunk.

Pure bookkeeping with an injected clock, no I/O: perceus-bus drives it from `get_sources` (swarm_bus.py), and
the simulator (bench/swarm_sim.py) imports this same class and drives it from simulated time.

Rules, per wanted chunk, in the order the node listed them (nodes shuffle their order, so a storm starts on
different chunks):
1. a holder in the node's rack with a free upload slot (fewest uploads first);
2. if a node of the same rack is already getting the chunk, wait for it (the rack then has it);
3. a holder in another rack with a free upload slot — the chunk crosses the rack uplink once;
4. nobody holds it and nobody is getting it: the master sends it (at most `master_slots` at once, at most
   `master_per_node` to one node, one once half the slots are busy: the uplink feeds many node links, not one);
5. a second pass over what is left: the chunk is held in this rack (or elsewhere, and nobody here is getting
   it) but no holder is free, and the master has a free slot: the master sends it again, at most
   `master_copies` times per rack (its uplink would otherwise idle);
6. otherwise not now: the node asks again.
A peer that served a bad chunk is excluded for the rest of the swarm; one that did not answer is skipped for
`dead_for` seconds.  Assignments not confirmed by a `have` within `assign_ttl` lapse.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

MASTER: str = ""  # the source name of a chunk the master sends itself
SCAN = 32  # other-rack holders looked at per choice
EXAMINE = 64  # wanted chunks looked at per `assign`
LAPSED_MAX = 1 << 16  # lapsed assignments remembered for counting bytes by source


@dataclass(frozen=True)
class SwarmSettings:
    """Knobs of the policy (perceus.conf `capsule swarm …`, see from_config in swarm_bus.py)."""

    enabled: bool = True
    peer_slots: int = 4  # chunks one peer uploads at once
    master_slots: int = 11  # chunks the master sends at once (pacing's uplink ÷ node link + 1)
    assign_ttl: float = 15.0
    dead_for: float = 30.0
    peers_per_reply: int = 8
    master_per_node: int = 2  # chunks the master sends one node at once (rule 4)
    master_copies: int = 2  # times the master sends one chunk into one rack (rule 5; the goal: ≤ 2 × racks)
    retry_s: float = 0.25  # "nothing assignable, ask again in": half a chunk's time on a node link

    @classmethod
    def for_links(cls, node_bps: float, uplink_bps: float, chunk_bytes: int, *, enabled: bool = True) -> SwarmSettings:
        """From the link rates (bytes/s; perceus-bus takes them from the pacing settings) and the chunk size:
        master slots = uplink ÷ node link + 1; "ask again" = half a chunk's time on a node link (5–250 ms); an
        assignment lapses after 10 chunk times (≥ 15 s): on a slow link a chunk shares its receiver's downlink
        with up to 8 others, so a long transfer is not a lost one."""
        chunk_s = chunk_bytes / node_bps
        return cls(enabled=enabled, master_slots=math.ceil(uplink_bps / node_bps) + 1,
                   retry_s=min(0.25, max(0.005, chunk_s / 2)), assign_ttl=max(15.0, 10 * chunk_s))  # fmt: skip


@dataclass
class _Pending:
    source: str
    expires: float


@dataclass
class Swarm:
    """One capsule version's swarm: `sizes[i]` is the wire size of distinct chunk i."""

    sizes: Sequence[int]
    settings: SwarmSettings = field(default_factory=SwarmSettings)
    clock: Callable[[], float] = lambda: 0.0

    def __post_init__(self) -> None:
        n = len(self.sizes)
        self.holders: list[set[str]] = [set() for _ in range(n)]
        self.holder_list: list[list[str]] = [[] for _ in range(n)]  # the same, for sampling (may hold leavers)
        self.rng = random.Random(21)  # noqa: S311 - jitter and ids, never a secret
        self._expired_at = float("-inf")
        self.rack_holders: dict[tuple[str, int], set[str]] = {}  # (rack, i) → holders there (rule 1 scans ≤ a rack)
        self.rack: dict[str, str] = {}
        self.uploads: Counter[str] = Counter()
        self.full: set[str] = set()  # peers using every upload slot (set arithmetic keeps `_choose` cheap)
        self.master_busy = 0
        self.pending: dict[tuple[str, int], _Pending] = {}
        self.rack_pending: Counter[tuple[str, int]] = Counter()
        self.getting: Counter[int] = Counter()  # nodes getting chunk i now (any source)
        self.master_to: Counter[str] = Counter()  # chunks the master is sending each node now
        self.master_sent: Counter[tuple[str, int]] = Counter()  # (rack, i) → copies the master sent or is sending
        self.excluded: set[str] = set()
        self.dead: dict[str, float] = {}
        self.from_master: Counter[str] = Counter()  # bytes by rack of the receiving node
        self.from_peers: Counter[str] = Counter()
        self.cross_rack: Counter[str] = Counter()  # of from_peers: bytes that crossed into the rack
        self.held: Counter[str] = Counter()  # chunks held per node
        self.lapsed: dict[tuple[str, int], str] = {}  # (node, i) → source of an assignment that lapsed

    # ------------------------------------------------------------------ reports
    def join(self, node: str, rack: str = "") -> None:
        self.rack[node] = rack

    def _drop(self, key: tuple[str, int]) -> _Pending | None:
        p = self.pending.pop(key, None)
        if p is None:
            return None
        node, idx = key
        self.rack_pending[(self.rack.get(node, ""), idx)] -= 1
        self.getting[idx] -= 1
        if p.source == MASTER:
            self.master_busy -= 1
            self.master_to[node] -= 1
        else:
            self.uploads[p.source] -= 1
            self.full.discard(p.source)
        return p

    def _failed(self, key: tuple[str, int]) -> None:
        """An assignment that did not end in a `have`: a master copy that never arrived is not counted."""
        p = self._drop(key)
        if p is not None and p.source == MASTER:
            self.master_sent[(self.rack.get(key[0], ""), key[1])] -= 1
        if p is not None:
            # It may still arrive (the node waits longer than `assign_ttl` on a slow link): count it by source then.
            if len(self.lapsed) >= LAPSED_MAX:
                self.lapsed.clear()
            self.lapsed[key] = p.source

    def have(self, node: str, indices: Iterable[int], *, serving: bool = True) -> None:
        """`node` verified these chunks: it holds (and, `serving`, serves) them now; bytes counted by source."""
        rack = self.rack.get(node, "")
        for idx in indices:
            if not 0 <= idx < len(self.sizes) or node in self.holders[idx]:
                continue
            p = self._drop((node, idx))
            lapsed = self.lapsed.pop((node, idx), None)
            if p is None and lapsed is not None:
                p = _Pending(lapsed, 0.0)
            size = self.sizes[idx]
            if p is None or p.source == MASTER:
                self.from_master[rack] += size  # unassigned (an old agent's plain fetch) came from the master
            else:
                self.from_peers[rack] += size
                if self.rack.get(p.source, "") != rack:
                    self.cross_rack[rack] += size
            self.held[node] += 1
            if serving:
                self.holders[idx].add(node)
                self.holder_list[idx].append(node)
                self.rack_holders.setdefault((rack, idx), set()).add(node)

    def bad(self, reporter: str, peer: str) -> None:
        """`peer` served bytes that failed verification at `reporter`: it serves nobody again."""
        self.excluded.add(peer)
        for key in [k for k, p in self.pending.items() if p.source == peer]:
            self._failed(key)

    def unreachable(self, peer: str) -> None:
        self.dead[peer] = self.clock() + self.settings.dead_for
        for key in [k for k, p in self.pending.items() if p.source == peer]:
            self._failed(key)

    def leave(self, node: str) -> None:
        """The node rebooted or left: it holds nothing any more."""
        for h in self.holders:
            h.discard(node)
        for i, listed in enumerate(self.holder_list):
            if node in listed:
                self.holder_list[i] = [q for q in listed if q != node]
        for hs in self.rack_holders.values():
            hs.discard(node)
        self.held.pop(node, None)
        for key in [k for k, p in self.pending.items() if p.source == node or k[0] == node]:
            self._failed(key)

    def _expire(self, now: float) -> None:
        if now - self._expired_at < 0.5:  # a scan of every assignment: at most twice a second
            return
        self._expired_at = now
        for key in [k for k, p in self.pending.items() if p.expires <= now]:
            self._failed(key)

    # ------------------------------------------------------------------ choice
    def assign(self, node: str, want: Sequence[int], credit: int) -> list[tuple[int, str]]:
        """Up to `credit` (chunk index, source) pairs for `node`; source MASTER = fetch from the master."""
        now = self.clock()
        self._expire(now)
        rack = self.rack.get(node, "")
        out: list[tuple[int, str]] = []
        # Look at a bounded window of the wanted list from a random start: the cost per call stays flat at
        # 10k nodes, and nodes whose first wishes are all busy still move on to others.
        start = self.rng.randrange(len(want)) if len(want) > EXAMINE else 0
        window = [
            idx
            for idx in itertools.islice(itertools.chain(want[start:], want[:start]), EXAMINE)
            if 0 <= idx < len(self.sizes) and node not in self.holders[idx]
        ]
        left: list[int] = []
        for idx in window:
            if len(out) >= credit:
                break
            if (node, idx) in self.pending:  # wanted again: that attempt failed (the node re-asks only then)
                self._failed((node, idx))
            source = self._choose(node, rack, idx, now)
            if source is None:
                left.append(idx)
                continue
            self._take(node, rack, idx, source, now)
            out.append((idx, source))
        # Rule 5: the master's spare slots send again what is held or on its way but not free to fetch now.
        for idx in left:
            if len(out) >= credit or not self._master_free(node):
                break
            # Held in this rack, or elsewhere and nobody here is getting it — all holders busy (rule 2: a chunk
            # on its way into this rack is waited for).
            here = self.rack_holders.get((rack, idx)) or (self.holders[idx] and not self.rack_pending[(rack, idx)])
            if here and self.master_sent[(rack, idx)] < self.settings.master_copies and (node, idx) not in self.pending:
                self._take(node, rack, idx, MASTER, now)
                out.append((idx, MASTER))
        return out

    def _take(self, node: str, rack: str, idx: int, source: str, now: float) -> None:
        self.pending[(node, idx)] = _Pending(source, now + self.settings.assign_ttl)
        self.rack_pending[(rack, idx)] += 1
        self.getting[idx] += 1
        if source == MASTER:
            self.master_busy += 1
            self.master_to[node] += 1
            self.master_sent[(rack, idx)] += 1
        else:
            self.uploads[source] += 1
            if self.uploads[source] >= self.settings.peer_slots:
                self.full.add(source)

    def _master_free(self, node: str) -> bool:
        """A free master slot for `node`: at most `master_per_node` at once (one once half the slots are busy).

        Few per node: the master's chunks are the ones everybody else waits for (rule 2), and several at once
        to one node share that node's link — each arrives later.  The uplink is filled by many nodes instead."""
        slots = self.settings.master_slots
        if self.master_busy >= slots:
            return False
        per_node = self.settings.master_per_node if self.master_busy < slots // 2 else 1
        return self.master_to[node] < per_node

    def _choose(self, node: str, rack: str, idx: int, now: float) -> str | None:
        held = self.holders[idx]
        if not held:  # nobody holds it (most of a storm's start): rule 4 or not now
            return MASTER if self.getting[idx] == 0 and self._master_free(node) else None
        near = self.rack_holders.get((rack, idx))
        if near:
            # Bounded like the other-rack scan: a flat network (no `rack` set) is one rack of every node.
            if len(near) <= 4 * SCAN:
                pool = near - self.full
            else:
                listed = self.holder_list[idx]
                pool = {q for q in self.rng.sample(listed, min(len(listed), 4 * SCAN)) if q in near} - self.full
            same = [p for p in pool if p != node and self._alive(p, now)]
            if same:
                return min(same, key=lambda p: (self.uploads[p], p))
        if self.rack_pending[(rack, idx)] > 0:
            return None  # someone in this rack is getting it: take it from them once they have it
        listed = self.holder_list[idx]
        # Bounded: at 10k holders a random handful is enough (and spreads the load over all of them).
        looked = listed if len(listed) <= SCAN else self.rng.sample(listed, SCAN)
        full = self.full
        other = [
            q
            for q in looked
            if q in held and q not in full and q != node and self.rack.get(q, "") != rack and self._alive(q, now)
        ]
        if other:
            return min(other, key=lambda p: (self.uploads[p], p))
        if any(self._alive(p, now) for p in held):
            return None  # holders exist but are busy: wait for a free slot (or rule 5's second pass)
        if self.getting[idx] == 0 and self._master_free(node):
            return MASTER
        return None

    def _alive(self, peer: str, now: float) -> bool:
        if peer in self.excluded:
            return False
        until = self.dead.get(peer)
        return until is None or until <= now

    # ------------------------------------------------------------------ views
    def totals(self) -> dict[str, dict[str, int]]:
        """Bytes per rack by source: {rack: {"master": b, "peers": b, "cross_rack": b}}."""
        racks = set(self.from_master) | set(self.from_peers)
        return {
            r: {"master": self.from_master[r], "peers": self.from_peers[r], "cross_rack": self.cross_rack[r]}
            for r in sorted(racks)
        }
