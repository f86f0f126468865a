"""The ZAP handler (RFC 27): libzmq asks it about every CurveZMQ handshake on the bus's sockets.

It runs in its own thread, not in the bus loop, on purpose: a handshake storm (10k nodes powering on) would
otherwise queue behind group commits and enrollment transactions, and libzmq holds each new connection until
ZAP answers.  The thread shares nothing mutable with the loop except reading `Gate.revoked_keys` (set
membership is atomic under the GIL) and owns its own handshake limiter.

At handshake time only the client's key and IP address are known — not its MACs — so the enrollment policy
itself is applied to the first `hello` (handlers.py + gate.py); ZAP refuses revoked keys, clients that are
not CurveZMQ, and IP addresses opening sessions faster than `bus handshake limit`.  The answer's User-Id is
the client key in hex, which the bus reads from every message (the key a node is pinned to).

The PUB socket has its own domain (`perceus-events`): a subscriber must hold a key currently bound to a
welcomed node, or the master's own key (local root tools).  PUB carries only non-sensitive events and `sync`;
node-specific commands go over the ROUTER to the bound session (bus/server.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import structlog
import zmq

from perceus.master.bus.server import EVENTS_DOMAIN  # the PUB socket's ZAP domain
from perceus.master.security.audit import AuditLog
from perceus.master.security.gate import Gate
from perceus.master.security.ratelimit import RateLimiter, is_loopback

log = structlog.get_logger("perceus.security")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
VERSION = b"1.0"
MAX_FIELD = 256  # no legitimate ZAP field is longer; refuse to echo anything bigger


class ZapPolicy:
    """The decision, separate from the socket so it can be fuzzed without one."""

    def __init__(
        self, gate: Gate, handshakes: RateLimiter, audit: AuditLog, admin_keys: frozenset[str] = frozenset()
    ) -> None:
        self.gate = gate
        self.admin_keys = admin_keys
        self.handshakes = handshakes
        self.audit = audit
        self.allowed = 0
        self.denied = 0

    def answer(self, frames: Sequence[bytes]) -> list[bytes] | None:
        """The reply frames for one ZAP request, or None when it cannot even be answered (no request id)."""
        if len(frames) < 2 or len(frames[1]) > MAX_FIELD:
            return None
        request_id = frames[1]

        def reply(code: bytes, text: bytes, user: bytes = b"") -> list[bytes]:
            if code == b"200":
                self.allowed += 1
            else:
                self.denied += 1
            return [VERSION, request_id, code, text, user, b""]

        if len(frames) < 6 or frames[0] != VERSION:
            return reply(b"400", b"malformed ZAP request")
        address = frames[3][:MAX_FIELD].decode("ascii", "replace")
        mechanism = frames[5]
        credentials = frames[6:]
        if mechanism != b"CURVE" or len(credentials) != 1 or len(credentials[0]) != 32:
            self.audit.refusal("refused_handshake", address, reason="not CurveZMQ")
            return reply(b"400", b"CurveZMQ required")
        key = credentials[0].hex()
        if key in self.gate.revoked_keys:
            self.audit.refusal("refused_revoked_key", address, key=key)
            return reply(b"400", b"revoked")
        if not is_loopback(address) and not self.handshakes.allow(address):
            self.audit.refusal("refused_handshake_rate", address)
            return reply(b"400", b"too many handshakes")
        if frames[2] == EVENTS_DOMAIN and key not in self.gate.keys and key not in self.admin_keys:
            # The event channel is for enrolled sessions (bound keys) and local root tools, nobody else.
            self.audit.refusal("refused_subscriber", address, key=key)
            return reply(b"400", b"not an enrolled session")
        return reply(b"200", b"OK", key.encode())


class ZapThread:
    """Binds the ZAP endpoint of a context (before any Curve socket binds) and answers until stopped."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], policy: ZapPolicy) -> None:
        self.ctx = ctx
        self.policy = policy
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="perceus-zap", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            sock = self.ctx.socket(zmq.REP)
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                if not sock.poll(200):
                    continue
                frames = sock.recv_multipart()
                try:
                    out = self.policy.answer(frames)
                except Exception:  # the handler must never die: a dead ZAP handler stalls every handshake
                    log.exception("zap_failed")
                    out = None
                # REP must answer every request; an unanswerable one gets a bare refusal.
                sock.send_multipart(out if out is not None else [VERSION, b"", b"400", b"bad request", b"", b""])
        finally:
            sock.close(linger=0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
