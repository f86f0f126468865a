"""Signed capsules over real CurveZMQ: a good signature fetches, a tampered manifest signature, a foreign
signing key or a damaged chunk is refused before anything is unpacked or kexec'ed."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import nacl.signing
import pytest
from tests.integration.security.conftest import MAC, client

from perceus.agent import security as node_security
from perceus.agent.capsule_fetch import fetch_capsule
from perceus.errors import CapsuleError
from perceus.lab.bus import RunningBus
from perceus.master.capsule.importer import import_capsule
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.config import Paths
from perceus.master.security.signing import signature_path, verify_stored
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.capsule import CapsuleManifest
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Hello

TrustFn = Callable[[], node_security.Trust]


@pytest.fixture
def signed(paths: Paths, tmp_path: Path, secure_bus: Callable[..., RunningBus]) -> tuple[RunningBus, CapsuleManifest]:
    rng = random.Random(7)
    root = tmp_path / "chroot"
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0-9-amd64").write_bytes(rng.randbytes(600_000))
    (root / "etc").mkdir()
    (root / "etc/data").write_bytes(rng.randbytes(3_000_000))
    bus = secure_bus("open")  # generates the keys; packing after this signs at once
    import_capsule(paths, root, name="deb")
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid=MAC, hostname="n0000", vnfs="deb"))
    m = current(Store(paths).existing("deb"))
    assert m is not None
    assert verify_stored(paths, m.hash, m.data) is None  # signed when packed
    return bus, m


def _fetch(bus: RunningBus, m: CapsuleManifest, dest: Path) -> object:
    c = client(bus)
    try:
        c.request(Hello(macs=(MAC,), state="init", stage=Stage.STAGE1, boot_id="ab" * 16))
        return fetch_capsule(c, MAC, m.hash, dest, attempts=2)
    finally:
        c.close()


def test_signed_capsule_is_fetched(
    signed: tuple[RunningBus, CapsuleManifest], trust_master: TrustFn, tmp_path: Path
) -> None:
    bus, m = signed
    trust_master()
    got = _fetch(bus, m, tmp_path / "node")
    assert getattr(got, "manifest_hash", "") == m.hash


def test_tampered_signature_is_refused_before_any_chunk(
    signed: tuple[RunningBus, CapsuleManifest],
    trust_master: TrustFn,
    tmp_path: Path,
) -> None:
    bus, m = signed
    trust_master()
    sig = signature_path(bus.paths, m.hash)
    data = bytearray(sig.read_bytes())
    data[5] ^= 0x01
    sig.chmod(0o644)
    sig.write_bytes(bytes(data))
    assert verify_stored(bus.paths, m.hash, m.data) is not None  # `perceus vnfs verify` sees it too
    dest = tmp_path / "node"
    with pytest.raises(CapsuleError, match="signature is INVALID"):
        _fetch(bus, m, dest)
    assert not (dest / "kernel").exists() and not (dest / "rootfs.cpio").exists() and not (dest / "manifest").exists()


def test_unsigned_manifest_is_refused(
    signed: tuple[RunningBus, CapsuleManifest], trust_master: TrustFn, tmp_path: Path
) -> None:
    bus, m = signed
    trust_master()
    signature_path(bus.paths, m.hash).unlink()
    with pytest.raises(CapsuleError, match="not signed"):
        _fetch(bus, m, tmp_path / "node")


def test_capsule_signed_by_another_master_is_refused(
    signed: tuple[RunningBus, CapsuleManifest],
    trust_master: TrustFn,
    tmp_path: Path,
) -> None:
    bus, m = signed
    real = trust_master()
    other = bytes(nacl.signing.SigningKey.generate().verify_key)
    node_security.use(node_security.Trust(real.bus_key, other, "test"))
    with pytest.raises(CapsuleError, match="INVALID"):
        _fetch(bus, m, tmp_path / "node")


def test_damaged_chunk_is_never_unpacked(
    signed: tuple[RunningBus, CapsuleManifest], trust_master: TrustFn, tmp_path: Path
) -> None:
    bus, m = signed
    trust_master()
    victim = Store(bus.paths).chunk_path(m.rootfs.chunks[0].hash)
    victim.chmod(0o644)
    raw = bytearray(victim.read_bytes())
    raw[50] ^= 0xFF
    victim.write_bytes(bytes(raw))
    dest = tmp_path / "node"
    with pytest.raises(CapsuleError, match="failed 2 times"):
        _fetch(bus, m, dest)
    done = (dest / "chunks.done").read_text().split()[1:]
    assert m.rootfs.chunks[0].hash not in done
