"""Ed25519 signatures over capsule manifests: made when a capsule is packed, checked by stage one before it
fetches a single chunk, and by `perceus vnfs verify`.

The signature covers the exact manifest bytes whose BLAKE3 is the manifest hash (the name a `welcome`
carries), so one check binds the kernel, initrd and every chunk hash.  It is stored detached next to the
content-addressed manifest (`<state>/manifests/<hash>.sig`, 64 raw bytes), where the chunk server already
looks for it.  Perceus 1.x fetched images unverified over NFS or plain HTTP (1.x ref §13).
"""

from __future__ import annotations

from pathlib import Path

import nacl.exceptions
import nacl.signing
import structlog

from perceus.master.config import Paths
from perceus.master.fsutil import atomic_write
from perceus.master.security import keys as master_keys
from perceus.protocol.capsule import digest, is_hash

log = structlog.get_logger("perceus.security")

SIGNATURE_SIZE = 64


def signature_path(paths: Paths, manifest_hash: str) -> Path:
    if not is_hash(manifest_hash):
        raise ValueError(f"not a manifest hash: {manifest_hash!r}")
    return paths.state_dir / "manifests" / f"{manifest_hash}.sig"


def sign_bytes(signer: nacl.signing.SigningKey, data: bytes) -> bytes:
    return bytes(signer.sign(data).signature)


def sign_manifest(paths: Paths, manifest_hash: str, data: bytes, signer: nacl.signing.SigningKey | None = None) -> bool:
    """Write the detached signature of a stored manifest; False (and a warning) when the master has no keys."""
    if digest(data) != manifest_hash:
        raise ValueError("manifest bytes do not match their hash")
    if signer is None:
        loaded = master_keys.load(paths)
        if loaded is None:
            log.warning("manifest_unsigned", manifest=manifest_hash[:16], reason="no master keys yet")
            return False
        signer = loaded.signer()
    atomic_write(signature_path(paths, manifest_hash), sign_bytes(signer, data), mode=0o444)
    return True


def check(public: bytes, data: bytes, signature: bytes) -> str | None:
    """None when `signature` is the master's over `data`; else what is wrong, in words."""
    if not signature:
        return "the manifest is not signed"
    if len(signature) != SIGNATURE_SIZE:
        return f"the signature is {len(signature)} bytes, not {SIGNATURE_SIZE}"
    try:
        nacl.signing.VerifyKey(public).verify(data, signature)
    except nacl.exceptions.BadSignatureError:
        return "the signature does not match the master's signing key"
    return None


def verify_stored(paths: Paths, manifest_hash: str, data: bytes) -> str | None:
    """`perceus vnfs verify`'s signature check of a stored manifest; None = signed by this master's key.

    A master without keys (never started perceus-bus nor ran `perceus configure keys`) expects no
    signatures: its nodes have no key to check them with either.
    """
    loaded = master_keys.load(paths)
    if loaded is None:
        return None
    try:
        signature = signature_path(paths, manifest_hash).read_bytes()
    except FileNotFoundError:
        return "the manifest is not signed (run `perceus configure keys --sign`)"
    return check(loaded.sign_public, data, signature)


def sign_all(paths: Paths, *, force: bool = False) -> int:
    """Sign every stored manifest that has no (valid) signature yet; returns how many were signed."""
    loaded = master_keys.load(paths)
    if loaded is None:
        return 0
    signer = loaded.signer()
    signed = 0
    folder = paths.state_dir / "manifests"
    if not folder.is_dir():
        return 0
    for path in sorted(folder.iterdir()):
        if not is_hash(path.name):
            continue
        data = path.read_bytes()
        if digest(data) != path.name:
            log.warning("manifest_damaged", manifest=path.name[:16])
            continue
        sig = path.with_name(path.name + ".sig")
        if not force and sig.exists() and check(loaded.sign_public, data, sig.read_bytes()) is None:
            continue
        atomic_write(sig, sign_bytes(signer, data), mode=0o444)
        signed += 1
    if signed:
        log.info("manifests_signed", count=signed)
    return signed
