"""`get_sources` on a real perceus-bus (Curve, signed) on 127.0.0.1: assignment, access, vouchers, counters."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from perceus.agent import security
from perceus.agent.bus import BusClient, CurveClient
from perceus.errors import BusError
from perceus.lab.bus import start_local_bus
from perceus.master.capsule.importer import import_capsule
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.capsule.swarm_bus import read_state
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.capsule import CapsuleManifest
from perceus.protocol.enums import Stage
from perceus.protocol.messages import GetSources, Hello, Sources, Welcome
from perceus.protocol.swarm import token_payload

A, B, OTHER = "52:54:00:21:00:01", "52:54:00:21:00:02", "52:54:00:21:00:03"


def _capsule(paths: Paths, tmp_path: Path) -> CapsuleManifest:
    rng = random.Random(21)
    root = tmp_path / "chroot"
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0-9-amd64").write_bytes(rng.randbytes(1_000_000))
    (root / "usr").mkdir()
    for i in range(6):
        (root / f"usr/blob{i}").write_bytes(rng.randbytes(1_500_000))
    import_capsule(paths, root, name="deb")
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("other\n")
    import_capsule(paths, root, name="other")  # same kernel and blobs, another manifest
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid=A, hostname="n0001", vnfs="deb", attrs={"rack": "r1"}))
        store.add(NewNode(nodeid=B, hostname="n0002", vnfs="deb", attrs={"rack": "r1"}))
        store.add(NewNode(nodeid=OTHER, hostname="n0003", vnfs="other"))
    m = current(Store(paths).existing("deb"))
    assert m is not None
    return m


def _client(paths: Paths, endpoint: str) -> BusClient:
    key = bytes.fromhex((paths.config_dir / "keys/bus.pub").read_text().strip())
    return BusClient([endpoint], curve=CurveClient(key))


def test_sources_vouchers_access_and_counters(paths: Paths, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = _capsule(paths, tmp_path)
    n = len(m.all_chunks())
    bus = start_local_bus(paths, security="curve")
    a, b, other = (_client(paths, bus.endpoint) for _ in range(3))
    try:
        for client, mac in ((a, A), (b, B), (other, OTHER)):  # each boot's key is bound by its hello
            hello = Hello(macs=(mac,), state="init", stage=Stage.STAGE1, boot_id=mac)
            assert isinstance(client.request(hello), Welcome)
        first = a.request(GetSources(node=A, manifest=m.hash, want=tuple(range(n)), credit=3, port=40001))
        assert isinstance(first, Sources)
        # nobody holds anything yet: from the master, at most two at once to one node (capsule/swarm.py rule 4)
        assert [s for _, s in first.assign] == [-1, -1] and not first.peers
        # B wants the same three: A is getting them from the master, so B waits (the master sends each once)
        wait = b.request(GetSources(node=B, manifest=m.hash, want=tuple(i for i, _ in first.assign), credit=3))
        assert isinstance(wait, Sources) and not wait.assign and wait.retry_after > 0
        a.request(GetSources(node=A, manifest=m.hash, have=tuple(i for i, _ in first.assign), port=40001))
        got = b.request(GetSources(node=B, manifest=m.hash, want=(first.assign[0][0],), credit=1))
        assert isinstance(got, Sources) and got.assign == ((first.assign[0][0], 0),)
        peer = got.peers[0]
        assert peer.node == A and peer.endpoint == "tcp://127.0.0.1:40001" and len(bytes.fromhex(peer.key)) == 32
        # The voucher is the master's signature over (manifest, B, issued), checked with the node's trust
        trust = security.Trust(sign_key=bytes.fromhex((paths.config_dir / "keys/sign.pub").read_text().strip()))
        b_key = b._curve.public_key.hex() if isinstance(b._curve, CurveClient) else ""
        assert security.verify_voucher(token_payload(m.hash, B, b_key, got.issued), got.token, trust)
        assert not security.verify_voucher(token_payload(m.hash, OTHER, b_key, got.issued), got.token, trust)
        # A node assigned another capsule takes no part
        with pytest.raises(BusError, match="NOT_FOUND"):
            other.request(GetSources(node=OTHER, manifest=m.hash, want=(0,)))
        # B reports A as bad, then holds everything (from A and the master): counters.  Nothing listens at A's
        # endpoint, so the master's own check of the report gets no answer: A is skipped, not excluded
        # (exclusion after a failed check: tests/integration/security/test_hostile_swarm.py)
        b.request(GetSources(node=B, manifest=m.hash, have=tuple(range(n)), bad=(A,)))
    finally:
        for c in (a, b, other):
            c.close()
        bus.stop()
    state = read_state(paths)["capsules"][m.hash]
    assert state["excluded"] == [] and state["complete"] == 1
    assert state["racks"]["r1"]["peers"] == m.all_chunks()[first.assign[0][0]].size
    assert main(["--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir), "vnfs", "status",
                 "deb"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "r1" in out and "excluded peer" not in out
