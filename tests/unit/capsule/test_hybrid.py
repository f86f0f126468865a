"""Issue 22 item 1 — hybrid capsules on the master, through `perceus vnfs …` main(argv): the hybridize list
read at import and configure, its directories left out of the RAM image (kept as mount points, plus
/etc/perceus/hybrid.conf for the node), the hard-link export tree, `vnfs show` sizes, and bad lists refused
with one line and nothing stored."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard
from tests.unit.capsule.conftest import make_tree
from tests.unit.cli.clirun import run

from perceus.master.capsule import cpio_reader
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.config import Paths


@pytest.fixture
def small(tmp_path: Path) -> Path:
    root = make_tree(tmp_path / "chroot", files=5)
    (root / "usr/share/doc/pkg").mkdir(parents=True)
    (root / "usr/share/doc/pkg/README").write_text("read me over NFS\n")
    (root / "usr/include").mkdir()
    (root / "usr/include/x.h").write_text("#define X 1\n")
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("node\n")
    return root


def listing(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "hybridize.list"
    path.write_text("# hybridized paths\n" + "\n".join(lines) + "\n")
    return path


def stream(paths: Paths, name: str) -> dict[str, bytes]:
    """The capsule's root stream as the node unpacks it: name → data (directories map to b"")."""
    m = current(Store(paths).existing(name))
    assert m is not None
    raw = b"".join(
        zstandard.ZstdDecompressor().decompress(Store(paths).chunk_path(c.hash).read_bytes(), c.raw_size)
        for c in m.rootfs.chunks
    )
    out: dict[str, bytes] = {}
    for info, data in cpio_reader.members(io.BytesIO(raw), name):
        out[info.name] = data.read() if data is not None and info.type == tarfile.REGTYPE else b""
    return out


def test_import_hybrid_leaves_the_list_out_of_ram_and_exports_it(paths: Paths, small: Path, tmp_path: Path) -> None:
    assert run(paths, "vnfs", "import", str(small), "--name", "plain").code == 0
    result = run(paths, "vnfs", "import", str(small), "--name", "hyb", "--type", "hybrid",
                 "--hybridize", str(listing(tmp_path, "/usr/share", "/usr/inc*", "/usr/share/doc")))  # fmt: skip
    assert result.code == 0, result.err
    assert "hybrid: RAM image" in result.out and "exported as /perceus/hyb" in result.out

    plain, hyb = stream(paths, "plain"), stream(paths, "hyb")
    assert "usr/share/big.dat" in plain and "usr/share/big.dat" not in hyb
    assert "usr/share/doc/pkg/README" not in hyb and "usr/include/x.h" not in hyb
    assert hyb["usr/share"] == b"" and hyb["usr/include"] == b""  # mount points stay
    assert hyb["etc/hostname"] == b"node\n" and "usr/lib/lib0001.so" in hyb
    assert hyb["etc/perceus/hybrid.conf"].decode().splitlines()[2:] == [
        "export /perceus/hyb",
        "mount /usr/include",
        "mount /usr/share",
    ]

    cap = Store(paths).existing("hyb")
    summary = json.loads((cap.root / "hybrid.json").read_text())
    assert summary["paths"] == ["/usr/include", "/usr/share"]
    nfs = cap.root / "nfs"
    for rel in ("usr/share/big.dat", "usr/share/doc/pkg/README", "usr/include/x.h"):
        assert (nfs / rel).read_bytes() == (cap.rootfs / rel).read_bytes()
        assert os.stat(nfs / rel).st_ino == os.stat(cap.rootfs / rel).st_ino  # a hard link, not a copy
    assert os.readlink(nfs / "usr/share/rel-link") == "../lib/lib0002.so"
    assert sorted(p.name for p in nfs.iterdir()) == ["usr"] and not (nfs / "usr/lib").exists()
    regular = [nfs / r for r in ("usr/share/big.dat", "usr/share/doc/pkg/README", "usr/include/x.h")]
    assert summary["bytes"] == sum(p.stat().st_size for p in regular)

    # The RAM image is smaller by the hybridized bytes (plus their cpio headers), less hybrid.conf's entry.
    m_plain, m_hyb = current(Store(paths).existing("plain")), current(cap)
    assert m_plain is not None and m_hyb is not None and m_hyb.type == "hybrid"
    saved = m_plain.rootfs.size - m_hyb.rootfs.size
    assert summary["bytes"] - 512 <= saved <= summary["bytes"] + 512 * summary["entries"]

    shown = run(paths, "vnfs", "show", "hyb")
    assert "ram image" in shown.out and "nfs part" in shown.out and "/usr/include /usr/share" in shown.out
    data = json.loads(run(paths, "--json", "vnfs", "show", "hyb").out)[0]
    assert data["ram_image_bytes"] == m_hyb.rootfs.size and data["nfs"]["bytes"] == summary["bytes"]
    assert json.loads(run(paths, "--json", "vnfs", "show", "plain").out)[0]["nfs"] is None


