"""The master checks a "bad chunk" report itself (issue 21) before it excludes the accused peer.

A node that says a peer served bytes failing verification may be wrong or lying (an enrolled attacker who wants
honest peers excluded).  So the master asks the accused peer for that chunk itself — as an asker of its own, with
its bus key as Curve client key and a voucher it signs for itself (node `VERIFIER`) — and checks the bytes
against the manifest's hash.  Verdicts: `bad` (the peer served wrong bytes: exclude it), `good` (the report was
false: a strike for the reporter), `silent` (no answer within the timeout: skipped for a while, like `dead`).

The checks run on a thread of their own with its own ZeroMQ context, never in the bus loop: the loop hands jobs
over with `submit` (bounded, one check per accused peer at a time) and collects verdicts with `verdicts`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
import zmq
from zmq.utils import z85

from perceus.errors import ProtocolError
from perceus.protocol import codec
from perceus.protocol.capsule import digest
from perceus.protocol.messages import Chunk, PeerGet
from perceus.protocol.swarm import VERIFIER, token_payload

log = structlog.get_logger("perceus.capsule.swarm")

MAX_QUEUED = 8  # checks waiting or running; more reports meanwhile count as "did not answer"
TIMEOUT = 5.0


@dataclass(frozen=True)
class Check:
    """Ask `peer` (at `endpoint`, Curve key `key` hex) for chunk `chunk` of `manifest` because `reporter` said so."""

    manifest: str
    chunk: str
    peer: str
    endpoint: str
    key: str
    reporter: str


@dataclass(frozen=True)
class Verdict:
    check: Check
    result: str  # "bad" | "good" | "silent"
    detail: str = ""


class Verifier:
    """One thread that fetches reported chunks from accused peers and says whether the bytes verify."""

    def __init__(
        self,
        sign: Callable[[bytes], bytes] | None,
        curve_keys: tuple[bytes, bytes] | None,
        *,
        timeout: float = TIMEOUT,
    ) -> None:
        """`sign(payload)` → 64-byte signature (None: a keyless master, no vouchers); `curve_keys` = the
        master's bus keypair (public, secret; raw 32 bytes) or None without Curve."""
        self._sign = sign
        self._curve = curve_keys
        self._public_hex = curve_keys[0].hex() if curve_keys is not None else ""
        self.timeout = timeout
        self._jobs: queue.Queue[Check | None] = queue.Queue()
        self._done: queue.Queue[Verdict] = queue.Queue()
        self.busy: set[str] = set()  # accused peers with a check waiting or running (bus loop only)
        self._thread: threading.Thread | None = None
        self.rid = 0

    def submit(self, check: Check) -> bool:
        """Queue a check (bus loop); False when that peer is already being checked or the queue is full."""
        if check.peer in self.busy or len(self.busy) >= MAX_QUEUED:
            return False
        self.busy.add(check.peer)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="swarm-verify", daemon=True)
            self._thread.start()
        self._jobs.put(check)
        return True

    def verdicts(self) -> list[Verdict]:
        """The verdicts reached since the last call (bus loop)."""
        out: list[Verdict] = []
        while True:
            try:
                v = self._done.get_nowait()
            except queue.Empty:
                return out
            self.busy.discard(v.check.peer)
            out.append(v)

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(self.timeout + 1)

    def _run(self) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        try:
            while True:
                check = self._jobs.get()
                if check is None:
                    return
                try:
                    result, detail = self._check(ctx, check)
                except Exception as exc:  # noqa: BLE001 - a failed check must still free the peer
                    result, detail = "silent", f"check failed: {exc}"
                log.info("swarm_report_checked", peer=check.peer, reporter=check.reporter, result=result,
                         chunk=check.chunk[:16], detail=detail)  # fmt: skip
                self._done.put(Verdict(check, result, detail))
        finally:
            ctx.destroy(linger=0)

    def _check(self, ctx: zmq.Context[zmq.Socket[bytes]], check: Check) -> tuple[str, str]:
        sock: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, codec.MAX_CHUNK_FRAME + 4096)
            if self._curve is not None and check.key:
                sock.setsockopt(zmq.CURVE_SERVERKEY, z85.encode(bytes.fromhex(check.key)))
                sock.setsockopt(zmq.CURVE_PUBLICKEY, z85.encode(self._curve[0]))
                sock.setsockopt(zmq.CURVE_SECRETKEY, z85.encode(self._curve[1]))
            sock.connect(check.endpoint)
            issued = time.time()
            token = b""
            if self._sign is not None:
                payload = token_payload(check.manifest, VERIFIER, self._public_hex, issued)
                token = self._sign(payload) + f"{issued:.3f}".encode()
            self.rid += 1
            sock.send(codec.encode(PeerGet(rid=self.rid, node=VERIFIER, manifest=check.manifest, hash=check.chunk,
                                           token=token)))  # fmt: skip
            deadline = time.monotonic() + self.timeout
            while (left := deadline - time.monotonic()) > 0:
                if not sock.poll(int(left * 1000) + 1):
                    break
                frames = sock.recv_multipart()
                try:
                    reply = codec.decode(frames[0], max_bytes=codec.MAX_HEADER_BYTES)
                except ProtocolError as exc:
                    return "bad", f"undecodable reply: {exc}"
                if reply.rid != self.rid:
                    continue
                if not isinstance(reply, Chunk) or len(frames) != 2:
                    return "silent", f"answered {reply.TYPE}: {getattr(reply, 'message', '')}"
                return ("good", "") if digest(frames[1]) == check.chunk else ("bad", "bytes fail the manifest hash")
            return "silent", "no answer"
        finally:
            sock.close(linger=0)
