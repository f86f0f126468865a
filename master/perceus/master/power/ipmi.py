"""The pyghmi adapter (the only module importing pyghmi): IPMI 2.0 / RMCP+ power control and Serial-over-LAN.

pyghmi keeps process-global session state with one I/O thread, and is not safe to drive from many threads:
logins started together lose wake-ups (one of twenty took 24 s here), sessions fail with a TypeError inside
pyghmi, `set_power(wait=True)` deadlocks (lab-recipes.md).  Its synchronous API from ONE thread is reliable
(2–5 ms per BMC on 127.0.0.1, with an occasional 0.5–1 s retransmit).  So power runs in a small pool of worker
processes (a forkserver, so they start clean even from a threaded parent), each a single-threaded pyghmi user
handling one BMC at a time.  A worker whose BMC outlives the caller's deadline is killed and replaced, so a
silent BMC holds up no other node.  Power uses raw chassis commands (Get Chassis Status, Chassis Control)
instead of `get_power`/`set_power`, which first probe the BMC's OEM identity.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from pyghmi import exceptions as pyghmi_exc
from pyghmi.ipmi import command as ipmi_command
from pyghmi.ipmi import console as ipmi_console
from pyghmi.ipmi.private import session as ipmi_session

from perceus.master.power.errors import BmcError
from perceus.master.power.records import BmcRecord

# IPMI Chassis Control (netfn 0 / cmd 2) data byte per action.
CONTROL = {"off": 0, "on": 1, "cycle": 2, "reset": 3, "soft": 5}
# What each action leaves the node in, as reported to the admin.
RESULT = {"off": "off", "on": "on", "cycle": "cycling", "reset": "reset", "soft": "soft-off requested"}
WORKERS = 8
HEDGE = 0.15  # seconds before a status read is also asked of a second worker


def power(record: BmcRecord, action: str, timeout: float) -> str:
    """Run one power action (`status` included) on an IPMI BMC; returns the state or what was requested."""
    return _pool().call(record, action, timeout)


# ---------------------------------------------------------------------------------------------- one BMC, sync


def power_sync(record: BmcRecord, action: str) -> str:
    """The action with pyghmi's synchronous API: only ever called from a worker's single thread."""
    try:
        cmd = ipmi_command.Command(
            bmc=record.host.strip("[]"), userid=record.user, password=record.password, port=record.port,
            keepalive=False,
        )  # fmt: skip
    except pyghmi_exc.IpmiException as exc:
        raise _error(record, exc) from None
    except OSError as exc:
        raise BmcError("unreachable", record.url, exc.strerror or str(exc)) from None
    try:
        data = _raw(cmd, record, 1, [])
        if not data:
            raise BmcError("bmc", record.url, "empty Get Chassis Status reply")
        state = "on" if data[0] & 1 else "off"
        if action == "status" or (action in ("on", "off") and state == action):
            return state
        if action == "cycle" and state == "off":
            action = "on"  # Chassis Control "cycle" on a powered-off chassis is refused (0xd5): power it on
        _raw(cmd, record, 2, [CONTROL[action]])
        return RESULT[action]
    finally:
        _logout(cmd, record)


def _raw(cmd: Any, record: BmcRecord, command: int, data: list[int]) -> bytes:
    try:
        reply = cmd.raw_command(netfn=0, command=command, data=data)
    except pyghmi_exc.IpmiException as exc:
        raise _error(record, exc) from None
    if "error" in reply:
        code = int(reply.get("code", 0) or 0)
        kind = "unsupported" if code in (0xC1, 0xCC, 0xD5, 0xD6) else "bmc"
        raise BmcError(kind, record.url, f"{reply['error']} (completion code 0x{code:02x})")
    return bytes(reply.get("data", b""))


def _logout(cmd: Any, record: BmcRecord) -> None:
    try:
        cmd.ipmi_session.logout()
    except Exception:  # a broken session is gone anyway; logout is courtesy to the BMC's few session slots  # noqa: BLE001, S110
        pass
    # pyghmi leaves the logged-out session in `initting_sessions` and would hand it to the next Command for the
    # same BMC and user, which then fails inside pyghmi (TypeError on `logoutexpiry`): forget it.
    key = (record.host.strip("[]"), record.user, record.password, record.port, None)
    ipmi_session.Session.initting_sessions.pop(key, None)


def _error(record: BmcRecord, exc: Exception) -> BmcError:
    text = str(exc) if exc.args and exc.args[0] else ""
    low = text.lower()
    if "password" in low or "unauthorized" in low or "username" in low or "privilege" in low or "rakp" in low:
        return BmcError("auth", record.url, f"login refused: {text}")
    if not text or "timeout" in low or "timed out" in low or "no longer connected" in low:
        return BmcError("unreachable", record.url, "no answer from the BMC (RMCP+ session not established)")
    return BmcError("bmc", record.url, text)


# ---------------------------------------------------------------------------------------------- worker pool


def _serve(conn: Connection) -> None:
    """A worker process: (record, action) in, ("ok", state) or ("error", kind, url, detail) out, until None."""
    _warm()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:  # the pool closes: every fork holds copies of other pipes, so EOF is not enough
            return
        record, action = message
        try:
            reply: tuple[str, ...] = ("ok", power_sync(record, action))
        except BmcError as exc:
            reply = ("error", exc.kind, exc.bmc, exc.detail)
        except Exception as exc:  # pyghmi internals: one line for this node; the worker goes on  # noqa: BLE001
            reply = ("error", "bmc", record.url, f"{type(exc).__name__}: {exc}"[:200])
        conn.send(reply)


def _warm() -> None:
    """Make pyghmi's UDP socket and I/O thread now, before the first BMC: a first login that has to start them
    often loses a wake-up and waits for pyghmi's 0.5–1 s retransmit."""
    try:
        sock = ipmi_session.Session._assignsocket()
        ipmi_session.Session.socketpool[sock] -= 1  # the slot is free again for the first real session
    except Exception:  # warming is an optimisation; the first request then just pays for it  # noqa: BLE001, S110
        pass