BAD = [
    ("../etc", "climbs out of the capsule root (..)"),
    ("/usr/share/../../..", "climbs out of the capsule root (..)"),
    ("/", "is the capsule root itself"),
    ("/usr/abs-link", "goes through the symbolic link /usr/abs-link"),
    ("/usr/share/rel-link/x", "goes through the symbolic link /usr/share/rel-link"),
    ("/sbin/init", "is not a directory (/sbin/init)"),
    ("/usr/nothing", "does not exist in the capsule"),
    ("/opt/*", "matches nothing in the capsule"),
    ("/etc", "names /etc, which the node needs in RAM (/etc)"),
]


@pytest.mark.parametrize(("entry", "why"), BAD)
def test_bad_hybridize_entries_refused_and_nothing_stored(
    paths: Paths, small: Path, tmp_path: Path, entry: str, why: str
) -> None:
    result = run(paths, "vnfs", "import", str(small), "--name", "bad", "--type", "hybrid",
                 "--hybridize", str(listing(tmp_path, "/usr/include", entry)))  # fmt: skip
    assert result.code == 1
    assert result.err.count("\n") == 1 and result.err.startswith("perceus: error: ")
    assert f"hybridize entry {entry!r} {why}" in result.err and "nothing was packed" in result.err
    assert not (paths.vnfs / "bad").exists()
    assert [p.name for p in paths.vnfs.iterdir()] == []  # no temp tree left behind
    assert list((paths.state_dir / "manifests").iterdir()) == []


def test_symlink_pointing_out_of_the_root_refused(paths: Paths, small: Path, tmp_path: Path) -> None:
    # Relative links climbing out are refused by the importer itself; an absolute one is imported (it resolves
    # inside the capsule on the node) but followed on the master it would name the master's own /.
    os.symlink("/", small / "usr/escape")
    result = run(paths, "vnfs", "import", str(small), "--name", "bad", "--type", "hybrid",
                 "--hybridize", str(listing(tmp_path, "/usr/escape")))  # fmt: skip
    assert result.code == 1 and "goes through the symbolic link /usr/escape" in result.err
    assert not (paths.vnfs / "bad").exists()


def test_1x_capsule_dir_with_its_hybridize_list(paths: Paths, small: Path, tmp_path: Path) -> None:
    src = tmp_path / "old-capsule"
    src.mkdir()
    os.rename(small, src / "rootfs")
    (src / "config").write_text('TYPE="hybrid"\nKERNEL="/boot/vmlinuz-6.1.0-9-amd64"\n')
    (src / "hybridize").write_text("/usr/share\n#/usr/include\n")
    assert run(paths, "vnfs", "import", str(src), "--name", "old").code == 0
    summary = json.loads((paths.vnfs / "old/hybrid.json").read_text())
    assert summary["paths"] == ["/usr/share"] and summary["list"] == "VNFS 'old' hybridize list"
    assert (paths.vnfs / "old/hybridize").read_text() == "/usr/share\n#/usr/include\n"

    # The same directory imported as stateless keeps the list, applies nothing and says so.
    (src / "config").write_text('KERNEL="/boot/vmlinuz-6.1.0-9-amd64"\n')
    result = run(paths, "vnfs", "import", str(src), "--name", "flat")
    assert result.code == 0 and "hybridize list kept but not applied: the capsule is stateless" in result.out
    assert not (paths.vnfs / "flat/nfs").exists() and "usr/share/big.dat" in stream(paths, "flat")


