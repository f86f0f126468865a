"""The per-boot session credential stage one hands to provisiond through kexec — inside the initramfs.

Stage one generates provisiond's CurveZMQ keypair before its first `hello` and announces the public half
(`Hello.next_key`) over its own session; at kexec it appends a tiny uncompressed newc archive holding
`/etc/perceus/session.key` (0600, root) to the initrd the runtime kernel unpacks into its root filesystem.
provisiond then talks with that keypair, and the master accepts it as the continuation of this boot
(master/perceus/master/security/gate.py).  Not on the kernel command line: /proc/cmdline is world-readable.

The kernel unpacks concatenated initramfs segments (compressed or not); the original image is zero-padded to a
4-byte boundary first, as the unpacker requires for an uncompressed segment.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

log = structlog.get_logger("perceus.agent.handover")

SESSION_KEY = Path("etc/perceus/session.key")  # relative to the runtime root
_TRAILER = "TRAILER!!!"


def _entry(name: str, mode: int, data: bytes, ino: int) -> bytes:
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
    header = "070701" + "".join(f"{v:08X}" for v in fields)
    out = header.encode("ascii") + name.encode() + b"\0"
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def archive(files: dict[str, tuple[int, bytes]]) -> bytes:
    """A newc archive of regular files {path: (mode bits, bytes)} plus their parent directories (0755)."""
    dirs: list[str] = []
    for path in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.append(d)
    out = b""
    ino = 1
    for d in dirs:
        out += _entry(d, 0o040755, b"", ino)
        ino += 1
    for path, (mode, data) in files.items():
        out += _entry(path, 0o100000 | (mode & 0o7777), data, ino)
        ino += 1
    out += _entry(_TRAILER, 0, b"", 0)
    return out + b"\0" * (-len(out) % 512)


def credential_text(public: bytes, secret: bytes) -> bytes:
    """The session.key file: the public and the secret half, 32 bytes each, hex, one per line."""
    if len(public) != 32 or len(secret) != 32:
        raise ValueError("a CurveZMQ key is 32 bytes")
    return f"{public.hex()}\n{secret.hex()}\n".encode("ascii")


def parse_credential(text: str) -> tuple[bytes, bytes] | None:
    """(public, secret) from a session.key file, or None when it is not one."""
    lines = text.split()
    if len(lines) != 2:
        return None
    try:
        public, secret = bytes.fromhex(lines[0]), bytes.fromhex(lines[1])
    except ValueError:
        return None
    return (public, secret) if len(public) == 32 and len(secret) == 32 else None


def append_credential(initrd: Path, public: bytes, secret: bytes) -> None:
    """Append the session credential to the runtime initrd (a file in stage one's RAM, owned by root)."""
    segment = archive({str(SESSION_KEY): (0o600, credential_text(public, secret))})
    fd = os.open(initrd, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        os.write(fd, b"\0" * (-size % 4) + segment)
    finally:
        os.close(fd)
    log.info("session_handover_written", initrd=str(initrd), bytes=len(segment))


def read_credential(root: Path = Path("/")) -> tuple[bytes, bytes] | None:
    """provisiond: the keypair stage one handed over, if this boot has one (stateless capsules)."""
    path = root / SESSION_KEY
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("session_handover_unreadable", path=str(path), error=exc.strerror)
        return None
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as fh:
        return parse_credential(fh.read(512))
