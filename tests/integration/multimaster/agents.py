"""Simulated agents for the multi-master tests and benchmark: many BusClients in one process, event-driven.

Each agent is a real `BusClient` knowing every master (its list rotated so agents start spread over them).
It says `hello` (stage one, `init`: enrolls an unknown node), then sends check-ins with sequence numbers
1, 2, 3 … every `interval` seconds (jittered) until `duration` has passed.  A request without a reply within
`timeout` is resent, same sequence number, to the next master after the client's jittered back-off; the
time from its first send to the reply is the agent's outage.  One process drives hundreds of agents by
polling all their sockets, so a thousand agents need no thousand threads.

Run as a script: `agents.py MASTERS FIRST COUNT OFFSET START_AT DURATION INTERVAL TIMEOUT [hello-only]`;
prints one JSON object (per-agent results) on stdout.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass, field

import zmq

from perceus.agent.bus import BusClient, backoff
from perceus.protocol import codec
from perceus.protocol.enums import Stage
from perceus.protocol.messages import CheckIn, Error, Hello, Message


def mac_of(index: int) -> str:
    return f"0C:00:00:{index >> 16 & 0xFF:02X}:{index >> 8 & 0xFF:02X}:{index & 0xFF:02X}"


@dataclass
class Agent:
    mac: str
    client: BusClient
    seq: int = 0  # 0 = hello not yet answered
    hostname: str = ""
    acked: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    outages: list[float] = field(default_factory=list)
    served_by: dict[str, int] = field(default_factory=dict)
    due: float = 0.0
    rid: int = 0
    sent: float = 0.0
    first_sent: float = 0.0
    attempt: int = 0
    waiting_until: float = 0.0
    done: bool = False


def run(
    masters: list[str],
    first: int,
    count: int,
    offset: int,
    start_at: float,
    duration: float,
    interval: float,
    timeout: float,
    *,
    hello_only: bool = False,
) -> dict[str, object]:
    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, count * 2 + 64)
    rng = random.Random(first)
    agents: list[Agent] = []
    for i in range(count):
        k = (offset + i) % len(masters)
        client = BusClient(masters[k:] + masters[:k], context=ctx)
        agents.append(Agent(mac=mac_of(first + i), client=client))
    by_sock: dict[zmq.Socket[bytes], Agent] = {}
    poller = zmq.Poller()

    def watch(agent: Agent) -> None:
        by_sock[agent.client.socket] = agent
        poller.register(agent.client.socket, zmq.POLLIN)

    for agent in agents:
        watch(agent)
    while time.time() < start_at:
        time.sleep(0.005)
    t0 = time.monotonic()
    end = t0 + duration
    for agent in agents:
        agent.due = t0 + rng.uniform(0, min(interval, 1.0))

    def request(agent: Agent) -> Message:
        if agent.seq == 0:
            return Hello(macs=(agent.mac,), state="init", stage=Stage.STAGE1, boot_id="b1")
        return CheckIn(node=agent.mac, state="ready", boot_id="b1", seq=agent.seq)

    def send(agent: Agent, now: float) -> None:
        agent.rid = agent.client.send(request(agent))
        agent.sent = now
        if not agent.first_sent:
            agent.first_sent = now

    pending = len(agents)
    hard_stop = end + 30
    while pending and time.monotonic() < hard_stop:
        now = time.monotonic()
        for agent in agents:
            if agent.done or agent.rid:
                if agent.rid and now - agent.sent > timeout and not agent.waiting_until:
                    # No reply: the next master, after a jittered back-off (the same as BusClient.call).
                    poller.unregister(agent.client.socket)
                    del by_sock[agent.client.socket]
                    agent.client.failover()
                    watch(agent)
                    agent.waiting_until = now + backoff(agent.attempt, base=0.25, cap=2.0, rng=rng)
                    agent.attempt += 1
                elif agent.waiting_until and now >= agent.waiting_until:
                    agent.waiting_until = 0.0
                    send(agent, now)
                continue
            if now >= agent.due:
                send(agent, now)
        for sock, _ in poller.poll(5):
            agent = by_sock[sock]
            frames = sock.recv_multipart()
            try:
                reply = codec.decode(frames[0])
            except Exception:
                continue
            if reply.rid != agent.rid or agent.waiting_until:
                continue  # a late answer to a request we already gave up on
            now = time.monotonic()
            if isinstance(reply, Error):
                agent.errors.append(f"{reply.code}: {reply.message}")
            elif agent.seq == 0:
                agent.hostname = str(getattr(reply, "hostname", ""))
            else:
                agent.acked.append(agent.seq)
            if agent.attempt:
                agent.outages.append(now - agent.first_sent)
            agent.served_by[agent.client.master] = agent.served_by.get(agent.client.master, 0) + 1
            agent.rid, agent.attempt, agent.first_sent = 0, 0, 0.0
            if hello_only or now >= end:
                agent.done = True
                pending -= 1
            else:
                agent.seq += 1
                agent.due = now + (interval * rng.uniform(0.8, 1.2) if agent.seq > 1 else 0.0)
    for agent in agents:
        agent.client.close()
    ctx.term()
    return {
        agent.mac: {
            "hostname": agent.hostname,
            "sent": agent.seq,
            "acked": agent.acked,
            "errors": agent.errors,
            "outages": agent.outages,
            "served_by": agent.served_by,
            "done": agent.done,
        }
        for agent in agents
    }


def main(argv: list[str]) -> int:
    masters = argv[0].split(",")
    first, count, offset = int(argv[1]), int(argv[2]), int(argv[3])
    start_at, duration, interval, timeout = (float(a) for a in argv[4:8])
    hello_only = len(argv) > 8 and argv[8] == "hello-only"
    result = run(masters, first, count, offset, start_at, duration, interval, timeout, hello_only=hello_only)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
