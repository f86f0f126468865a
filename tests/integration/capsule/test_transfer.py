"""Capsule delivery over a real perceus-bus on 127.0.0.1: verified fetch, a damaged chunk on the master,
bytes that do not match (refused by the node), and a master restarted mid-transfer (resume)."""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

import pytest
import structlog

from perceus.agent.bus import BusClient
from perceus.agent.capsule_fetch import fetch_capsule
from perceus.errors import BusError, CapsuleError
from perceus.lab.bus import RunningBus, start_local_bus
from perceus.master.bus.control import poke
from perceus.master.bus.handlers import Dispatcher
from perceus.master.bus.server import BusServer
from perceus.master.capsule import cpio, manage
from perceus.master.capsule.importer import import_capsule
from perceus.master.capsule.index import CapsuleStoreIndex
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.capsule.serve import install
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.capsule import CapsuleManifest

NODE = "52:54:00:12:34:56"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def capsule(paths: Paths, tmp_path: Path) -> CapsuleManifest:
    """A ~24 MB capsule (12+ chunks) assigned to one enrolled node."""
    rng = random.Random(5)
    root = tmp_path / "chroot"
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0-9-amd64").write_bytes(rng.randbytes(2_500_000))
    for d in range(12):
        sub = root / f"usr/lib/d{d:02d}"
        sub.mkdir(parents=True)
        for i in range(20):
            (sub / f"f{i}").write_bytes(rng.randbytes(80_000) + bytes(20_000))
    import_capsule(paths, root, name="deb")
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid=NODE, hostname="n0000", vnfs="deb"))
    m = current(Store(paths).existing("deb"))
    assert m is not None and len(m.all_chunks()) >= 10
    return m


def expected_stream(paths: Paths) -> bytes:
    out = bytearray()
    for e in cpio.entries(paths.vnfs / "deb/rootfs"):
        out += e.header + (e.path.read_bytes() if e.path is not None else e.data) + bytes(cpio.pad4(e.size))
    return bytes(out)


def test_fetch_from_perceus_bus_verifies_and_unpacks(capsule: CapsuleManifest, bus: RunningBus, tmp_path: Path) -> None:
    assert CapsuleStoreIndex(bus.paths).manifest_hash("deb") == capsule.hash
    client = BusClient([bus.endpoint])
    seen: list[tuple[int, int]] = []
    try:
        got = fetch_capsule(client, NODE, capsule.hash, tmp_path / "node", progress=lambda d, t: seen.append((d, t)))
    finally:
        client.close()
    assert got.kernel.read_bytes() == (bus.paths.vnfs / "deb/rootfs/boot/vmlinuz-6.1.0-9-amd64").read_bytes()
    assert got.initrd == got.rootfs and got.rootfs.read_bytes() == expected_stream(bus.paths)
    assert got.fetched_chunks == len(capsule.all_chunks()) and got.manifest["name"] == "deb"
    assert got.cmdline == "ramdisk_blocksize=1024"
    assert seen[-1][0] == seen[-1][1]


def test_unknown_node_and_wrong_manifest_are_refused(capsule: CapsuleManifest, bus: RunningBus, tmp_path: Path) -> None:
    client = BusClient([bus.endpoint])
    try:
        with pytest.raises(BusError, match="UNKNOWN_NODE"):
            fetch_capsule(client, "52:54:00:00:00:99", capsule.hash, tmp_path / "a")
        with pytest.raises(BusError, match="NOT_FOUND"):
            fetch_capsule(client, NODE, "00" * 32, tmp_path / "b")
    finally:
        client.close()
    assert not (tmp_path / "b" / "rootfs.cpio").exists()


def test_damaged_chunk_on_master_is_refused_then_resumed_after_rebuild(
    capsule: CapsuleManifest, bus: RunningBus, tmp_path: Path
) -> None:
    victim = Store(bus.paths).chunk_path(capsule.rootfs.chunks[3].hash)
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    client = BusClient([bus.endpoint])
    try:
        with pytest.raises(CapsuleError, match=r"failed 2 times \(NOT_FOUND"):
            fetch_capsule(client, NODE, capsule.hash, tmp_path / "node", attempts=2)
        assert "chunk_damaged" in bus.log_text()
        done = len((tmp_path / "node/chunks.done").read_text().split()) - 1  # verified before giving up
        assert 0 < done < len(capsule.all_chunks())
        manage.rebuild(bus.paths, "deb")  # rewrites the damaged chunk file from the tree
        got = fetch_capsule(client, NODE, capsule.hash, tmp_path / "node")
    finally:
        client.close()
    assert got.reused_chunks == done and got.fetched_chunks == len(capsule.all_chunks()) - done
    assert got.rootfs.read_bytes() == expected_stream(bus.paths)


def test_bytes_that_do_not_match_are_never_used(capsule: CapsuleManifest, paths: Paths, tmp_path: Path) -> None:
    """A master that sends wrong bytes (here: a chunk file changed under a live mapping) is caught by the node."""
    with SQLiteStore(paths.database) as store:
        dispatcher = Dispatcher(store=store, paths=paths)
        install(dispatcher, paths)
        server = BusServer(dispatcher, bind="tcp://127.0.0.1:0")
        thread = threading.Thread(target=server.serve, kwargs={"install_signals": False}, daemon=True)
        thread.start()
        client = BusClient([server.endpoint])
        try:
            fetch_capsule(client, NODE, capsule.hash, tmp_path / "first")  # maps and checks every chunk once
            victim = Store(paths).chunk_path(capsule.rootfs.chunks[2].hash)
            victim.chmod(0o644)
            with open(victim, "r+b") as fh:  # same inode: the live MAP_SHARED mapping sees the change
                fh.seek(50)
                fh.write(b"\xff" * 8)
            with structlog.testing.capture_logs() as logs, pytest.raises(CapsuleError, match="hash mismatch"):
                fetch_capsule(client, NODE, capsule.hash, tmp_path / "second", attempts=3)
        finally:
            client.close()
            server.stop()
            thread.join(5)
            server.close()
    rejected = [e for e in logs if e["event"] == "chunk_rejected"]
    assert len(rejected) == 3 and rejected[0]["chunk"] == capsule.rootfs.chunks[2].hash[:16]


def test_master_restart_mid_transfer_resumes_with_missing_chunks_only(
    capsule: CapsuleManifest, paths: Paths, tmp_path: Path
) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    total = len(capsule.all_chunks())
    first = start_local_bus(paths, bind=endpoint)
    state: dict[str, RunningBus] = {"bus": first}

    def restart_halfway(done: int, size: int) -> None:
        if state["bus"] is first and done >= size // 2:
            first.stop()  # in-flight requests die with it
            state["bus"] = start_local_bus(paths, bind=endpoint)

    client = BusClient([endpoint])
    try:
        got = fetch_capsule(client, NODE, capsule.hash, tmp_path / "node", credit=4, timeout=2.0,
                            progress=restart_halfway)  # fmt: skip
        second = state["bus"]
        assert second is not first
        stats = poke(paths.control_socket, "capsule_stats")
        assert stats is not None
        # the new master served only the chunks still missing (counted as chunks: a fetch also asks for
        # swarm sources, whose replies are not chunks)
        assert 0 < stats["sent_chunks"] < total
        assert got.rootfs.read_bytes() == expected_stream(paths)
        # and a node that stops and comes back later fetches nothing it already has
        again = fetch_capsule(client, NODE, capsule.hash, tmp_path / "node")
        assert again.fetched_chunks == 0 and again.reused_chunks == total
    finally:
        client.close()
        state["bus"].stop()
        first.stop()
