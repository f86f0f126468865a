"""Bus client: the agent's only ZeroMQ adapter (a DEALER speaking protocol v1 to perceus-bus).

Requests carry a request id (`rid`); replies with another rid are stale answers to a request we already
gave up on and are dropped.  Retries use jittered exponential back-off so a fleet never beats in step.
Every send also gets the next per-boot sequence number (`seq`), so a resent or replayed request can never be
mistaken for a new one by the master (docs/security.md).  With a master key, the socket is a CurveZMQ client
(`CurveClient`): one keypair per process — per boot — kept across reconnects and fail-overs, because the
master pins a boot's requests to the key that said hello.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import time
from collections.abc import Callable, Iterator, Sequence

import zmq
from zmq.utils import z85

from perceus.errors import BusError, ProtocolError
from perceus.protocol import codec
from perceus.protocol.messages import Error, Message

DEFAULT_PORT = 9987
MAX_PUSHED = 64  # pushed messages kept while a reply is awaited


def endpoint(master: str) -> str:
    """`host[:port]` (or a full tcp:// / ipc:// endpoint) → a ZeroMQ endpoint."""
    if "://" in master:
        return master
    host, sep, port = master.rpartition(":")
    if not sep or not port.isdigit():
        return f"tcp://{master}:{DEFAULT_PORT}"
    return f"tcp://{host}:{port}"


CurveHook = Callable[[zmq.Socket[bytes]], None]


class CurveClient:
    """A `curve` hook for BusClient/Subscriber: talk only to the master holding `server_public` (32 bytes).

    The node's own keypair is generated here, once; a master with another key fails the handshake, so an
    impostor never receives a single request (ZeroMQ just keeps retrying the handshake).
    """

    def __init__(self, server_public: bytes, keypair: tuple[bytes, bytes] | None = None) -> None:
        """`keypair` (public, secret; 32 raw bytes each): the one stage one handed over; None = a fresh one."""
        if len(server_public) != 32:
            raise ValueError("a CurveZMQ public key is 32 bytes")
        if keypair is None:
            public, self._secret = zmq.curve_keypair()
        else:
            public, self._secret = z85.encode(keypair[0]), z85.encode(keypair[1])
        self._public = public
        self._server = z85.encode(server_public)
        self.public_key: bytes = z85.decode(public)

    def toward(self, server_public: bytes) -> CurveClient:
        """The same node keypair, talking to another server (a swarm peer, whose key the master vouched for)."""
        other = CurveClient.__new__(CurveClient)
        if len(server_public) != 32:
            raise ValueError("a CurveZMQ public key is 32 bytes")
        other._public, other._secret, other.public_key = self._public, self._secret, self.public_key
        other._server = z85.encode(server_public)
        return other

    def serve(self, sock: zmq.Socket[bytes]) -> None:
        """Make `sock` a CurveZMQ server with this node's own keypair (the swarm's peer server)."""
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self._secret)

    def __call__(self, sock: zmq.Socket[bytes]) -> None:
        sock.setsockopt(zmq.CURVE_SERVERKEY, self._server)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self._public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self._secret)


def new_keypair() -> tuple[bytes, bytes]:
    """A fresh CurveZMQ keypair (public, secret), 32 raw bytes each: provisiond's, made by stage one."""
    public, secret = zmq.curve_keypair()
    return z85.decode(public), z85.decode(secret)


def backoff(attempt: int, *, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None) -> float:
    """Full-jitter exponential back-off: uniform in [0, min(cap, base·2^attempt)] but at least base/2."""
    rng = rng or random.Random()  # noqa: S311 - jitter and ids, never a secret
    ceiling = min(cap, base * (2 ** min(attempt, 16)))
    return max(base / 2, rng.uniform(0, ceiling))


