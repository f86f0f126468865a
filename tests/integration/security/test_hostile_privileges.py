"""`perceus-bus --user nobody` against a hostile daemon user: secrets still served (read before the drop),
the state dir stays root's, the chunk store is not world-readable, and root never writes through a symlink
the daemon user planted (issue 14, finding 5)."""

from __future__ import annotations

import os
import random
import stat
import time
from collections.abc import Callable
from pathlib import Path

from tests.integration.security.conftest import cli, set_conf
from tests.integration.security.hostile import (
    MAC,
    has_secrets,
    node_client,
    runtime_hello,
    stage1_hello,
    write_host_keys,
)

from perceus.agent.bus import new_keypair
from perceus.lab.bus import RunningBus, start_local_bus
from perceus.master.capsule.importer import import_capsule
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.config import Paths
from perceus.master.security.audit import audit_path
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.messages import Chunk, GetChunks, GetManifest, Manifest, Wait, Welcome


def _capsule(paths: Paths, tmp_path: Path, name: str, seed: int) -> None:
    rng = random.Random(seed)
    root = tmp_path / f"chroot-{name}"
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0-9-amd64").write_bytes(rng.randbytes(300_000))
    (root / "etc").mkdir()
    (root / "etc/data").write_bytes(rng.randbytes(1_000_000))
    import_capsule(paths, root, name=name)


def _uid(pid: int) -> set[str]:
    status = Path(f"/proc/{pid}/status").read_text()
    return set(next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")))


def test_privilege_drop_keeps_secrets_and_state_dir_root_owned(paths: Paths, tmp_path: Path) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody").pw_uid
    for parent in [paths.state_dir, *paths.state_dir.parents]:  # pytest's 0700 temp dirs: let nobody traverse
        if parent == Path("/"):
            break
        parent.mkdir(parents=True, exist_ok=True)
        parent.chmod(stat.S_IMODE(parent.stat().st_mode) | 0o111)
    paths.ensure()
    write_host_keys(paths)
    set_conf(paths, enrollment_policy="open")
    from perceus.master.security import keys as master_keys

    master_keys.ensure(paths)
    _capsule(paths, tmp_path, "deb", 1)
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid=MAC, hostname="n0000", vnfs="deb"))
    bus: RunningBus = start_local_bus(paths, "--user", "nobody", security="curve")
    try:
        deadline = time.monotonic() + 5
        while _uid(bus.proc.pid) != {str(nobody)} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _uid(bus.proc.pid) == {str(nobody)}
        assert os.stat(paths.state_dir).st_uid == 0  # never handed to the daemon user
        assert os.stat(paths.logs).st_uid == nobody and os.stat(paths.run).st_uid == nobody
        chunks = Store(paths).chunks
        assert stat.S_IMODE(os.stat(chunks).st_mode) & 0o007 == 0  # not world-readable
        public, secret = new_keypair()
        stage1 = node_client(bus)
        m = current(Store(paths).existing("deb"))
        assert m is not None
        try:
            first = stage1.request(stage1_hello(next_key=public.hex()))
            assert isinstance(first, Welcome) and first.capsule == m.hash
            manifest = stage1.request(GetManifest(node=MAC, capsule=m.hash))
            assert isinstance(manifest, Manifest) and manifest.hash == m.hash  # served as nobody
            rid = stage1.send(GetChunks(node=MAC, hashes=(m.all_chunks()[0].hash,)))
            chunk, frames = stage1.receive(rid, 10)
            assert isinstance(chunk, Chunk) and len(frames[0].bytes) == chunk.size
        finally:
            stage1.close()
        provisiond = node_client(bus, (public, secret))
        try:
            welcome = provisiond.request(runtime_hello())
            # Before issue 14 the keys were read lazily, after the drop: INTERNAL PermissionError here.
            assert isinstance(welcome, Welcome) and has_secrets(welcome)
        finally:
            provisiond.close()
    finally:
        bus.stop()


def test_root_never_writes_through_the_daemon_users_symlink(
    paths: Paths, tmp_path: Path, secure_bus: Callable[..., RunningBus]
) -> None:
    bus = secure_bus("open")
    c = node_client(bus)
    try:
        assert isinstance(c.request(stage1_hello()), Wait)
    finally:
        c.close()
    victim = tmp_path / "root-owned-file"
    victim.write_text("precious\n")
    audit = audit_path(paths)
    audit.unlink()
    audit.symlink_to(victim)  # what the daemon user, owner of log/, can do
    assert cli(paths, "node", "revoke", "n0000") == 0  # root's CLI writes an audit line
    assert victim.read_text() == "precious\n"
