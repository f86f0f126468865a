"""500 unknown nodes boot at once, spread over 3 masters on one PostgreSQL → 500 distinct names (issue 9)."""

from __future__ import annotations

import json
import time

import pytest
from tests.integration.multimaster.conftest import Masters, spawn_agents
from tests.integration.store.backends import Backend

pytestmark = pytest.mark.postgres

NODES = 500


def test_concurrent_enrollment_over_three_masters(three_masters: Masters) -> None:
    group = three_masters
    start_at = time.time() + 1.5
    share = [NODES // 3 + (1 if i < NODES % 3 else 0) for i in range(3)]
    firsts = [sum(share[:i]) + 10_000 for i in range(3)]
    procs = [
        # Process i starts every agent on master i (offset i, then i + 1, i + 2 … stepping over the list).
        spawn_agents(
            group.addresses[i:] + group.addresses[:i],
            first=firsts[i],
            count=share[i],
            offset=0,
            start_at=start_at,
            duration=0,
            interval=1,
            timeout=10,
            hello_only=True,
        )
        for i in range(3)
    ]
    results: dict[str, dict[str, object]] = {}
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.update(json.loads(out))
    assert len(results) == NODES
    assert all(r["done"] and not r["errors"] for r in results.values())
    # Each master enrolled its share (agents were not moved: nothing failed).
    served = {addr: 0 for addr in group.addresses}
    for r in results.values():
        for addr, n in r["served_by"].items():  # type: ignore[attr-defined]
            served[addr] += n
    assert all(n > 0 for n in served.values()), served
    names = [str(r["hostname"]) for r in results.values()]
    assert len(set(names)) == NODES, "two nodes got the same name"
    with Backend("postgresql", group.url).open() as store:
        nodes = store.list_nodes()
    assert len(nodes) == NODES
    assert sorted(n.hostname for n in nodes) == sorted(names) == [f"n{i:04d}" for i in range(NODES)]
