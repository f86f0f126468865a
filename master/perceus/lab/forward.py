"""A loopback port on the host that leads to a port inside a lab namespace (the dashboard for a host browser).

perceus-web runs in the lab's namespace beside perceus-bus (as on a real master it shares the bus's network),
bound to the namespace's own 127.0.0.1; a browser on the host reaches it through this forwarder.  One thread
joins the namespace (setns is per thread on Linux) and only opens connections there; accepting and copying
bytes happen in the host's namespace.
"""

from __future__ import annotations

import ctypes
import os
import queue
import socket
import threading
from pathlib import Path

from perceus.lab.netns import LabError

CLONE_NEWNET = 0x40000000


def _setns(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise LabError(f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


class PortForward:
    """127.0.0.1:<port> here → ``host:port`` inside namespace ``netns``; ``close()`` stops it."""

    def __init__(self, netns: str, host: str, port: int, *, listen: str = "127.0.0.1") -> None:
        self.target = (host, port)
        self._requests: queue.Queue[queue.Queue[socket.socket | OSError] | None] = queue.Queue()
        self._stop = threading.Event()
        self._ready: queue.Queue[BaseException | None] = queue.Queue()
        self._dialer = threading.Thread(target=self._dial, args=(Path("/run/netns") / netns,), daemon=True)
        self._dialer.start()
        error = self._ready.get(timeout=10)
        if error is not None:
            raise LabError(f"cannot enter namespace {netns}: {error}")
        self._listener = socket.create_server((listen, 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://{listen}:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _dial(self, path: Path) -> None:
        try:
            _setns(path)
        except (OSError, LabError) as exc:
            self._ready.put(exc)
            return
        self._ready.put(None)
        while (reply := self._requests.get()) is not None:
            try:
                reply.put(socket.create_connection(self.target, timeout=10))
            except OSError as exc:
                reply.put(exc)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            reply: queue.Queue[socket.socket | OSError] = queue.Queue()
            self._requests.put(reply)
            upstream = reply.get()
            if isinstance(upstream, OSError):
                client.close()
                continue
            upstream.settimeout(None)
            _Pair(client, upstream).start()

    def close(self) -> None:
        self._stop.set()
        self._requests.put(None)
        self._listener.close()


class _Pair:
    """Both directions of one forwarded connection; the last direction to finish closes both sockets."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self.socks = (a, b)
        self._left = 2
        self._lock = threading.Lock()

    def start(self) -> None:
        a, b = self.socks
        for src, dst in ((a, b), (b, a)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in self.socks:  # one side ended: end the other direction too
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            for s in self.socks:
                s.close()
