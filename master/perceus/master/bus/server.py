"""The perceus-bus event loop: one thread, synchronous pyzmq, drained bursts, group commit.

Measured (performance-notes.md §2–3, §6): a synchronous ROUTER loop that drains every queued message before
polling again is the cheapest shape in Python; ZMQ_BACKLOG ≥ 4096 turns a 10k-node connect storm from 30 s
into ~2.5 s; SQLite group commit costs ~2 µs per check-in.  Replies to check-ins go out before the commit
(a check-in is idempotent: the next one repeats it); enrollments commit before their welcome is sent.
"""

from __future__ import annotations

import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import msgpack
import structlog
import zmq

from perceus.errors import ProtocolError
from perceus.master.bus.handlers import Dispatcher, Incoming, Outgoing
from perceus.protocol import codec
from perceus.protocol.enums import ErrorCode
from perceus.protocol.messages import Error, Exec, Message, Sync

log = structlog.get_logger("perceus.bus")

DRAIN_MAX = 1024
COMMIT_ROWS = 1024
COMMIT_WINDOW = 0.020
LISTEN_BACKLOG = 4096
BUS_DOMAIN = b"perceus"
EVENTS_DOMAIN = b"perceus-events"


@dataclass
class Counters:
    """What `perceus info` and the benchmarks read through the control socket."""

    received: int = 0
    replied: int = 0
    bad: int = 0
    commits: int = 0
    started: float = field(default_factory=time.time)


