"""The master's long-term keys under `<config>/keys/`: the CurveZMQ pair (bus) and the Ed25519 pair (capsules).

Files hold hex (64 characters), never z85: the public halves travel on kernel command lines and in iPXE
scripts, where z85's `$`, `{`, `}` would be expanded.  Secret files are 0600; public ones 0644 (they are
meant to be copied into stage-one images).  Perceus 1.x had no keys at all (1.x ref §13).

Two keys rather than one Ed25519 key converted to X25519: key separation, and the node needs no libsodium
binding just to open the bus.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nacl.signing
import zmq
from zmq.utils import z85

from perceus.errors import ConfigError
from perceus.master.config import Paths
from perceus.master.fsutil import atomic_write

BUS_SECRET = "bus.key"  # noqa: S105 - a file name or a passwd line, not a password
BUS_PUBLIC = "bus.pub"
SIGN_SECRET = "sign.key"  # noqa: S105 - a file name or a passwd line, not a password
SIGN_PUBLIC = "sign.pub"


def keys_dir(paths: Paths) -> Path:
    return paths.config_dir / "keys"


@dataclass(frozen=True)
class MasterKeys:
    """Both key pairs as raw 32-byte values."""

    bus_secret: bytes
    bus_public: bytes
    sign_seed: bytes
    sign_public: bytes

    @property
    def bus_secret_z85(self) -> bytes:
        return z85.encode(self.bus_secret)

    @property
    def bus_public_z85(self) -> bytes:
        return z85.encode(self.bus_public)

    def signer(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.sign_seed)


def _read_hex(path: Path) -> bytes | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read key: {exc}", path=str(path)) from None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ConfigError("not a hex-encoded key", path=str(path)) from None
    if len(raw) != 32:
        raise ConfigError(f"key is {len(raw)} bytes, expected 32", path=str(path))
    return raw


def _curve_public(secret: bytes) -> bytes:
    return z85.decode(zmq.curve_public(z85.encode(secret)))


def _sign_public(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def load(paths: Paths) -> MasterKeys | None:
    """The master's keys, or None when they were never generated; public halves are derived, not trusted."""
    d = keys_dir(paths)
    bus = _read_hex(d / BUS_SECRET)
    seed = _read_hex(d / SIGN_SECRET)
    if bus is None or seed is None:
        return None
    return MasterKeys(bus, _curve_public(bus), seed, _sign_public(seed))


def ensure(paths: Paths, *, rotate: bool = False) -> tuple[MasterKeys, bool]:
    """Load the keys, generating whatever is missing (or everything with `rotate`); returns (keys, created)."""
    d = keys_dir(paths)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {d}: {exc.strerror}") from None
    bus = None if rotate else _read_hex(d / BUS_SECRET)
    seed = None if rotate else _read_hex(d / SIGN_SECRET)
    created = bus is None or seed is None
    if bus is None:
        _, secret = zmq.curve_keypair()
        bus = z85.decode(secret)
        atomic_write(d / BUS_SECRET, bus.hex().encode() + b"\n", mode=0o600)
    if seed is None:
        seed = os.urandom(32)
        atomic_write(d / SIGN_SECRET, seed.hex().encode() + b"\n", mode=0o600)
    keys = MasterKeys(bus, _curve_public(bus), seed, _sign_public(seed))
    # Public halves are rewritten whenever they differ: a half-finished earlier run cannot leave a wrong one.
    for name, value in ((BUS_PUBLIC, keys.bus_public), (SIGN_PUBLIC, keys.sign_public)):
        if _read_hex_quiet(d / name) != value:
            atomic_write(d / name, value.hex().encode() + b"\n", mode=0o644)
    return keys, created


def _read_hex_quiet(path: Path) -> bytes | None:
    try:
        return _read_hex(path)
    except ConfigError:
        return None
