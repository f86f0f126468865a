"""The disk-boot initrd built from real parts: the host's static busybox, mdadm and the libraries the dynamic
loader lists for it, a modules tree with a real modules.dep; read back with GNU cpio, /init checked by busybox sh.

The boot itself (the kernel unpacking it, insmod, mdadm assembling, switch_root) is vm-tests/test_stateful_raid.py.
"""

from __future__ import annotations

import lzma
import shutil
import subprocess
from pathlib import Path

import pytest

from perceus.agent import disk_initrd
from perceus.agent.layout import Settings, make_plan

MDADM = Path("/sbin/mdadm")
pytestmark = pytest.mark.skipif(
    not (MDADM.exists() and disk_initrd.BUSYBOX.exists() and shutil.which("cpio")),
    reason="needs mdadm, busybox-static and cpio (scripts/setup)",
)

DEP = """kernel/drivers/block/virtio_blk.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/md/md-mod.ko:
kernel/drivers/md/raid1.ko: kernel/drivers/md/md-mod.ko
kernel/fs/xfs/xfs.ko.xz: kernel/lib/libcrc32c.ko
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/fs/ext4/ext4.ko:
kernel/drivers/net/virtio_net.ko:
"""


def _capsule_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    mdir = root / "usr/lib/modules/6.1.0-test-amd64"
    for line in DEP.splitlines():
        rel = line.split(":")[0]
        (mdir / rel).parent.mkdir(parents=True, exist_ok=True)
        body = f"module {rel}".encode()
        (mdir / rel).write_bytes(lzma.compress(body) if rel.endswith(".xz") else body)
    (mdir / "modules.dep").write_text(DEP)
    return root


def test_raid_xfs_initrd_has_mdadm_its_libraries_the_modules_in_order_and_a_valid_init(tmp_path: Path) -> None:
    plan = make_plan(Settings(("vda", "vdb"), "xfs", raid="raid1"), {"vda": 1 << 22, "vdb": 1 << 22}, 1 << 20,
                     uefi=True)  # fmt: skip
    libs = disk_initrd.elf_closure(MDADM)  # the real loader's --list
    assert any(p.name.startswith("libc.so") for p in libs) and any("ld-linux" in p.name for p in libs)
    out = tmp_path / "initrd.img"
    built = disk_initrd.build(out, root=_capsule_root(tmp_path), kernel=tmp_path / "no-kernel", plan=plan,
                              md_uuid="01234567:89abcdef:01234567:89abcdef", mdadm=MDADM)  # fmt: skip
    assert built.release == ""  # no bzImage header: the only modules release is taken
    # dependencies first, virtio_pci (the transport) before virtio_blk; the NIC module is not carried
    assert built.modules == ("virtio_pci_modern_dev", "virtio_pci", "virtio_blk", "crc32c_generic", "libcrc32c",
                             "xfs", "md_mod", "raid1")  # fmt: skip
    assert out.stat().st_size == built.size and built.size % 512 == 0
    extract = tmp_path / "x"
    extract.mkdir()
    with open(out, "rb") as fh:
        subprocess.run(["cpio", "-i", "-d", "--quiet"], stdin=fh, cwd=extract, check=True)
    assert (extract / "bin").is_symlink() and (extract / "usr/bin/busybox").stat().st_mode & 0o111
    assert (extract / "usr/sbin/mdadm").read_bytes() == MDADM.read_bytes()
    for lib in libs:
        where = "usr/lib64" if "lib64" in lib.parts else "usr/lib/x86_64-linux-gnu"
        assert (extract / where / lib.name).read_bytes() == lib.resolve().read_bytes()
    order = (extract / "etc/perceus/modules").read_text().split()
    assert order[-1] == "kernel/drivers/md/raid1.ko" and "kernel/fs/xfs/xfs.ko" in order
    assert (extract / "usr/lib/modules/kernel/fs/xfs/xfs.ko").read_bytes() == b"module kernel/fs/xfs/xfs.ko.xz"
    conf = (extract / "etc/mdadm/mdadm.conf").read_text()
    assert "ARRAY /dev/md0 metadata=1.2 UUID=01234567:89abcdef:01234567:89abcdef" in conf
    assert (extract / "etc/perceus/md-members").read_text().split() == ["/dev/vda2", "/dev/vdb2"]
    syntax = subprocess.run([str(disk_initrd.BUSYBOX), "sh", "-n", str(extract / "init")], capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert syntax.returncode == 0, syntax.stderr


def test_single_disk_ext4_initrd_carries_no_mdadm(tmp_path: Path) -> None:
    plan = make_plan(Settings(("vda",)), {"vda": 1 << 22}, 1 << 20, uefi=True)
    built = disk_initrd.build(tmp_path / "i.img", root=_capsule_root(tmp_path), kernel=tmp_path / "k", plan=plan)
    with open(tmp_path / "i.img", "rb") as fh:
        listing = subprocess.run(["cpio", "-t", "--quiet"], stdin=fh, capture_output=True, text=True,
                                 check=True).stdout.split()  # fmt: skip
    assert "usr/sbin/mdadm" not in listing and "etc/mdadm/mdadm.conf" not in listing
    assert built.modules[-2:] == ("crc32c_generic", "ext4")


def test_kernel_release_from_a_bzimage_header(tmp_path: Path) -> None:
    image = bytearray(0x4000)
    image[0x202:0x206] = b"HdrS"
    image[0x20E:0x210] = (0x1000).to_bytes(2, "little")
    text = b"6.1.0-27-amd64 (debian-kernel@lists.debian.org) #1 SMP\0"
    image[0x1200 : 0x1200 + len(text)] = text
    (tmp_path / "vmlinuz").write_bytes(bytes(image))
    assert disk_initrd.kernel_release(tmp_path / "vmlinuz") == "6.1.0-27-amd64"
    (tmp_path / "junk").write_bytes(b"\0" * 1024)
    assert disk_initrd.kernel_release(tmp_path / "junk") is None
