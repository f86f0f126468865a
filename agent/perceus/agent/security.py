"""Node-side trust: which master to believe, capsule signature checks, and secrets the master hands over.

The node trusts two public keys of its master (both 32 bytes, hex on the wire):
- the CurveZMQ key (`perceus.masterkey=` on the kernel command line, else `/etc/perceus/master.pub` baked
  into the stage-one image): the bus client refuses any master without the matching secret key;
- the Ed25519 signing key (`perceus.signkey=`, else `/etc/perceus/sign.pub`): a capsule manifest must carry
  a valid signature before a single chunk is fetched, so nothing unsigned is ever written or kexec'ed.
Stage one hands both to provisiond on the kexec command line.  Without keys (a lab whose master never
generated any) the agent talks plaintext and accepts unsigned capsules, saying so loudly; Perceus 1.x did
that always (1.x ref §13).  This module is the only importer of PyNaCl on the node (imported lazily: the bus
needs no libsodium binding, only signature checks do).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from perceus.agent.bus import CurveClient
from perceus.agent.cmdline import tokens
from perceus.errors import CapsuleError, ConfigError
from perceus.fsatomic import replace_with_new_file

log = structlog.get_logger("perceus.agent.security")

ETC = Path("/etc/perceus")
MASTER_KEY_FILE = "master.pub"
SIGN_KEY_FILE = "sign.pub"
CMDLINE_MASTER = "perceus.masterkey"
CMDLINE_SIGN = "perceus.signkey"
HOST_KEY_NAMES = frozenset(f"ssh_host_{kind}_key{ext}" for kind in ("rsa", "ecdsa", "ed25519") for ext in ("", ".pub"))
MAX_HOST_KEY = 16 << 10


@dataclass(frozen=True)
class Trust:
    """The master's public keys this node believes (None = not configured)."""

    bus_key: bytes | None = None
    sign_key: bytes | None = None
    source: str = ""


def _key(text: str, where: str) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise ConfigError(f"{where}: not a hex key", path="kernel command line") from None
    if len(raw) != 32:
        raise ConfigError(f"{where}: key is {len(raw)} bytes, expected 32", path="kernel command line")
    return raw


def _file_key(path: Path) -> bytes | None:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the master key: {exc}", path=str(path)) from None
    return _key(text, str(path))


def discover(cmdline: str, etc: Path = ETC) -> Trust:
    """Keys from the kernel command line, else from the files baked into the image."""
    values: dict[str, str] = {}
    for word in tokens(cmdline):
        if word == "--":
            break
        key, _, value = word.partition("=")
        if key in (CMDLINE_MASTER, CMDLINE_SIGN):
            values[key] = value
    bus = _key(values[CMDLINE_MASTER], CMDLINE_MASTER) if CMDLINE_MASTER in values else _file_key(etc / MASTER_KEY_FILE)
    sign = _key(values[CMDLINE_SIGN], CMDLINE_SIGN) if CMDLINE_SIGN in values else _file_key(etc / SIGN_KEY_FILE)
    source = "cmdline" if values else ("image" if bus or sign else "none")
    return Trust(bus, sign, source)


_current: Trust | None = None


def trust() -> Trust:
    """This boot's trust, read once from /proc/cmdline and /etc/perceus (see `use` for tests)."""
    global _current  # noqa: PLW0603 - one lazily set module-level singleton
    if _current is None:
        try:
            text = Path("/proc/cmdline").read_text(errors="replace")
        except OSError:
            text = ""
        _current = discover(text)
        log.info("master_trust", source=_current.source, curve=_current.bus_key is not None,
                 signed_capsules=_current.sign_key is not None)  # fmt: skip
    return _current


def use(value: Trust | None) -> None:
    """Replace the process's trust (tests and development runs); None re-reads it on next use."""
    global _current  # noqa: PLW0603 - one lazily set module-level singleton
    _current = value


def curve_hook(value: Trust | None = None, keypair: tuple[bytes, bytes] | None = None) -> CurveClient | None:
    """The BusClient/Subscriber `curve` hook for this boot, or None (plaintext) without a master key.

    `keypair`: provisiond's hand-over key from stage one (perceus.agent.handover), so the master sees the
    continuation of the boot it already trusts; None = a fresh keypair."""
    t = value if value is not None else trust()
    if t.bus_key is None:
        log.warning("bus_plaintext", reason="no master key (perceus.masterkey= or /etc/perceus/master.pub)")
        return None
    return CurveClient(t.bus_key, keypair)


def handover_words(value: Trust | None = None) -> list[str]:
    """`perceus.masterkey=… perceus.signkey=…` for the runtime kernel's command line at kexec."""
    t = value if value is not None else trust()
    words = []
    if t.bus_key is not None:
        words.append(f"{CMDLINE_MASTER}={t.bus_key.hex()}")
    if t.sign_key is not None:
        words.append(f"{CMDLINE_SIGN}={t.sign_key.hex()}")
    return words


def verify_manifest(data: bytes, signature: bytes, value: Trust | None = None) -> None:
    """Raise CapsuleError unless `signature` is the master's Ed25519 signature of the manifest bytes."""
    t = value if value is not None else trust()
    if t.sign_key is None:
        log.warning("capsule_unsigned_accepted", reason="no master signing key on this node")
        return
    if not signature:
        raise CapsuleError("REFUSED: the capsule manifest is not signed by the master; nothing will be booted")
    try:
        import nacl.exceptions
        import nacl.signing
    except ImportError:
        raise CapsuleError("REFUSED: cannot check capsule signatures (PyNaCl missing from this image)") from None
    try:
        nacl.signing.VerifyKey(t.sign_key).verify(data, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        raise CapsuleError(
            "REFUSED: the capsule manifest signature is INVALID (tampered capsule, or not this cluster's master);"
            " nothing will be booted"
        ) from None
    log.info("capsule_signature_ok")


def verify_voucher(payload: bytes, signature: bytes, value: Trust | None = None) -> bool:
    """True if `signature` is the master's Ed25519 signature of a swarm voucher (perceus.protocol.swarm).

    Without a signing key on this node (a keyless lab) every voucher passes, as unsigned capsules do."""
    t = value if value is not None else trust()
    if t.sign_key is None:
        return True
    try:
        import nacl.exceptions
        import nacl.signing
    except ImportError:
        return False
    try:
        nacl.signing.VerifyKey(t.sign_key).verify(payload, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def apply_host_keys(data: Mapping[str, Any], root: Path = Path("/")) -> list[str]:
    """Install the cluster SSH host keys of an `sshkeys`/`host_keys` action under `root`/etc/ssh.

    Only the six known file names are written (secret keys 0600, public 0644), each via a fresh temp file
    (O_CREAT|O_EXCL|O_NOFOLLOW, random name: a planted file or symlink is never written through) + rename.
    """
    files = data.get("files")
    if not isinstance(files, Mapping):
        raise CapsuleError("host_keys action without files")
    target = root / "etc" / "ssh"
    written: list[str] = []
    for name, text in files.items():
        if name not in HOST_KEY_NAMES or not isinstance(text, str) or len(text) > MAX_HOST_KEY:
            log.warning("host_key_ignored", name=str(name)[:64])
            continue
        target.mkdir(parents=True, exist_ok=True)
        replace_with_new_file(target / name, text.encode("ascii"), 0o644 if name.endswith(".pub") else 0o600)
        written.append(name)
    log.info("host_keys_installed", files=len(written))
    return written
