"""Three masters on one PostgreSQL, 1,000 agents, one master SIGKILLed mid-run (issue 9).

Every agent knows all three masters.  After the kill, the agents of the dead master time out and are served by
another within 10 s; no check-in is lost (each agent's sequence numbers are all acknowledged, and the store's
`lastcontact` shows its last one); no two nodes share a name; the killed master, restarted, beats again and
answers.
"""

from __future__ import annotations

import json
import time

import pytest
from tests.integration.multimaster.conftest import Masters, spawn_agents
from tests.integration.store.backends import Backend

from perceus.agent.bus import BusClient
from perceus.protocol import hwaddr
from perceus.protocol.messages import Ack, CheckIn

pytestmark = pytest.mark.postgres

AGENTS = 1000
PROCS = 4
DURATION = 22.0
INTERVAL = 2.0
TIMEOUT = 2.0
KILL_AT = 7.0
RESTART_AT = 12.0


def test_sigkilled_master_loses_no_checkin(three_masters: Masters) -> None:
    group = three_masters
    start_at = time.time() + 2.0
    per = AGENTS // PROCS
    procs = [
        spawn_agents(
            group.addresses,
            first=p * per,
            count=per,
            offset=p,  # agent i of process p starts on master (p + i) % 3
            start_at=start_at,
            duration=DURATION,
            interval=INTERVAL,
            timeout=TIMEOUT,
        )
        for p in range(PROCS)
    ]
    victim = group.masters[0]
    time.sleep(max(0.0, start_at + KILL_AT - time.time()))
    killed_at = time.time()
    victim.kill()
    time.sleep(max(0.0, start_at + RESTART_AT - time.time()))
    old_pid = victim.bus.proc.pid if victim.bus else 0
    restarted = victim.start()

    results: dict[str, dict[str, object]] = {}
    for proc in procs:
        out, err = proc.communicate(timeout=DURATION + 60)
        assert proc.returncode == 0, err
        results.update(json.loads(out))

    assert len(results) == AGENTS
    unfinished = [mac for mac, r in results.items() if not r["done"]]
    assert not unfinished, f"{len(unfinished)} agents never got their last reply, e.g. {unfinished[:3]}"
    errors = {mac: r["errors"] for mac, r in results.items() if r["errors"]}
    assert not errors, f"{len(errors)} agents got errors, e.g. {list(errors.items())[:3]}"
    # Zero lost check-ins: every sequence number of every agent was acknowledged, in order.
    gaps = {mac: r for mac, r in results.items() if r["acked"] != list(range(1, int(r["sent"]) + 1))}  # type: ignore[call-overload]
    assert not gaps, f"{len(gaps)} agents lost check-ins, e.g. {list(gaps.items())[:1]}"
    assert min(int(r["sent"]) for r in results.values()) >= DURATION / INTERVAL / 2  # type: ignore[call-overload]
    # The dead master's agents were served by another master, each within 10 s.
    outages = [o for r in results.values() for o in r["outages"]]  # type: ignore[attr-defined]
    moved = [r for r in results.values() if len(r["served_by"]) > 1]  # type: ignore[arg-type]
    assert len(moved) >= AGENTS // 4, f"only {len(moved)} agents failed over"
    assert outages and max(outages) <= 10.0, f"longest outage {max(outages):.1f}s"

    with Backend("postgresql", group.url).open() as store:
        nodes = store.list_nodes()
        # No duplicate names: 1,000 distinct nodes enrolled through 3 masters at once.
        assert len(nodes) == AGENTS
        assert len({n.hostname for n in nodes}) == AGENTS
        assert {n.nodeid for n in nodes} == {hwaddr.normalize(mac) for mac in results}
        # The last check-in of every node reached the store after the kill.
        assert all(n.status == "ready" and n.lastcontact > killed_at for n in nodes)
        # The restarted master beats again, under the same id, with its new pid.
        deadline = time.time() + 5
        while True:
            row = next(m for m in store.masters() if m.endpoint == victim.address)
            if row.pid == restarted.proc.pid and time.time() - row.heartbeat < 3:
                break
            assert time.time() < deadline, f"restarted master not beating: {row}"
            time.sleep(0.2)
        assert row.pid != old_pid or old_pid == 0
        assert len(store.masters()) == 3

    # … and answers nodes again.
    client = BusClient([victim.address])
    try:
        reply = client.request(CheckIn(node=next(iter(results)), state="ready", boot_id="b1"), timeout=5)
    finally:
        client.close()
    assert isinstance(reply, Ack)
