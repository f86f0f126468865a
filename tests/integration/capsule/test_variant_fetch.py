"""A node whose group has a 1.x `vnfs.config` says hello to a real perceus-bus, is told its manifest variant,
and fetches it: the capsule's chunks with the group's kernel command line (capsule/variants.py)."""

from __future__ import annotations

import random
from pathlib import Path

from perceus.agent.bus import BusClient
from perceus.agent.capsule_fetch import fetch_capsule
from perceus.lab.bus import start_local_bus
from perceus.master.capsule.importer import Settings, import_capsule
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Hello, Welcome

NODE = "52:54:00:12:34:57"


def test_group_vnfs_config_reaches_the_node(paths: Paths, tmp_path: Path) -> None:
    root = tmp_path / "chroot"
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0-9-amd64").write_bytes(random.Random(3).randbytes(400_000))
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("x\n")
    import_capsule(paths, root, name="deb", settings=Settings(kernel_args="quiet"))
    base = current(Store(paths).existing("deb"))
    assert base is not None
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid=NODE, hostname="g0", group="gpu", vnfs="deb"))
    (paths.config_dir / "groups" / "gpu").mkdir(parents=True)
    (paths.config_dir / "groups" / "gpu" / "vnfs.config").write_text('KERNEL_ARGS="quiet nouveau.modeset=0"\n')
    bus = start_local_bus(paths)
    client = BusClient([bus.endpoint])
    try:
        reply = client.request(Hello(macs=(NODE,), state="init", stage=Stage.STAGE1, boot_id="b1"), timeout=10)
        assert isinstance(reply, Welcome), reply
        assert reply.capsule and reply.capsule != base.hash
        got = fetch_capsule(client, NODE, reply.capsule, tmp_path / "node")
    finally:
        client.close()
        bus.stop()
    assert got.cmdline == "quiet nouveau.modeset=0"
    assert got.kernel.read_bytes() == (root / "boot/vmlinuz-6.1.0-9-amd64").read_bytes()
    assert got.fetched_chunks == len(base.all_chunks())
    assert "capsule_variant_built" in bus.log_text()
