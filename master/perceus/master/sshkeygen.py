"""OpenSSH key pairs generated in-process (cryptography): the cluster host keys and root's key for nodes.

The files are what `ssh-keygen -N ''` writes (OPENSSH PRIVATE KEY, `type base64 comment` public line), so
OpenSSH and dropbearconvert read them; no ssh-keygen subprocess, so `perceus init` works without openssh-client.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from perceus.errors import ConfigError

KINDS = ("rsa", "ecdsa", "ed25519")
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def generate(kind: str, comment: str) -> tuple[bytes, bytes]:
    """(private key file, public key line) of a new `kind` key (rsa 3072, ecdsa P-256, ed25519)."""
    key: PrivateKey
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    elif kind == "ecdsa":
        key = ec.generate_private_key(ec.SECP256R1())
    elif kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ConfigError(f"unknown SSH key type {kind!r} (use {', '.join(KINDS)})")
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public + f" {comment}\n".encode()


def write_pair(path: Path, kind: str, comment: str) -> None:
    """`path` (0600) and `path.pub` (0644), each written to a temp name first and renamed into place."""
    private, public = generate(kind, comment)
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, data, mode in ((path, private, 0o600), (path.with_name(path.name + ".pub"), public, 0o644)):
        tmp = target.with_name(f".{target.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
