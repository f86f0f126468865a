"""perceus-bus feature `http_boot`: the TFTP root over HTTP, read-only, so iPXE fetches stage one fast.

Firmware PXE still gets the iPXE binary (and iPXE its ~1 KB boot.ipxe) over TFTP from dnsmasq; boot.ipxe
then loads the stage-one kernel and initramfs (~31 MB) from here: one TCP stream instead of TFTP's
lock-step 1 KB blocks (lab-recipes.md: 30 MB in 0.4-0.8 s over HTTP against 2-4 s over dnsmasq TFTP, and
no per-block time-outs in a mass reboot).  Perceus 1.x served everything over TFTP.

* bound to the provisioning address only (`master network device`'s IPv4 address), port `boot http port`
  (default 9989; 0 = off, boot.ipxe then uses TFTP alone); only with `manage dnsmasq = yes`;
* GET and HEAD of regular files under <state>/tftp, no listings, no dot-files, nothing outside the root;
* one `bytes=` range per request (206 / 416), Content-Length always (iPXE refuses a short body);
* a thread per connection (`socket.sendfile`: the kernel copies, the GIL is released), so the bus loop never
  waits on a download.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import structlog

from perceus.errors import ConfigError, PerceusError
from perceus.master.daemon import Daemon
from perceus.master.netmgr import settings as netsettings

log = structlog.get_logger("perceus.netmgr")

REQUEST_TIMEOUT = 30.0  # a client silent this long is dropped (its thread ends)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiableError(ValueError):
    """A `Range:` header that no byte of the file satisfies (answered 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte (inclusive) that `Range: header` asks for, or None for the whole file.

    Malformed headers and multi-range requests are ignored (the whole file, as RFC 9110 §14.2 allows).
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first_s, last_s = match.groups()
    if not first_s and not last_s:
        return None
    if not first_s:  # suffix range: the last N bytes
        length = int(last_s)
        if length == 0 or size == 0:
            raise RangeNotSatisfiableError(header)
        return max(0, size - length), size - 1
    first = int(first_s)
    if last_s and int(last_s) < first:
        return None  # syntactically invalid: ignore
    if first >= size:
        raise RangeNotSatisfiableError(header)
    return first, min(int(last_s), size - 1) if last_s else size - 1


def resolve(root: Path, target: str) -> Path | None:
    """The regular file under `root` that request target `target` names, or None (answered 404)."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(target).path)
    if "\0" in path or not path.startswith("/"):
        return None
    parts = path[1:].split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None  # no listings, no dot-files (atomic writes' temporaries), no way up
    base = root.resolve()
    candidate = base.joinpath(*parts).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


class _Handler(BaseHTTPRequestHandler):
    server: BootHttpServer
    protocol_version = "HTTP/1.1"  # keep-alive: iPXE fetches kernel and initramfs on one connection
    timeout = REQUEST_TIMEOUT
    server_version = "perceus-bus"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _refuse(self, status: HTTPStatus, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self._note(status, 0)

    def _serve(self, *, body: bool) -> None:
        self._started = time.perf_counter()
        path = resolve(self.server.root, self.path)
        if path is None:
            self._refuse(HTTPStatus.NOT_FOUND)
            return
        try:
            f = path.open("rb")
        except OSError:  # replaced or removed since resolve(): as if it never was
            self._refuse(HTTPStatus.NOT_FOUND)
            return
        with f:
            stat = os.fstat(f.fileno())
            size = stat.st_size
            try:
                span = byte_range(self.headers.get("Range"), size)
            except RangeNotSatisfiableError:
                self._refuse(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, {"Content-Range": f"bytes */{size}"})
                return
            first, last = span if span is not None else (0, size - 1)
            count = last - first + 1
            self.send_response(HTTPStatus.PARTIAL_CONTENT if span is not None else HTTPStatus.OK)
            self.send_header("Content-Type", "text/plain" if path.suffix == ".ipxe" else "application/octet-stream")
            self.send_header("Content-Length", str(count))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
            if span is not None:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            sent = self.connection.sendfile(f, offset=first, count=count) if body and count > 0 else 0
        self.server.sent_bytes += sent
        self._note(HTTPStatus.PARTIAL_CONTENT if span is not None else HTTPStatus.OK, sent)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Bad request lines, unknown methods (PUT, POST …): a bodiless reply and one log line.
        self.close_connection = True
        self._started = getattr(self, "_started", time.perf_counter())
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self._note(HTTPStatus(code), 0)

    def _note(self, status: HTTPStatus, sent: int) -> None:
        log.info(
            "boot_file_served",
            method=getattr(self, "command", None),
            path=getattr(self, "path", None),
            status=int(status),
            bytes=sent,
            range=self.headers.get("Range") if getattr(self, "headers", None) else None,
            peer=self.client_address[0],
            duration_ms=round((time.perf_counter() - self._started) * 1000, 1),
        )

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's stderr lines: `_note` logs each request once, through structlog."""


class BootHttpServer(ThreadingHTTPServer):
    """The HTTP server on (address, port), serving `root`; `start()` runs it on a thread."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # a boot storm connects at once

    def __init__(self, root: Path, address: tuple[str, int]) -> None:
        self.root = root
        self.sent_bytes = 0
        super().__init__(address, _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-download (node reset, time-out): one warning line, not a traceback on stderr."""
        exc = sys.exc_info()[1]
        log.warning("boot_file_aborted", peer=client_address[0], reason=f"{type(exc).__name__}: {exc}")

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="http-boot", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(5)
            self._thread = None
        self.server_close()


def start(root: Path, settings: netsettings.NetSettings) -> BootHttpServer | None:
    """Serve `root` on the provisioning address; None when `boot http port = 0`."""
    if not settings.http_port:
        return None
    address = (str(settings.address.ip), settings.http_port)
    try:
        server = BootHttpServer(root, address)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {address[0]}:{address[1]} for HTTP boot: {exc.strerror}") from None
    server.start()
    return server


def install(daemon: Daemon) -> None:
    """The perceus-bus feature entry point (features.py)."""
    if not daemon.config.manage_dnsmasq:
        log.info("http_boot_off", reason="manage dnsmasq = no")
        return
    try:
        server = start(daemon.paths.tftp, netsettings.from_system(daemon.config))
    except PerceusError as exc:
        # Like dnsmasq's: logged, the bus goes on; boot.ipxe falls back to TFTP when HTTP is refused.
        log.warning("http_boot_not_started", reason=str(exc))
        return
    if server is None:
        log.info("http_boot_off", reason="boot http port = 0")
        return
    daemon.on_close(server.close)
    daemon.server.control_handlers["http_boot_stats"] = lambda _request: {
        "ok": True, "url": server.url, "sent_bytes": server.sent_bytes,
    }  # fmt: skip
    log.info("http_boot_listening", url=server.url, root=str(daemon.paths.tftp))