class _Worker:
    def __init__(self, ctx: Any) -> None:
        parent, child = multiprocessing.Pipe()
        self.conn = parent
        self.process = ctx.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(1)
        self.conn.close()


class _Pool:
    """Up to WORKERS worker processes; a caller borrows one for one BMC request."""

    def __init__(self, size: int = WORKERS) -> None:
        # fork: a worker starts in milliseconds with pyghmi already imported and never used (the parent does no
        # IPMI itself, so no pyghmi I/O thread or session is inherited).  `prepare()` forks them up front, from
        # the caller's thread, before the runner starts its threads.
        self.ctx = multiprocessing.get_context("fork")
        self.idle: list[_Worker] = []
        self.all: list[_Worker] = []
        self.slots = threading.BoundedSemaphore(size)
        self.lock = threading.Lock()
        self.lane = threading.Condition()
        self.started: dict[int, float] = {}  # id of each call in flight → when its request went out

    def _enter_lane(self, deadline: float) -> int:
        """Admit one request at a time, plus one more whenever every request in flight is older than HEDGE.

        Measured here: one worker alone reads 40 BMCs in 0.1 s, while four or eight in parallel take ~0.9 s —
        pyghmi's lost wake-ups (0.5–1 s retransmits) become common once its threads are preempted by other
        busy processes.  So requests go one after another, and only a slow one (a stall, a silent BMC) lets
        the next request start beside it: nothing waits behind a BMC that does not answer."""
        me = id(threading.current_thread())
        with self.lane:
            while True:
                now = time.monotonic()
                young = [t for t in self.started.values() if now - t < HEDGE]
                if not young or now >= deadline:
                    self.started[me] = now
                    return me
                self.lane.wait(min(HEDGE - (now - max(young)), deadline - now) + 0.001)

    def _leave_lane(self, me: int) -> None:
        with self.lane:
            self.started.pop(me, None)
            self.lane.notify()  # one waiter takes the free lane; the rest would only wake to wait again

    def call(self, record: BmcRecord, action: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        me = self._enter_lane(deadline)
        try:
            return self._call(record, action, deadline, timeout)
        finally:
            self._leave_lane(me)

    def _call(self, record: BmcRecord, action: str, deadline: float, timeout: float) -> str:
        first = self._borrow(record, deadline)
        assert first is not None  # waited for a slot
        workers = [first]
        answered: _Worker | None = None
        try:
            first.conn.send((record, action))
            ready = wait(
                [first.conn], min(HEDGE, timeout) if action == "status" else max(0.0, deadline - time.monotonic())
            )
            if not ready and action == "status" and time.monotonic() < deadline:
                # pyghmi now and then loses a wake-up and retransmits only after 0.5–1 s.  A status read is
                # idempotent: ask a second worker too and take whichever answers first.
                second = self._borrow(record, deadline, wait_for_slot=False)
                if second is not None:
                    workers.append(second)
                    second.conn.send((record, action))
                ready = wait([w.conn for w in workers], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise BmcError("timeout", record.url, f"no answer within {timeout:g} s")
            winner = next(w for w in workers if w.conn in ready)
            reply = winner.conn.recv()
            answered = winner
        except (EOFError, OSError) as exc:
            raise BmcError("bmc", record.url, f"IPMI worker lost: {exc}") from None
        finally:
            for w in workers:
                self._give_back(w, deadline, answered=w is answered)
        if reply[0] == "ok":
            return str(reply[1])
        raise BmcError(str(reply[1]), str(reply[2]), str(reply[3]))

    def _borrow(self, record: BmcRecord, deadline: float, *, wait_for_slot: bool = True) -> _Worker | None:
        if not self.slots.acquire(timeout=max(0.0, deadline - time.monotonic()) if wait_for_slot else 0):
            if not wait_for_slot:
                return None
            raise BmcError("timeout", record.url, "no IPMI worker free before the deadline")
        with self.lock:
            worker = self.idle.pop() if self.idle else None
        if worker is None:
            worker = _Worker(self.ctx)
            with self.lock:
                self.all.append(worker)
        return worker

    def _give_back(self, worker: _Worker, deadline: float, *, answered: bool) -> None:
        """An answered worker goes back to the idle list; one still busy (the slower of a hedged pair, or a
        silent BMC) is waited for in the background until the deadline, then killed."""
        if not answered:
            threading.Thread(target=self._settle, args=(worker, deadline), daemon=True).start()
            return
        self._release(worker)

    def _settle(self, worker: _Worker, deadline: float) -> None:
        if worker.conn.poll(max(0.0, deadline - time.monotonic())):
            try:
                worker.conn.recv()  # the answer nobody waits for any more
                self._release(worker)
                return
            except (EOFError, OSError):
                pass
        self._discard(worker)
        self.slots.release()

    def _release(self, worker: _Worker) -> None:
        with self.lock:
            self.idle.append(worker)
        self.slots.release()

    def prepare(self, count: int) -> None:
        with self.lock:
            missing = max(0, count - len(self.all))
        for _ in range(missing):
            worker = _Worker(self.ctx)
            with self.lock:
                self.all.append(worker)
                self.idle.append(worker)

    def _discard(self, worker: _Worker) -> None:
        """A worker stuck on a silent BMC: killed, so its slot serves the next node."""
        with self.lock:
            if worker in self.all:
                self.all.remove(worker)
        worker.kill()

    def close(self) -> None:
        with self.lock:
            workers, self.all, self.idle = self.all, [], []
        for w in workers:
            try:
                w.conn.send(None)  # a worker holds no session between requests: it just ends
            except OSError:
                pass
        deadline = time.monotonic() + 1.0
        for w in workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.kill()
            w.conn.close()


_the_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _pool() -> _Pool:
    global _the_pool  # noqa: PLW0603 - one lazily set module-level singleton
    with _pool_lock:
        if _the_pool is None:
            _the_pool = _Pool()
            atexit.register(close_pool)
        return _the_pool


def prepare(jobs: int) -> None:
    """Fork the workers `jobs` IPMI requests start with: one for the lane and one for a hedged read (more are
    forked on demand, when slow BMCs open the lane to further requests)."""
    _pool().prepare(min(WORKERS, 2, 2 * jobs))


def close_pool() -> None:
    global _the_pool
    with _pool_lock:
        pool, _the_pool = _the_pool, None
    if pool is not None:
        pool.close()


class SolConsole:
    """An IPMI Serial-over-LAN session: `on_data` gets console bytes, `on_note` session events as text.

    Give SOL its own BMC user when a power `Command` to the same BMC may be open in this process:
    pyghmi shares one session per (bmc, user) and the two then hang (lab-recipes.md).
    """

    def __init__(self, record: BmcRecord, on_data: Callable[[bytes], None], on_note: Callable[[str], None]) -> None:
        self.record = record
        self.on_data = on_data
        self.on_note = on_note
        self.broken = threading.Event()
        try:
            self._console = ipmi_console.Console(
                bmc=record.host.strip("[]"),
                userid=record.user,
                password=record.password,
                iohandler=self._handle,
                port=record.port,
                force=True,
            )
        except pyghmi_exc.IpmiException as exc:
            raise _error(record, exc) from None

    def _handle(self, data: Any) -> None:
        if isinstance(data, bytes | bytearray):
            self.on_data(bytes(data))
        elif isinstance(data, str):
            self.on_data(data.encode("utf-8", "replace"))
        elif isinstance(data, dict):
            if "error" in data:
                self.broken.set()
                self.on_note(f"SOL error: {data['error']}")
            elif "info" in data:
                self.on_note(str(data["info"]))

    def send(self, data: bytes) -> None:
        self._console.send_data(data)

    def run(self, until: Callable[[], bool], step: float = 0.2) -> None:
        """Drive pyghmi's event loop until `until()` is true or the session breaks."""
        while not until() and not self.broken.is_set() and not self._console.broken:
            ipmi_console.Console.wait_for_rsp(step)
            time.sleep(0)  # let the input thread in

    def close(self) -> None:
        try:
            self._console.close()
        except Exception:  # closing a broken session raises inside pyghmi; nothing is left to release  # noqa: BLE001, S110
            pass
