"""The bus's events (PUB socket) on a thread of their own, handed to the dashboard as plain dicts.

The web service connects like a local admin tool: it asks the running bus over the control socket
(`<state>/run/control.sock`, 0600) where its PUB socket is and whether it runs CurveZMQ, and then connects
with the master's own key pair from `<config>/keys/` (0600, root), which only a local administrator can
read.  No bus, or no access: the dashboard still works from the store; only the live event feed and the
event-driven metrics are missing (`connected` says so).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
import zmq
from zmq.utils import z85

from perceus.errors import PerceusError
from perceus.master.bus.control import poke
from perceus.master.config import Paths
from perceus.protocol import codec
from perceus.protocol.messages import Event

log = structlog.get_logger("perceus.web")

Handler = Callable[[dict[str, Any]], None]


def event_dict(msg: Event) -> dict[str, Any]:
    return {"event": msg.event, "node": msg.node, "hostname": msg.hostname, "at": msg.at, "data": dict(msg.data)}


class EventFeed:
    """SUB to the bus's `event` topic; calls `handler` (on this feed's thread) for every event."""

    def __init__(self, paths: Paths, handler: Handler, *, context: zmq.Context[zmq.Socket[bytes]] | None = None):
        self.paths = paths
        self.handler = handler
        self.ctx = context or zmq.Context.instance()
        self.endpoint = ""
        self.connected = False
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perceus-web-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3)

    def _socket(self, events: str, curve: bool) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] = self.ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, codec.MAX_HEADER_BYTES + 4096)
        sock.setsockopt(zmq.RCVHWM, 100_000)
        if curve:
            keys = _master_keys(self.paths)
            if keys is None:
                sock.close(linger=0)
                raise zmq.ZMQError(msg="the bus runs CurveZMQ and its key is not readable here")
            public, secret = keys
            sock.setsockopt(zmq.CURVE_SERVERKEY, public)
            sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
            sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.setsockopt(zmq.SUBSCRIBE, Event.TYPE.encode())
        sock.connect(events)
        return sock

    def _locate(self) -> tuple[str, bool] | None:
        """(event endpoint, curve?) from the running bus over the control socket (0600: local admins only)."""
        try:
            reply = poke(self.paths.control_socket, "ping", timeout=1.0)
        except zmq.ZMQError:
            return None
        if not reply or not reply.get("events"):
            return None
        return str(reply["events"]), bool(reply.get("curve"))

    def _run(self) -> None:
        sock: zmq.Socket[bytes] | None = None
        while not self._stop.is_set():
            found = self._locate()
            if found is None:
                self.connected = False
            elif found[0] != self.endpoint or sock is None:  # the bus (re)started: follow it
                if sock is not None:
                    sock.close(linger=0)
                    sock = None
                self.endpoint = found[0]
                try:
                    sock = self._socket(*found)
                    self.connected = True
                    log.info("web_events_connected", endpoint=found[0], curve=found[1])
                except zmq.ZMQError as exc:
                    log.warning("web_events_failed", endpoint=found[0], error=str(exc))
                    sock = None
            if sock is None:
                self._stop.wait(1.0)
                continue
            self._drain(sock, until=time.monotonic() + 5.0)
        if sock is not None:
            sock.close(linger=0)

    def _drain(self, sock: zmq.Socket[bytes], until: float) -> None:
        while not self._stop.is_set() and time.monotonic() < until:
            if not sock.poll(200):
                continue
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    msg = codec.decode(frames[-1], max_bytes=codec.MAX_HEADER_BYTES)
                except PerceusError:
                    continue
                if isinstance(msg, Event):
                    self.received += 1
                    try:
                        self.handler(event_dict(msg))
                    except Exception:  # one bad event must not stop the feed
                        log.exception("web_event_handler_failed", event=msg.event)


def _master_keys(paths: Paths) -> tuple[bytes, bytes] | None:
    """(public, secret) in z85 when the bus runs CurveZMQ and we may read its key; None for a plaintext bus."""
    from perceus.master.security import keys

    try:
        loaded = keys.load(paths)
    except PerceusError as exc:
        log.warning("web_events_no_key", error=str(exc))
        return None
    except PermissionError:
        return None
    if loaded is None:
        return None
    return z85.encode(loaded.bus_public), z85.encode(loaded.bus_secret)
