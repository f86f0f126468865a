"""Per-node and per-group `vnfs.config` (1.x: global, then node, then group): the node's welcome names a signed
manifest variant with the overridden config and the capsule's chunks; other nodes get the capsule as is."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs
from tests.unit.capsule.conftest import make_tree
from tests.unit.cli.clirun import run

from perceus.master.bus.handlers import Dispatcher, Incoming
from perceus.master.capsule.index import CapsuleStoreIndex
from perceus.master.config import Paths
from perceus.master.security import keys as master_keys
from perceus.master.security.signing import signature_path
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.capsule import decode_manifest, kernel_cmdline
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Hello, Welcome

MACS = {"n0000": "52:54:00:00:00:01", "n0001": "52:54:00:00:00:02", "g0": "52:54:00:00:00:03"}


@pytest.fixture
def cluster(paths: Paths, tmp_path: Path) -> Paths:
    master_keys.ensure(paths)
    assert run(paths, "vnfs", "import", str(make_tree(tmp_path / "chroot", files=5)), "--name", "deb",
               "--kernel-args", "quiet").code == 0  # fmt: skip
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid=MACS["n0000"], hostname="n0000", group="cluster", vnfs="deb"))
        store.add(NewNode(nodeid=MACS["n0001"], hostname="n0001", group="cluster", vnfs="deb"))
        store.add(NewNode(nodeid=MACS["g0"], hostname="g0", group="gpu", vnfs="deb"))
    return paths


def welcome(paths: Paths, name: str) -> Welcome:
    with SQLiteStore(paths.database) as store:
        disp = Dispatcher(store=store, paths=paths, capsules=CapsuleStoreIndex(paths), clock=lambda: 1000.0)
        hello = Hello(rid=1, macs=(MACS[name],), state="init", stage=Stage.STAGE1, boot_id="b")
        (out,) = disp.handle_batch([Incoming(b"id", hello, "10.0.0.9")])
    assert isinstance(out.msg, Welcome), out.msg
    return out.msg


def cmdline_of(paths: Paths, h: str) -> str:
    data = (paths.state_dir / "manifests" / h).read_bytes()
    assert signature_path(paths, h).is_file()  # signed like the capsule's own manifest
    return kernel_cmdline(decode_manifest(data, h), current="")


def override(paths: Paths, scope: str, name: str, text: str) -> None:
    (paths.config_dir / scope / name).mkdir(parents=True, exist_ok=True)
    (paths.config_dir / scope / name / "vnfs.config").write_text(text)


def test_node_and_group_files_give_variants_group_wins(cluster: Paths) -> None:
    base = welcome(cluster, "n0001").capsule
    override(cluster, "nodes", "n0000", 'KERNEL_ARGS="quiet nomodeset"\nCONSOLE="ttyS1,9600"\n')
    override(cluster, "groups", "gpu", 'KEXEC_ARGS="--append=nouveau.modeset=0"\n')
    override(cluster, "nodes", "g0", 'CONSOLE="tty0"\nKERNEL_ARGS="quiet"\n')
    mine, gpu = welcome(cluster, "n0000").capsule, welcome(cluster, "g0").capsule
    assert welcome(cluster, "n0001").capsule == base  # no file: the capsule as is
    assert len({base, mine, gpu}) == 3
    assert cmdline_of(cluster, base) == "quiet"
    assert cmdline_of(cluster, mine) == "quiet nomodeset console=ttyS1,9600"
    assert cmdline_of(cluster, gpu) == "quiet nouveau.modeset=0 console=tty0"
    b = decode_manifest((cluster.state_dir / "manifests" / base).read_bytes(), base)
    v = decode_manifest((cluster.state_dir / "manifests" / mine).read_bytes(), mine)
    assert v.all_chunks() == b.all_chunks() and (v.name, v.version) == (b.name, b.version)
    assert welcome(cluster, "n0000").capsule == mine  # cached, same bytes


def test_an_override_of_the_kernel_is_refused_and_logged(cluster: Paths) -> None:
    base = welcome(cluster, "n0001").capsule
    override(cluster, "nodes", "n0000", 'KERNEL="/boot/vmlinuz-other"\n')
    with capture_logs() as logs:
        assert welcome(cluster, "n0000").capsule == base
    (event,) = [e for e in logs if e["event"] == "capsule_variant_failed"]
    assert "KERNEL cannot differ per node or group" in event["error"]