class BusClient:
    """One DEALER connection to a master (or the next of several on failure)."""

    def __init__(
        self,
        masters: Sequence[str],
        *,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        identity: bytes | None = None,
        max_frame: int = codec.MAX_CHUNK_FRAME,
        curve: CurveHook | None = None,
    ) -> None:
        if not masters:
            raise BusError("no master address given")
        self.masters = list(masters)
        self._index = 0
        self._ctx = context or zmq.Context.instance()
        self._identity = identity
        self._max_frame = max_frame
        self._curve = curve
        self._rids: Iterator[int] = itertools.count(random.randrange(1, 1 << 30))  # noqa: S311 - jitter and ids, never a secret
        self._seq = 0
        self._sock: zmq.Socket[bytes] | None = None
        # Unsolicited messages (rid 0: `exec`, a liveness `sync`) the master pushed to this session's identity.
        self.pushed: list[Message] = []
        self._connect()

    @property
    def master(self) -> str:
        return self.masters[self._index]

    def _connect(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self._max_frame + 4096)
        sock.setsockopt(zmq.RCVHWM, 1000)
        sock.setsockopt(zmq.SNDHWM, 1000)
        if self._identity:
            sock.setsockopt(zmq.IDENTITY, self._identity)
        if self._curve:
            self._curve(sock)
        sock.connect(endpoint(self.master))
        self._sock = sock

    def learn(self, masters: Sequence[str]) -> list[str]:
        """Add masters a welcome advertised (multi-master) to the failover list; returns the new ones."""
        known = {endpoint(m) for m in self.masters}
        new = [m for m in masters if m and endpoint(m) not in known]
        self.masters.extend(new)
        return new

    def failover(self) -> None:
        """Drop the connection and move to the next master (round robin)."""
        self.close()
        self._index = (self._index + 1) % len(self.masters)
        self._connect()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    @property
    def socket(self) -> zmq.Socket[bytes]:
        assert self._sock is not None
        return self._sock

    def next_rid(self) -> int:
        return next(self._rids) & 0x7FFFFFFF or 1

    def send(self, msg: Message, *payload: bytes) -> int:
        """Send a request (with a fresh rid unless it has one, and the next seq); returns the rid."""
        changes: dict[str, int] = {}
        if msg.rid == 0:
            changes["rid"] = self.next_rid()
        if _has_seq(type(msg)):
            self._seq += 1
            changes["seq"] = self._seq
        if changes:
            msg = dataclasses.replace(msg, **changes)
        self.socket.send_multipart([codec.encode(msg), *payload])
        return msg.rid

    def receive(self, rid: int, timeout: float) -> tuple[Message, list[zmq.Frame]]:
        """Wait up to `timeout` s for the reply to `rid`; stale or undecodable replies are skipped."""
        deadline = time.monotonic() + timeout
        sock = self.socket
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000)):
                raise BusError(f"no reply from {self.master} within {timeout:.1f}s", code="TIMEOUT")
            frames = sock.recv_multipart(copy=False)
            try:
                reply = codec.decode(frames[0].buffer, max_bytes=codec.MAX_HEADER_BYTES)
            except ProtocolError:
                continue
            if reply.rid == rid:
                return reply, list(frames[1:])
            if reply.rid == 0 and len(self.pushed) < MAX_PUSHED:
                self.pushed.append(reply)

    def take_pushed(self, timeout: float = 0.0) -> Message | None:
        """The next message the master pushed to this session (waiting up to `timeout` s), or None."""
        if not self.pushed and self._sock is not None and self._sock.poll(int(max(0.0, timeout) * 1000)):
            for frames in _drain(self._sock):
                try:
                    msg = codec.decode(frames[0], max_bytes=codec.MAX_HEADER_BYTES)
                except ProtocolError:
                    continue
                if msg.rid == 0 and len(self.pushed) < MAX_PUSHED:
                    self.pushed.append(msg)
        return self.pushed.pop(0) if self.pushed else None

    def request(self, msg: Message, *, timeout: float = 10.0) -> Message:
        """Send and wait for the paired reply; an `error` reply becomes BusError with its code."""
        rid = self.send(msg)
        reply, _ = self.receive(rid, timeout)
        if isinstance(reply, Error):
            raise BusError(f"master refused {msg.TYPE}: {reply.code}: {reply.message}", code=reply.code)
        return reply

    def call(
        self,
        msg: Message,
        *,
        timeout: float = 10.0,
        attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Message:
        """`request` with retries: on timeout, back off (jittered) and fail over to the next master."""
        last: BusError | None = None
        for attempt in range(attempts):
            try:
                return self.request(msg, timeout=timeout)
            except BusError as exc:
                if exc.code != "TIMEOUT":
                    raise
                last = exc
                if len(self.masters) > 1:
                    self.failover()
                else:
                    # A fresh socket drops queued requests to a dead peer; ZeroMQ reconnects by itself.
                    self.close()
                    self._connect()
                sleep(backoff(attempt, base=0.5, cap=10.0))
        assert last is not None
        raise last


class Subscriber:
    """SUB socket on a master's event port (`sync`, `exec` …), so a pushed "check in now" arrives at once."""

    def __init__(
        self,
        address: str,
        topics: Sequence[str],
        *,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        curve: CurveHook | None = None,
    ) -> None:
        self._sock: zmq.Socket[bytes] = (context or zmq.Context.instance()).socket(zmq.SUB)
        if curve is not None:
            curve(self._sock)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, codec.MAX_HEADER_BYTES + 4096)
        # A subscriber is admitted only once its key is bound to a welcomed node (security/zap.py): until then
        # its handshakes are refused, so reconnect with back-off instead of every 100 ms.
        self._sock.setsockopt(zmq.RECONNECT_IVL_MAX, 10_000)
        for topic in topics:
            self._sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._sock.connect(endpoint(address))

    def wait(self, timeout: float) -> Message | None:
        """The next published message within `timeout` s, or None; undecodable frames are skipped."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sock.poll(int(left * 1000)):
                return None
            frames = self._sock.recv_multipart()
            try:
                return codec.decode(frames[-1], max_bytes=codec.MAX_HEADER_BYTES)
            except ProtocolError:
                continue

    def close(self) -> None:
        self._sock.close(linger=0)


def _drain(sock: zmq.Socket[bytes]) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    while len(out) < MAX_PUSHED:
        try:
            out.append(sock.recv_multipart(zmq.NOBLOCK))
        except zmq.Again:
            break
    return out


def wait_any(client: BusClient, sub: Subscriber | None, timeout: float) -> tuple[Message | None, bool]:
    """The next message pushed to `client`'s own session (True) or published on `sub` (False), within
    `timeout` s; (None, False) when nothing came.  Only pushed messages may carry node-specific commands."""
    if client.pushed:
        return client.take_pushed(), True
    socks = [s for s in (client._sock, sub._sock if sub is not None else None) if s is not None]
    if not socks:
        time.sleep(max(0.0, timeout))
        return None, False
    ready = set(poll_sockets(socks, timeout))
    if client._sock is not None and client._sock in ready:
        msg = client.take_pushed()
        if msg is not None:
            return msg, True
    if sub is not None and sub._sock in ready:
        try:
            frames = sub._sock.recv_multipart(zmq.NOBLOCK)
            return codec.decode(frames[-1], max_bytes=codec.MAX_HEADER_BYTES), False
        except (zmq.Again, ProtocolError):
            pass
    return None, False


_SEQ_FIELDS: dict[type[Message], bool] = {}


def _has_seq(cls: type[Message]) -> bool:
    known = _SEQ_FIELDS.get(cls)
    if known is None:
        known = _SEQ_FIELDS[cls] = any(f.name == "seq" for f in dataclasses.fields(cls))
    return known


# ---------------------------------------------------------------------------------------------- swarm peers


class PeerRouter:
    """The ROUTER a node's swarm peer server listens on (issue 21): Curve server with the node's own key.

    It has a ZeroMQ context of its own, so its ZAP handler (RFC 27, answered inside `receive` on the serving
    thread) never clashes with another server in the process.  ZAP asks `admit(address, key_hex)` about every
    completed Curve handshake and names the client's key as the connection's User-Id, which `receive` returns
    with each request: the key the peer checks a voucher against is the one the handshake proved.
    """

    ZAP_ENDPOINT = "inproc://zeromq.zap.01"

    def __init__(
        self,
        port: int,
        *,
        curve: CurveClient | None = None,
        host: str = "*",
        admit: Callable[[str, str], bool] | None = None,
    ) -> None:
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._admit = admit or (lambda address, key: True)
        self._zap: zmq.Socket[bytes] | None = None
        self._sock: zmq.Socket[bytes] = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, codec.MAX_HEADER_BYTES + 4096)  # requests only: no payloads in
        self._sock.setsockopt(zmq.SNDHWM, 64)
        self._sock.setsockopt(zmq.RCVHWM, 64)  # a flooding asker's pipe fills and TCP pushes back on it
        self._sock.setsockopt(zmq.HANDSHAKE_IVL, 5000)  # half-open connections are dropped after 5 s
        self._sock.setsockopt(zmq.HEARTBEAT_IVL, 10_000)
        self._sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 30_000)
        try:
            if curve is not None:
                self._zap = self._ctx.socket(zmq.REP)
                self._zap.setsockopt(zmq.LINGER, 0)
                self._zap.bind(self.ZAP_ENDPOINT)
                curve.serve(self._sock)
                self._sock.setsockopt(zmq.ZAP_DOMAIN, b"perceus-swarm")
            if port:
                self._sock.bind(f"tcp://{host}:{port}")
                self.port = port
            else:
                self.port = self._sock.bind_to_random_port(f"tcp://{host}")
        except zmq.ZMQError:
            self.close()
            raise

    def _answer_zap(self) -> None:
        assert self._zap is not None
        frames = self._zap.recv_multipart()
        rid = frames[1][:256] if len(frames) > 1 else b""
        ok = False
        user = b""
        if len(frames) == 7 and frames[0] == b"1.0" and frames[5] == b"CURVE" and len(frames[6]) == 32:
            user = frames[6].hex().encode()
            try:
                ok = self._admit(frames[3][:64].decode("ascii", "replace"), user.decode())
            except Exception:  # noqa: BLE001 - a failing policy refuses; the handler must answer every request
                ok = False
        reply = [b"1.0", rid, b"200", b"OK", user, b""] if ok else [b"1.0", rid, b"400", b"refused", b"", b""]
        self._zap.send_multipart(reply)

    def receive(self, timeout: float) -> tuple[bytes, Message, str] | None:
        """The next decodable request (sender identity, message, client key hex or "") within `timeout` s."""
        deadline = time.monotonic() + max(0.0, timeout)
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        if self._zap is not None:
            poller.register(self._zap, zmq.POLLIN)
        while True:
            ready = dict(poller.poll(int(max(0.0, deadline - time.monotonic()) * 1000)))
            if self._zap is not None and self._zap in ready:
                self._answer_zap()
            if self._sock in ready:
                break
            if time.monotonic() >= deadline:
                return None
        frames = self._sock.recv_multipart(copy=False)
        if len(frames) < 2:
            return None
        try:
            key = frames[1].get("User-Id") if self._zap is not None else ""
        except zmq.ZMQError:
            key = ""
        try:
            return frames[0].bytes, codec.decode(frames[1].buffer, max_bytes=codec.MAX_HEADER_BYTES), str(key or "")
        except ProtocolError:
            return None

    def reply(self, identity: bytes, msg: Message, *payload: bytes | memoryview) -> None:
        try:
            self._sock.send_multipart([identity, codec.encode(msg), *payload], zmq.NOBLOCK)
        except zmq.Again:
            pass  # the asker is gone or not reading: it times out and asks someone else

    def close(self) -> None:
        self._sock.close(linger=0)
        if self._zap is not None:
            self._zap.close(linger=0)
        self._ctx.term()


class PeerLink:
    """A DEALER to one swarm peer (Curve client toward the key the master vouched for)."""

    def __init__(self, endpoint_: str, *, curve: CurveClient | None = None) -> None:
        self._sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, codec.MAX_CHUNK_FRAME + 4096)
        # A SYN or handshake lost in a full link queue: try a fresh connection after 2 s rather than wait out the
        # kernel's SYN backoff (at 100 emulated nodes, connects sat in SYN-SENT for a minute, backoff 6).
        self._sock.setsockopt(zmq.CONNECT_TIMEOUT, 2000)
        self._sock.setsockopt(zmq.HANDSHAKE_IVL, 5000)
        if curve is not None:
            curve(self._sock)
        self._sock.connect(endpoint_)

    @property
    def socket(self) -> zmq.Socket[bytes]:
        return self._sock

    def send(self, msg: Message) -> None:
        self._sock.send_multipart([codec.encode(msg)])

    def close(self) -> None:
        self._sock.close(linger=0)


def poll_sockets(socks: Sequence[zmq.Socket[bytes]], timeout: float) -> list[zmq.Socket[bytes]]:
    """The sockets of `socks` with something to read within `timeout` s."""
    poller = zmq.Poller()
    for sock in socks:
        poller.register(sock, zmq.POLLIN)
    return [s for s, _ in poller.poll(int(max(0.0, timeout) * 1000))]
