"""provisiond back into stage one without firmware (issue 19): fetch and verify stage one, hand over, kexec.

The master sends `reprovision` over this node's own session (never the event channel): the stage-one kernel
and initramfs files (URL, size, SHA-256) and stage one's kernel command line, as boot.ipxe would give them.
provisiond downloads each file into RAM, refuses any that is longer or shorter than announced or hashes
differently, concatenates the initramfs files (each 4-aligned, as the kernel's unpacker needs), makes the
keypair the re-entered stage one will talk with and appends it as `/etc/perceus/session.key` (perceus.agent.
handover — the same hand-over stage one does for provisiond, the other way round), loads the kexec image,
then answers `reprovision_ack` with the new key's public half, and jumps.  A failure before the jump is
answered `ok=false` with the reason and provisiond carries on as before.

The command line keeps the master keys this provisiond trusts (`perceus.masterkey=` / `perceus.signkey=`),
never ones the message names: the re-entered stage one trusts exactly the master that provisioned it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import structlog

from perceus.agent import handover, security
from perceus.agent.bus import BusClient, new_keypair
from perceus.errors import BusError, CapsuleError, PerceusError
from perceus.protocol.messages import BootFile, Reprovision, ReprovisionAck

log = structlog.get_logger("perceus.agent.reprovision")

MAX_FILE = 1 << 30  # a stage-one file larger than this is refused before a byte is read
FETCH_TIMEOUT = 60.0  # per socket operation
_BLOCK = 1 << 20
_TRUST_WORDS = (security.CMDLINE_MASTER + "=", security.CMDLINE_SIGN + "=", "perceus.mode=")


@dataclass
class Prepared:
    """Stage one, ready to be loaded: its kernel, one initrd (the image files + the hand-over) and cmdline."""

    kernel: Path
    initrd: Path
    cmdline: str
    image_bytes: int  # the initrd's length before the appended hand-over segment
    next_key: str = ""  # hex public half of the re-entered stage one's key ("" without Curve)


class Jump(Protocol):
    """How the prepared stage one is entered: kexec on a node, something recorded in the fleet emulator."""

    def load(self, prepared: Prepared) -> None: ...

    def execute(self, prepared: Prepared) -> None: ...


class KexecJump:
    """The real thing: kexec_file_load, then reboot(LINUX_REBOOT_CMD_KEXEC) (perceus.agent.kexec)."""

    def load(self, prepared: Prepared) -> None:
        from perceus.agent import kexec

        kexec.load(prepared.kernel, prepared.initrd, prepared.cmdline)

    def execute(self, prepared: Prepared) -> None:
        from perceus.agent import kexec

        kexec.execute()


def fetch(item: BootFile, out: BinaryIO, *, timeout: float = FETCH_TIMEOUT) -> None:
    """Stream `item` onto the end of `out`, checking its exact size and SHA-256; CapsuleError on a mismatch
    (the caller then drops the whole file: nothing unverified is ever loaded)."""
    url = urllib.parse.urlsplit(item.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise CapsuleError(f"stage-one file {item.url[:120]!r}: only http:// and https:// URLs are fetched")
    if not 0 < item.size <= MAX_FILE or len(item.sha256) != 64:
        raise CapsuleError(f"stage-one file {item.url[:120]}: size {item.size} or digest not acceptable")
    conn_cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(url.hostname, url.port, timeout=timeout)
    digest = hashlib.sha256()
    got = 0
    try:
        conn.request("GET", url.path + (f"?{url.query}" if url.query else ""))
        resp = conn.getresponse()
        if resp.status != 200:
            raise CapsuleError(f"stage-one file {item.url}: HTTP {resp.status} {resp.reason}")
        while block := resp.read(min(_BLOCK, item.size - got + 1)):
            got += len(block)
            if got > item.size:
                raise CapsuleError(f"stage-one file {item.url}: longer than the {item.size} bytes announced")
            digest.update(block)
            out.write(block)
    except (OSError, http.client.HTTPException) as exc:
        raise CapsuleError(f"stage-one file {item.url}: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    if got != item.size:
        raise CapsuleError(f"stage-one file {item.url}: {got} bytes, {item.size} announced")
    if digest.hexdigest() != item.sha256.lower():
        raise CapsuleError(f"stage-one file {item.url}: SHA-256 {digest.hexdigest()[:16]}… is not the announced one")


def _new_file(path: Path) -> BinaryIO:
    path.unlink(missing_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600), "wb")


def stage1_cmdline(words: str) -> str:
    """The master's stage-one words with this node's trusted master keys instead of any named there."""
    kept = [w for w in words.split() if not w.startswith(_TRUST_WORDS)]
    return " ".join([*kept, *security.handover_words()])


def prepare(msg: Reprovision, work: Path, *, curve: bool = True) -> Prepared:
    """Fetch and verify every file, build the one initrd, add the re-entered stage one's key (with Curve)."""
    if not msg.initrds:
        raise CapsuleError("reprovision names no stage-one initramfs")
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    kernel, initrd = work / "vmlinuz", work / "stage1.initrd"
    try:
        with _new_file(kernel) as out:
            fetch(msg.kernel, out)
        with _new_file(initrd) as out:  # streamed one after the other: RAM holds each byte once
            for item in msg.initrds:
                out.write(b"\0" * (-out.tell() % 4))
                fetch(item, out)
    except BaseException:
        kernel.unlink(missing_ok=True)
        initrd.unlink(missing_ok=True)
        raise
    size = initrd.stat().st_size
    next_key = ""
    if curve:
        public, secret = new_keypair()
        handover.append_credential(initrd, public, secret)
        next_key = public.hex()
    return Prepared(kernel, initrd, stage1_cmdline(msg.cmdline), size, next_key)


def reenter(client: BusClient, msg: Reprovision, *, node: str, boot_id: str, work: Path, jump: Jump,
            curve: bool) -> None:  # fmt: skip
    """Answer `reprovision`: prepare and load stage one, acknowledge, jump (returns only when it failed)."""
    started = time.monotonic()
    log.info("reprovision_requested", job=msg.job, kernel=msg.kernel.url, initrds=len(msg.initrds))
    try:
        prepared = prepare(msg, work, curve=curve)
        jump.load(prepared)
    except (PerceusError, OSError) as exc:  # OSError: no room in RAM for stage one, say
        shutil.rmtree(work, ignore_errors=True)
        log.warning("reprovision_refused", job=msg.job, error=str(exc))
        _ack(client, ReprovisionAck(node=node, boot_id=boot_id, job=msg.job, ok=False, detail=str(exc)[:400]))
        return
    size = prepared.kernel.stat().st_size + prepared.initrd.stat().st_size
    log.info("reprovision_loaded", job=msg.job, seconds=round(time.monotonic() - started, 2), bytes=size,
             cmdline=prepared.cmdline)  # fmt: skip
    _ack(client, ReprovisionAck(node=node, boot_id=boot_id, job=msg.job, ok=True, detail="stage one loaded",
                                next_key=prepared.next_key))  # fmt: skip
    jump.execute(prepared)


def _ack(client: BusClient, ack: ReprovisionAck) -> None:
    try:
        client.request(ack, timeout=5.0)
    except BusError as exc:  # the master then sees no acknowledgement: it falls back to the node's BMC
        log.warning("reprovision_ack_failed", job=ack.job, code=exc.code, error=str(exc))
