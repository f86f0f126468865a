"""perceus-bus's optional TCP 987 listener for the Perceus 1.x C provisiond (1.x ref §5.2–5.3, §7).

Non-blocking sockets driven by the BusServer loop (`add_reader`): no fork, no thread per connection.  The
loop accepts, sends the banner, frames the request line, resolves the NodeID (`nodeid=` or the ARP table),
auto-adds on `init` under the enrollment policy, queues the status/ip/lastcontact update for the bus's
group commit and answers with the same node-script assembly the bus uses.  Master-side generators run in a
small pool whose worker then owns the socket until the reply is written; replies that fit the socket buffer
(nearly all) are written directly from the loop.

Deliberate differences from perceusd: requests are framed on newline and bounded; unresolvable, unknown or
malformed requests are closed at once instead of hanging until the 15 s reaper; node IDs are validated
before use (1.x put them into a shell command line); revocation, `enabled` and the enrollment policy are the
bus's own rules (security/policy.py), and every refusal leaves an audit line.
"""

from __future__ import annotations

import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import structlog

from perceus.errors import InvalidHardwareAddress, PerceusError, ProtocolError
from perceus.master.bus.handlers import Dispatcher
from perceus.master.bus.server import BusServer
from perceus.master.config import MasterConfig
from perceus.master.legacy import arp, wire
from perceus.master.netinfo import interface_ipv4
from perceus.master.nodescripts import Plan, environment
from perceus.master.security import policy as admission
from perceus.master.security.audit import AuditLog
from perceus.master.store.models import ContactUpdate, EnrollRequest, Node
from perceus.protocol import hwaddr, names

log = structlog.get_logger("perceus.legacy")

DEFAULT_PORT = 987
REQUEST_TIMEOUT = 15.0  # the original reaper's limit, now for reading the request and writing the reply
MAX_CONNECTIONS = 4096
LISTEN_BACKLOG = 4096
ACCEPT_BURST = 256
YES = ("yes", "true", "1", "on")


@dataclass
class Conn:
    """One client connection while the loop owns it."""

    sock: socket.socket
    peer: str
    deadline: float
    buf: bytearray = field(default_factory=bytearray)


@dataclass
class Counters:
    """Served, refused and timed-out connections (for logs and the benchmark)."""

    accepted: int = 0
    served: int = 0
    closed_early: int = 0
    timeouts: int = 0
    enrolled: int = 0


