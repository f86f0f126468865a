"""Server-sent events: one bounded queue per browser, each message encoded once for all of them.

A client that cannot keep up (its queue is full) is not waited for: its backlog is dropped and it is told to
`resync` (refetch the table), so one slow browser never slows the others or the refresher.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

QUEUE = 256


def frame(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n".encode()


@dataclass
class Broker:
    clients: set[asyncio.Queue[bytes]] = field(default_factory=set)
    # Per-node bus events go only to the clients watching that node (its page), never to every fleet view: a
    # storm of 10k hellos would otherwise be 10k × clients messages.
    watching: dict[str, set[asyncio.Queue[bytes]]] = field(default_factory=dict)
    sent: int = 0
    resyncs: int = 0

    def subscribe(self, node: str = "") -> asyncio.Queue[bytes]:
        q: asyncio.Queue[bytes] = asyncio.Queue(QUEUE)
        self.clients.add(q)
        if node:
            self.watching.setdefault(node, set()).add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[bytes]) -> None:
        self.clients.discard(q)
        for node, qs in list(self.watching.items()):
            qs.discard(q)
            if not qs:
                del self.watching[node]

    def publish(self, event: str, data: Any, *, node: str | None = None) -> None:
        """To every client, or (`node` given) to the clients watching that node."""
        targets = self.clients if node is None else self.watching.get(node, set())
        if not targets:
            return
        body = frame(event, data)
        for q in list(targets):
            try:
                q.put_nowait(body)
                self.sent += 1
            except asyncio.QueueFull:
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(frame("resync", {}))
                self.resyncs += 1