def test_configure_makes_hybrid_and_back(paths: Paths, small: Path, tmp_path: Path) -> None:
    assert run(paths, "vnfs", "import", str(small), "--name", "c1").code == 0
    before = current(Store(paths).existing("c1"))
    assert before is not None
    new_list = str(listing(tmp_path, "/usr/share"))
    result = run(paths, "vnfs", "configure", "c1", "--type", "hybrid", "--hybridize", new_list)
    assert result.code == 0, result.err
    after = current(Store(paths).existing("c1"))
    assert after is not None and after.version == before.version + 1 and after.rootfs.size < before.rootfs.size
    assert (paths.vnfs / "c1/nfs/usr/share/big.dat").is_file()

    # A bad list at configure: refused, the capsule keeps its config, list and version.
    bad = run(paths, "vnfs", "configure", "c1", "--hybridize", str(listing(tmp_path, "/missing")))
    assert bad.code == 1 and "does not exist in the capsule" in bad.err
    assert (paths.vnfs / "c1/hybridize").read_text().endswith("/usr/share\n")
    again = current(Store(paths).existing("c1"))
    assert again is not None and again.hash == after.hash

    assert run(paths, "vnfs", "configure", "c1", "--type", "stateless").code == 0
    flat = current(Store(paths).existing("c1"))
    assert flat is not None and flat.type == "stateless" and flat.rootfs.size == before.rootfs.size
    assert not (paths.vnfs / "c1/nfs").exists() and not (paths.vnfs / "c1/hybrid.json").exists()


def test_umount_refreshes_the_export_when_only_the_nfs_part_changed(paths: Paths, small: Path, tmp_path: Path) -> None:
    args = ("--type", "hybrid", "--hybridize", str(listing(tmp_path, "/usr/share")))
    assert run(paths, "vnfs", "import", str(small), "--name", "c1", *args).code == 0
    cap = Store(paths).existing("c1")
    stamp = json.loads((cap.root / "hybrid.json").read_text())["stamp"]
    m = current(cap)
    assert run(paths, "vnfs", "mount", "c1").code == 0
    (cap.rootfs / "usr/share/new.txt").write_text("added while mounted\n")
    assert run(paths, "vnfs", "umount", "c1").code == 0
    assert (cap.root / "nfs/usr/share/new.txt").read_text() == "added while mounted\n"
    assert json.loads((cap.root / "hybrid.json").read_text())["stamp"] != stamp
    m2 = current(cap)
    assert m is not None and m2 is not None and m2.hash == m.hash  # the RAM image did not change

    assert run(paths, "-y", "vnfs", "delete", "c1").code == 0
    assert not cap.root.exists()


def test_export_and_reimport_keeps_the_list(paths: Paths, small: Path, tmp_path: Path) -> None:
    args = ("--type", "hybrid", "--hybridize", str(listing(tmp_path, "/usr/share")))
    assert run(paths, "vnfs", "import", str(small), "--name", "c1", *args).code == 0
    out = tmp_path / "c1.vnfs"
    assert run(paths, "vnfs", "export", "c1", str(out)).code == 0
    result = run(paths, "vnfs", "import", str(out), "--name", "c2")
    assert result.code == 0, result.err
    assert json.loads((paths.vnfs / "c2/hybrid.json").read_text())["paths"] == ["/usr/share"]
    assert "usr/share/big.dat" not in stream(paths, "c2")


def test_clone_of_a_hybrid_capsule_gets_its_own_export(paths: Paths, small: Path, tmp_path: Path) -> None:
    args = ("--type", "hybrid", "--hybridize", str(listing(tmp_path, "/usr/include")))
    assert run(paths, "vnfs", "import", str(small), "--name", "c1", *args).code == 0
    assert run(paths, "vnfs", "clone", "c1", "c2").code == 0
    summary = json.loads((paths.vnfs / "c2/hybrid.json").read_text())
    assert summary["export"] == "/perceus/c2" and summary["paths"] == ["/usr/include"]
    assert (paths.vnfs / "c2/nfs/usr/include/x.h").read_text() == "#define X 1\n"
    assert "export /perceus/c2" in stream(paths, "c2")["etc/perceus/hybrid.conf"].decode()