class LegacyListener:
    """The TCP 987 protocol on top of a BusServer and its Dispatcher."""

    def __init__(
        self,
        server: BusServer,
        dispatcher: Dispatcher,
        *,
        host: str = "0.0.0.0",  # noqa: S104 - the any-address: 1.x's documented default, or a value compared
        port: int = DEFAULT_PORT,
        workers: int = 4,
        timeout: float = REQUEST_TIMEOUT,
        arp_device: str = "",
    ) -> None:
        self.server = server
        self.dispatcher = dispatcher
        self.timeout = timeout
        self.arp_device = arp_device
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(LISTEN_BACKLOG)
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()
        self.conns: dict[int, Conn] = {}
        self.counters = Counters()
        self.audit = AuditLog.for_paths(dispatcher.paths)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="legacy")
        # Auto-adds are batched: requests queued during one loop pass are enrolled in one transaction on the
        # next, woken through a pipe (a boot storm of N new nodes costs N/32-ish transactions, not N).
        self._enroll_queue: list[tuple[Conn, EnrollRequest]] = []
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        server.add_reader(self._wake_r, self._flush_enrollments)
        server.add_reader(self.sock.fileno(), self._accept)
        server.add_ticker(1.0, self._reap)
        log.info("legacy_listening", host=self.address[0], port=self.address[1])

    @property
    def port(self) -> int:
        return self.address[1]

    # ------------------------------------------------------------------ connections
    def _accept(self) -> None:
        for _ in range(ACCEPT_BURST):
            try:
                sock, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: log, keep the loop alive
                log.warning("legacy_accept_failed", error=exc.strerror)
                return
            self.counters.accepted += 1
            if len(self.conns) >= MAX_CONNECTIONS:
                sock.close()
                self.counters.closed_early += 1
                continue
            sock.setblocking(False)
            try:
                sock.send(wire.BANNER)  # sent on accept, before the request, as perceusd did
            except OSError:
                sock.close()
                continue
            conn = Conn(sock=sock, peer=addr[0], deadline=time.monotonic() + self.timeout)
            self.conns[sock.fileno()] = conn
            self.server.add_reader(sock.fileno(), partial(self._readable, sock.fileno()))

    def _detach(self, fd: int) -> None:
        self.server.remove_reader(fd)
        self.conns.pop(fd, None)

    def _close(self, conn: Conn) -> None:
        self._detach(conn.sock.fileno())
        _drain_and_close(conn.sock)

    def _readable(self, fd: int) -> None:
        conn = self.conns.get(fd)
        if conn is None:
            self.server.remove_reader(fd)
            return
        try:
            data = conn.sock.recv(wire.MAX_REQUEST)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        line: bytes | None
        if not data:  # EOF: what arrived is the request (1.x's whole-burst reading), if anything did
            line = bytes(conn.buf) if conn.buf.strip(b"\0\r\n\t ") else None
            if line is None:
                self.counters.closed_early += 1
                self._close(conn)
                return
        else:
            conn.buf += data
            try:
                line = wire.split_line(bytes(conn.buf))
            except ProtocolError as exc:
                log.warning("legacy_bad_request", peer=conn.peer, error=str(exc))
                self.counters.closed_early += 1
                self._close(conn)
                return
            if line is None:
                return
        self._detach(fd)
        started = time.monotonic()
        try:
            self._handle(conn, line, started)
        except Exception:
            log.exception("legacy_request_failed", peer=conn.peer)
            _drain_and_close(conn.sock)

    def _reap(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self.conns.values() if c.deadline < now]:
            log.warning("legacy_timeout", peer=conn.peer, received=len(conn.buf))
            self.counters.timeouts += 1
            self._close(conn)

    # ------------------------------------------------------------------ requests
    def _resolve(self, request: wire.Request, peer: str) -> str:
        raw = request.args.get("nodeid", "")
        if raw:
            try:
                return hwaddr.normalize(raw)
            except InvalidHardwareAddress:
                log.warning("legacy_bad_nodeid", peer=peer, nodeid=raw[:40])
                return ""
        return arp.lookup(peer, self.arp_device)

    def _handle(self, conn: Conn, line: bytes, started: float) -> None:
        try:
            request = wire.parse(line)
        except ProtocolError as exc:
            log.warning("legacy_bad_request", peer=conn.peer, error=str(exc))
            self.counters.closed_early += 1
            _drain_and_close(conn.sock)
            return
        if request.command == "ping":
            self._reply(conn, ((" ".join(request.words) or "ping") + "\n").encode())
            return
        nodeid = self._resolve(request, conn.peer)
        if request.command == "log":
            log.info("node_message", peer=conn.peer, nodeid=nodeid, message=" ".join(request.words)[:1000])
            _drain_and_close(conn.sock)
            return
        if not nodeid:
            log.warning("legacy_unresolved", peer=conn.peer)
            self.counters.closed_early += 1
            _drain_and_close(conn.sock)
            return
        state = request.command
        if not names.valid("state", state):  # \w is Unicode: the one ASCII rule before it names a directory
            log.warning("legacy_bad_state", peer=conn.peer, state=state[:40])
            self.audit.refusal("refused_bad_name", conn.peer, node=nodeid, state=state[:40], via="legacy")
            self.counters.closed_early += 1
            _drain_and_close(conn.sock)
            return
        node = self.dispatcher.store.get(nodeid)
        if node is None:
            if state != "init":  # only init auto-adds, as in 1.x; others get nothing
                log.info("legacy_unknown_node", nodeid=nodeid, peer=conn.peer, state=state)
                self.audit.refusal("refused_unknown_node", conn.peer, node=nodeid, state=state, via="legacy")
                self.counters.closed_early += 1
                _drain_and_close(conn.sock)
                return
            self._enroll(conn, nodeid, request)
            return
        # revoked or disabled: the bus's rules (security/policy.py), with the gate's revocations of this instant
        refused = admission.refusal(node, revoked_now=self.dispatcher.revoked(node.nodeid))
        if refused is not None:
            kind, text = refused
            log.warning("legacy_refused", node=node.hostname, reason=kind, peer=conn.peer)
            self.audit.refusal(f"refused_{kind}", conn.peer, node=nodeid, state=state, via="legacy")
            self._reply(conn, wire.script_reply([wire.shell_message(text)]))
            return
        self._serve(conn, node, state)

    def _serve(self, conn: Conn, node: Node, state: str) -> None:
        """Record the contact and answer with the node's scripts for `state`."""
        self._contact(node, state, conn.peer)
        plan = self.dispatcher.scripts.plan(state, node)
        env = self._environment(node, state)
        log.debug("legacy_request", node=node.hostname, state=state, peer=conn.peer)
        if plan.needs_master:
            self._pool.submit(self._render_and_send, conn, plan, env)
            return
        bodies = [s.body for s in self.dispatcher.scripts.render(plan, env)]
        self._reply(conn, wire.script_reply(bodies))

    def _enroll(self, conn: Conn, nodeid: str, request: wire.Request) -> None:
        policy = self.dispatcher.config.enrollment_policy
        wish = request.args.get("nodename", "")
        enroll = EnrollRequest(nodeid=nodeid, macs=(nodeid,), nodename=wish if _label(wish) else "")
        decision = admission.unknown(policy, "init")
        if decision is admission.Unknown.PENDING and self.dispatcher.pending_full(nodeid):
            log.warning("node_pending_refused", nodeid=nodeid, peer=conn.peer, via="legacy")
            self.audit.refusal("refused_pending_full", conn.peer, node=nodeid, via="legacy")
            self._reply(conn, wire.script_reply([wire.shell_message("too many nodes waiting for approval")]))
            return
        if decision is admission.Unknown.ENROLL:
            self._enroll_queue.append((conn, enroll))
            if len(self._enroll_queue) == 1:
                try:
                    os.write(self._wake_w, b"e")
                except BlockingIOError:
                    pass
            return
        if decision is admission.Unknown.PENDING:
            self.dispatcher.store.note_pending(enroll, conn.peer, time.time())
            log.info("node_pending", nodeid=nodeid, peer=conn.peer, via="legacy")
            self.audit.record("pending", node=nodeid, via="legacy")
            text = f"{nodeid} is waiting for approval (perceus node approve)"
        else:
            log.warning("node_refused", nodeid=nodeid, peer=conn.peer, policy=policy, via="legacy")
            self.audit.refusal("refused_unknown_node", conn.peer, node=nodeid, policy=policy, via="legacy")
            text = f"{nodeid} is not on this master's allowlist"
        self._reply(conn, wire.script_reply([wire.shell_message(text)]))

    def _flush_enrollments(self) -> None:
        """Enroll every queued unknown `init` node in one transaction (names in arrival order)."""
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        queue, self._enroll_queue = self._enroll_queue, []
        if not queue:
            return
        try:
            nodes = self.dispatcher.store.enroll([req for _, req in queue], self.dispatcher.defaults)
        except Exception as exc:  # every queued client still gets an answer and its socket closed  # noqa: BLE001
            log.error("enroll_failed", count=len(queue), error=str(exc) or type(exc).__name__)
            nodes = []
        by_mac = {mac: node for node in nodes for mac in (node.nodeid, *node.macs)}
        for conn, req in queue:
            node = by_mac.get(req.nodeid)
            if node is None:
                self._reply(conn, wire.script_reply([wire.shell_message("Could not add node to DB.")]))
                continue
            self.counters.enrolled += 1
            log.info("node_enrolled", node=node.hostname, nodeid=node.nodeid, peer=conn.peer, via="legacy")
            self.audit.record("enrolled", node=node.nodeid, hostname=node.hostname, via="legacy")
            try:
                self._serve(conn, node, "init")
            except Exception:
                log.exception("legacy_request_failed", peer=conn.peer)
                _drain_and_close(conn.sock)

    def _contact(self, node: Node, state: str, peer: str) -> None:
        """Queue status/ip/lastcontact for the bus's group commit (1.x: three open/write/close cycles)."""
        self.dispatcher.contacts[node.nodeid] = ContactUpdate(nodeid=node.nodeid, status=state, ip=peer, t=time.time())
        self.server.note_pending_writes()  # start the bus's commit window (otherwise only ZeroMQ traffic does)

    def _environment(self, node: Node, state: str) -> dict[str, str]:
        """The bus's node-script environment, with the 1.x transfer settings legacy scripts (getfile) need."""
        env = environment(node, state, self.dispatcher.paths.state_dir, self.dispatcher.master_ip())
        raw = self.dispatcher.config.raw
        method = raw.get("vnfs transfer method", [""])[0]
        if method and method != "bus":
            env["VNFSMETHOD"] = method
            env["VNFSMASTER"] = raw.get("vnfs transfer master", [env["VNFSMASTER"]])[0]
            env["VNFSPREFIX"] = raw.get("vnfs transfer prefix", [""])[0]
        return env

    # ------------------------------------------------------------------ replies
    def _reply(self, conn: Conn, data: bytes) -> None:
        """Write from the loop; what does not fit the socket buffer is finished by a worker."""
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the client left (daemon-bench's ready phase reads only the banner)
            self.counters.served += 1
            _drain_and_close(conn.sock)
            return
        if sent == len(data):
            self.counters.served += 1
            _drain_and_close(conn.sock)
            return
        self._pool.submit(self._send_blocking, conn, data[sent:])

    def _send_blocking(self, conn: Conn, data: bytes) -> None:
        try:
            conn.sock.settimeout(self.timeout)
            conn.sock.sendall(data)
        except OSError as exc:
            log.info("legacy_reply_cut", peer=conn.peer, error=str(exc))
        self.counters.served += 1
        _drain_and_close(conn.sock)

    def _render_and_send(self, conn: Conn, plan: Plan, env: dict[str, str]) -> None:
        """Worker: run master-side generators, then write the reply on the socket it now owns."""
        try:
            bodies = [s.body for s in self.dispatcher.scripts.render(plan, env)]
        except Exception:
            log.exception("nodescript_render_failed", node=env.get("NODENAME", "?"), via="legacy")
            bodies = [wire.shell_message("ERROR: node scripts failed on the master")]
        self._send_blocking(conn, wire.script_reply(bodies))

    def close(self) -> None:
        self.server.remove_reader(self.sock.fileno())
        for conn in list(self.conns.values()):
            self._close(conn)
        for conn, _ in self._enroll_queue:
            _drain_and_close(conn.sock)
        self._enroll_queue.clear()
        self._pool.shutdown(wait=True)
        self.server.remove_reader(self._wake_r)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self.sock.close()


def _drain_and_close(sock: socket.socket) -> None:
    """Close without a reset: unread bytes (provisiond's trailing NUL) would make the kernel send RST, and a
    client that has not read the whole reply yet would lose it."""
    try:
        sock.setblocking(False)
        while sock.recv(4096):
            pass
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    sock.close()


def _label(name: str) -> bool:
    return 0 < len(name) <= 63 and name[0].isalnum() and all(c.isalnum() or c in "-_." for c in name)


def install(server: BusServer, dispatcher: Dispatcher, config: MasterConfig) -> LegacyListener | None:
    """Start the listener when perceus.conf says `legacy listener = yes` (set by `perceus import perceus1`)."""
    raw = config.raw
    if raw.get("legacy listener", ["no"])[0].lower() not in YES:
        return None
    try:
        port = int(raw.get("legacy port", [str(DEFAULT_PORT)])[0])
    except ValueError:
        raise PerceusError(f"'legacy port = {raw['legacy port'][0]}' is not a port number") from None
    host = raw.get("legacy address", [""])[0] or interface_ipv4(config.master_device) or "0.0.0.0"  # noqa: S104 - the any-address: 1.x's documented default, or a value compared
    try:
        return LegacyListener(server, dispatcher, host=host, port=port, arp_device=config.master_device)
    except OSError as exc:
        raise PerceusError(f"could not create new socket at TCP:{port} - {exc.strerror}") from None
