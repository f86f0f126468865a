"""The Perceus 1.x wire format on TCP 987 (1.x ref §5.2): one request line in, marker-framed shell script out.

Better than the original: requests are framed on newline (1.x treated one read() burst as the request),
bounded in size, and a trailing NUL (the C provisiond sends one) or CR is tolerated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from perceus.errors import ProtocolError

BANNER = b"# PERCEUSD START\n"
SCRIPT_START = b"# NODESCRIPT START\n"
SCRIPT_END = b"# NODESCRIPT END\n"
TRAILER = b"# PROVISIOND END\n"
MAX_REQUEST = 4096
_WORD = re.compile(r"^\w+$")


@dataclass(frozen=True)
class Request:
    """A parsed request line: `<command> [key=value …]`."""

    command: str
    args: dict[str, str] = field(default_factory=dict)
    words: tuple[str, ...] = ()


def split_line(buffer: bytes) -> bytes | None:
    """The request line if `buffer` holds a complete one, else None (ProtocolError when it is too long)."""
    end = buffer.find(b"\n")
    if end < 0:
        if len(buffer) > MAX_REQUEST:
            raise ProtocolError(f"request longer than {MAX_REQUEST} bytes without a newline", code="TOO_LARGE")
        return None
    if end > MAX_REQUEST:
        raise ProtocolError(f"request longer than {MAX_REQUEST} bytes", code="TOO_LARGE")
    return buffer[:end]


def parse(line: bytes) -> Request:
    """Parse one request line; the command must be a `\\w+` word, as in 1.x."""
    text = line.replace(b"\0", b"").decode("utf-8", "replace").strip()
    words = text.split()
    if not words:
        raise ProtocolError("empty request")
    command = words[0]
    if not _WORD.match(command):
        raise ProtocolError(f"command {command[:40]!r} is not a word")
    args: dict[str, str] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if sep:
            args.setdefault(key, value)  # 1.x kept the first value of a key as well
    return Request(command=command, args=args, words=tuple(words[1:]))


def script_reply(bodies: Iterable[str]) -> bytes:
    """The reply after the banner: scripts framed by the markers, then the trailer."""
    parts = [SCRIPT_START]
    for body in bodies:
        data = body.encode("utf-8", "replace")
        parts.append(data if data.endswith(b"\n") or not data else data + b"\n")
    parts += [SCRIPT_END, TRAILER]
    return b"".join(parts)


def shell_message(text: str, *, status: int = 1) -> str:
    """A node-side script that prints `text` to stderr and exits (a refusal the node can read)."""
    quoted = text.replace("'", "'\\''")
    return f"echo '{quoted}' >&2\nexit {status}\n"