class BusServer:
    """Sockets + loop around a Dispatcher."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        bind: str,
        pub_bind: str | None = None,
        control: str | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        workers: int = 4,
        curve: tuple[bytes, bytes] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.ctx = context or zmq.Context.instance()
        # CurveZMQ (public, secret) in z85: node-facing sockets become curve servers before they bind, and
        # every request then carries the client key ZAP vouched for (security/zap.py).  None = plaintext.
        self.curve = curve
        self.router = self.ctx.socket(zmq.ROUTER)
        self._secure(self.router)
        self.router.setsockopt(zmq.BACKLOG, LISTEN_BACKLOG)  # before bind: the kernel listen queue
        self.router.setsockopt(zmq.MAXMSGSIZE, codec.MAX_INBOUND_FRAME)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.RCVHWM, 100_000)
        self.router.setsockopt(zmq.SNDHWM, 100_000)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.router.bind(bind)
        self.endpoint: str = _last_endpoint(self.router)
        self.pub: zmq.Socket[bytes] | None = None
        self.pub_endpoint = ""
        if pub_bind:
            self.pub = self.ctx.socket(zmq.PUB)
            # Its own ZAP domain: only enrolled keys (or local root tools) may subscribe (security/zap.py).
            self._secure(self.pub, domain=EVENTS_DOMAIN)
            self.pub.setsockopt(zmq.LINGER, 0)
            self.pub.setsockopt(zmq.BACKLOG, LISTEN_BACKLOG)
            self.pub.bind(pub_bind)
            self.pub_endpoint = _last_endpoint(self.pub)
        self.control: zmq.Socket[bytes] | None = None
        if control:
            self.control = self.ctx.socket(zmq.ROUTER)
            self.control.setsockopt(zmq.LINGER, 0)
            old = os.umask(0o077)
            try:
                self.control.bind(control)
            finally:
                os.umask(old)
        # Master-side node-script generators run here, never in the loop; results come back over inproc.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nodescripts")
        self._done_addr = f"inproc://perceus-done-{id(self)}"
        self._done = self.ctx.socket(zmq.PULL)
        self._done.bind(self._done_addr)
        self._done_lock = threading.Lock()
        self._done_push = self.ctx.socket(zmq.PUSH)
        self._done_push.connect(self._done_addr)
        self.counters = Counters()
        # NodeID → ROUTER identity of its bound session (the security gate sets it); None = cannot route.
        self.route: Callable[[str], bytes | None] | None = None
        self.tickers: list[tuple[float, Callable[[], None]]] = []
        self.control_handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self.readers: dict[int, Callable[[], None]] = {}
        self._running = False
        self._stop_requested = False  # a stop before serve() (SIGTERM during start-up) still ends it cleanly
        self._poller: zmq.Poller | None = None
        self._first_pending = 0.0
        self._pending_since = False
        dispatcher.publish = self.publish

    def _secure(self, sock: zmq.Socket[bytes], domain: bytes = BUS_DOMAIN) -> None:
        if self.curve is not None:
            sock.setsockopt(zmq.CURVE_SERVER, 1)
            sock.setsockopt(zmq.CURVE_PUBLICKEY, self.curve[0])
            sock.setsockopt(zmq.CURVE_SECRETKEY, self.curve[1])
            sock.setsockopt(zmq.ZAP_DOMAIN, domain)

    # ------------------------------------------------------------------ outputs
    def publish(self, msg: Message) -> None:
        """Events and `sync` go to subscribers; node-specific commands (`exec`) never do: they go over the
        ROUTER to each named node's bound session only (`route`), so no subscriber ever sees an argv."""
        if isinstance(msg, Exec):
            self._direct(msg)
            return
        if self.pub is not None:
            try:
                self.pub.send_multipart([msg.TYPE.encode(), codec.encode(msg)], flags=zmq.NOBLOCK)
            except zmq.Again:
                pass

    def push(self, identity: bytes, msg: Message) -> None:
        """An unsolicited message (rid 0) to one connected session."""
        self._send(Outgoing(identity, msg))

    def _direct(self, msg: Exec) -> None:
        sent = 0
        for node in msg.nodes:
            identity = self.route(node) if self.route is not None else None
            if identity is None:
                log.warning("exec_not_routed", node=node, job=msg.job, reason="no bound session")
                continue
            self.push(identity, Exec(job=msg.job, nodes=(node,), argv=msg.argv, timeout=msg.timeout))
            sent += 1
        log.info("exec_sent", job=msg.job, nodes=sent)

    def sync(self, nodeids: list[str]) -> None:
        """Ask nodes (empty = all) to check in now."""
        self.publish(Sync(nodes=tuple(nodeids)))

    def _send(self, out: Outgoing) -> None:
        try:
            frames: list[Any] = [out.identity, codec.encode(out.msg), *out.payload]
            self.router.send_multipart(frames, flags=zmq.NOBLOCK, copy=len(frames) == 2)
            self.counters.replied += 1
        except zmq.Again:
            log.warning("reply_dropped", reason="peer queue full", type=out.msg.TYPE)
        except zmq.ZMQError as exc:
            log.warning("reply_failed", error=str(exc), type=out.msg.TYPE)

    # ------------------------------------------------------------------ loop
    def stop(self, *_: Any) -> None:
        self._stop_requested = True
        self._running = False

    def note_pending_writes(self) -> None:
        """Features that queue dispatcher writes outside `_drain` (the legacy listener) start the commit
        window here, so their rows are committed within COMMIT_WINDOW like everything else."""
        if not self._pending_since:
            self._pending_since = True
            self._first_pending = time.monotonic()

    def add_ticker(self, every: float, fn: Callable[[], None]) -> None:
        """Call `fn` every `every` seconds from the loop (dnsmasq supervision, stale-node checks …)."""
        self.tickers.append((every, fn))

    def add_reader(self, fd: int, fn: Callable[[], None]) -> None:
        """Call `fn` from the loop when `fd` is readable (e.g. the legacy TCP 987 listener's sockets)."""
        self.readers[fd] = fn
        if self._poller is not None:
            self._poller.register(fd, zmq.POLLIN)

    def remove_reader(self, fd: int) -> None:
        if self.readers.pop(fd, None) is not None and self._poller is not None:
            self._poller.unregister(fd)

    def serve(self, *, install_signals: bool = True) -> None:
        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self._done, zmq.POLLIN)
        if self.control is not None:
            poller.register(self.control, zmq.POLLIN)
        for fd in self.readers:
            poller.register(fd, zmq.POLLIN)
        self._poller = poller
        next_tick = [time.monotonic() + every for every, _ in self.tickers]
        self._running = not self._stop_requested
        log.info("bus_listening", endpoint=self.endpoint, events=self.pub_endpoint, pid=os.getpid())
        try:
            while self._running:
                now = time.monotonic()
                deadlines = list(next_tick)
                if self.dispatcher.pending_writes():
                    deadlines.append(self._first_pending + COMMIT_WINDOW)
                timeout = 1000 if not deadlines else max(0, min(1000, int((min(deadlines) - now) * 1000) + 1))
                ready = dict(poller.poll(timeout))
                if self.router in ready:
                    self._drain()
                if self._done in ready:
                    self._drain_done()
                if self.control is not None and self.control in ready:
                    self._control()
                for fd, fn in list(self.readers.items()):
                    if fd in ready:
                        try:
                            fn()
                        except Exception:
                            log.exception("reader_failed", fd=fd)
                self._maybe_commit()
                now = time.monotonic()
                for i, (every, fn) in enumerate(self.tickers):
                    if now >= next_tick[i]:
                        next_tick[i] = now + every
                        try:
                            fn()
                        except Exception:
                            log.exception("ticker_failed", ticker=getattr(fn, "__name__", "?"))
        finally:
            self._maybe_commit(force=True)

    def _maybe_commit(self, *, force: bool = False) -> None:
        pending = self.dispatcher.pending_writes()
        if not pending:
            return
        if force or pending >= COMMIT_ROWS or time.monotonic() >= self._first_pending + COMMIT_WINDOW:
            try:
                self._pending_since = False
                self.dispatcher.flush()
                self.counters.commits += 1
            except Exception:
                log.exception("group_commit_failed", rows=pending)

    def _drain(self) -> None:
        recv = self.router.recv_multipart
        curve = self.curve is not None
        batch: list[Incoming] = []
        for _ in range(DRAIN_MAX):
            try:
                frames = recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self.counters.received += 1
            identity = frames[0].bytes
            if len(frames) < 2:
                self.counters.bad += 1
                continue
            header = frames[1]
            try:
                msg = codec.decode(header.buffer)
            except ProtocolError as exc:
                self.counters.bad += 1
                log.warning("bad_frame", error=str(exc), size=len(header.buffer))
                self._send(
                    Outgoing(
                        identity,
                        Error(code=ErrorCode(exc.code), message=str(exc), rid=codec.request_id(header.buffer)),
                    )
                )
                continue
            try:
                peer = str(header.get("Peer-Address") or "")
            except zmq.ZMQError:
                peer = ""
            key = ""
            if curve:
                try:
                    key = str(header.get("User-Id") or "")
                except zmq.ZMQError:
                    pass
            batch.append(Incoming(identity, msg, peer, key))
        if not batch:
            return
        for out in self.dispatcher.handle_batch(batch):
            self._send(out)
        for item, node in self.dispatcher.deferred:
            self._pool.submit(self._render, item, node)
        self.dispatcher.deferred.clear()
        if self.dispatcher.pending_writes():
            self.note_pending_writes()

    def _render(self, item: Incoming, node: Any) -> None:
        try:
            out = self.dispatcher.render_deferred(item, node)
        except Exception as exc:
            log.exception("nodescript_render_failed", node=getattr(node, "hostname", "?"))
            out = Outgoing(item.identity, Error(code=ErrorCode.INTERNAL, message=type(exc).__name__, rid=item.msg.rid))
        with self._done_lock:
            self._done_push.send_pyobj(out)

    def _drain_done(self) -> None:
        while True:
            try:
                out = self._done.recv_pyobj(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._send(out)

    def _control(self) -> None:
        assert self.control is not None
        while True:
            try:
                ident, body = self.control.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:
                continue
            try:
                request = msgpack.unpackb(body, raw=False)
                if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
                    raise ValueError("not a control map")  # noqa: TRY004, TRY301 - a malformed control request, answered as such below; the except below cleans up
                reply = self._control_command(request)
            except Exception as exc:  # noqa: BLE001 - an error boundary: any failure here is one line and the caller goes on
                log.warning("control_failed", error=str(exc))
                reply = {"ok": False, "error": str(exc)}
            self.control.send_multipart([ident, msgpack.packb(reply, use_bin_type=True)])

    def _control_command(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request["cmd"]
        if cmd == "ping":
            return {"ok": True, "pid": os.getpid(), "endpoint": self.endpoint, "events": self.pub_endpoint,
                    "curve": self.curve is not None}  # fmt: skip
        if cmd == "stats":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            c = self.counters
            return {
                "ok": True,
                "cpu": usage.ru_utime + usage.ru_stime,
                "received": c.received,
                "replied": c.replied,
                "bad": c.bad,
                "commits": c.commits,
                "uptime": time.time() - c.started,
            }
        if cmd == "sync":
            nodes = [str(n) for n in request.get("nodes", [])]
            self.sync(nodes)
            log.info("sync_pushed", nodes=len(nodes) or "all")
            return {"ok": True, "nodes": len(nodes)}
        handler = self.control_handlers.get(cmd)
        if handler is not None:
            return handler(request)
        return {"ok": False, "error": f"unknown control command {cmd!r}"}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
        self._drain_done()
        for sock in (self.router, self.pub, self.control, self._done, self._done_push):
            if sock is not None:
                sock.close(linger=0)


def _last_endpoint(sock: zmq.Socket[bytes]) -> str:
    value = sock.getsockopt(zmq.LAST_ENDPOINT)
    return value.decode() if isinstance(value, bytes) else str(value)
