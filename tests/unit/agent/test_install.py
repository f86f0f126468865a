"""Stateful install: settings, partition plan, MBR bytes, refusals, marker, and the argv we would run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from perceus.agent import install
from perceus.agent.install import InstallError, Marker, Settings, make_plan, parse_marker

GIB = 1 << 30
SECTORS_1G = GIB // 512


def test_settings_parse_targets_sizes_and_default_filesystem() -> None:
    s = Settings.parse({"targets": "/dev/vda", "swap_size": "64", "boot_size": "1G"})
    assert s == Settings(("/dev/vda",), "ext4", 64, 1024)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({}, "no TARGETS"),
        ({"targets": "/dev/../etc/passwd"}, "not a disk"),
        ({"targets": "vda", "filesystem": "xfs"}, "FILESYSTEM 'xfs'"),
        ({"targets": "vda", "swap_size": "lots"}, "SWAP_SIZE"),
    ],
)
def test_settings_refuse_bad_values(raw: dict[str, str], fragment: str) -> None:
    with pytest.raises(InstallError, match=fragment):
        Settings.parse(raw)


def test_plan_swap_then_root_aligned_to_the_disk() -> None:
    plan = make_plan(Settings(("/dev/vda",), swap_mib=64), {"vda": SECTORS_1G, "vdb": SECTORS_1G}, 100 << 20)
    assert plan.disk == "vda"
    swap, root = plan.partitions
    assert (swap.role, swap.number, swap.start, swap.sectors) == ("swap", 1, 2048, 64 * 2048)
    assert (root.role, root.number, root.start) == ("root", 2, 2048 + 64 * 2048)
    assert root.start + root.sectors <= SECTORS_1G and root.sectors % 2048 == 0
    assert plan.device("root") == "/dev/vda2"


def test_plan_without_swap_has_root_first_and_nvme_names_get_p() -> None:
    plan = make_plan(Settings(("nvme0n1",)), {"nvme0n1": SECTORS_1G}, 1 << 20)
    assert [p.role for p in plan.partitions] == ["root"]
    assert plan.device("root") == "/dev/nvme0n1p1"


def test_refuses_missing_disk_naming_what_exists() -> None:
    with pytest.raises(InstallError, match=r"/dev/sda is not present \(disks found: vda\)"):
        make_plan(Settings(("/dev/sda",)), {"vda": SECTORS_1G}, 1 << 20)


def test_refuses_too_small_disk() -> None:
    with pytest.raises(InstallError, match="too small"):
        make_plan(Settings(("vda",), swap_mib=512), {"vda": SECTORS_1G}, 600 << 20)


def test_refuses_raid() -> None:
    with pytest.raises(InstallError, match="RAID"):
        make_plan(Settings(("vda", "vdb")), {"vda": SECTORS_1G, "vdb": SECTORS_1G}, 1 << 20)


def test_mbr_entries_encode_lba_types_and_signature() -> None:
    plan = make_plan(Settings(("vda",), swap_mib=64), {"vda": SECTORS_1G}, 1 << 20)
    data = install.mbr_entries(plan)
    assert len(data) == 66 and data[-2:] == b"\x55\xaa"
    assert data[4] == 0x82 and data[16 + 4] == 0x83 and data[16] == 0x80  # swap; root bootable
    assert int.from_bytes(data[8:12], "little") == 2048
    assert int.from_bytes(data[16 + 12 : 16 + 16], "little") == plan.partitions[1].sectors
    assert data[32:64] == bytes(32)


def test_marker_round_trip_and_garbage() -> None:
    marker = Marker("a" * 64, "disk", 1700000000.5, "/dev/vda2")
    data = marker.encode()
    assert len(data) == 512
    assert parse_marker(data) == marker
    assert parse_marker(bytes(512)) is None
    assert parse_marker(install.MARKER_MAGIC + b"{not json\n") is None
    assert parse_marker(install.MARKER_MAGIC + b'{"capsule": "x"}\n') is None


def _disk(tmp_path: Path, marker: Marker | None) -> Path:
    dev = tmp_path / "dev"
    dev.mkdir()
    data = bytearray(4096)
    if marker is not None:
        data[512:1024] = marker.encode()
    (dev / "vda").write_bytes(bytes(data))
    return dev


def test_wants_install_unless_marker_matches_and_no_reinstall_flag(tmp_path: Path) -> None:
    settings = Settings(("/dev/vda",))
    dev = _disk(tmp_path, Marker("a" * 64, "disk", 1.0, "/dev/vda2"))
    flags = tmp_path / "run"
    flags.mkdir()
    assert not install.wants_install(settings, "a" * 64, flags, dev)
    assert install.wants_install(settings, "b" * 64, flags, dev)
    (flags / "stateful").write_text("INIT=yes\n")
    assert install.wants_install(settings, "a" * 64, flags, dev)
    (flags / "stateful").write_text("INIT=no\n")
    assert not install.wants_install(settings, "a" * 64, flags, dev)
    assert install.installed_root(settings, dev) == "/dev/vda2"


def test_blank_disk_wants_install(tmp_path: Path) -> None:
    dev = _disk(tmp_path, None)
    assert install.wants_install(Settings(("vda",)), "a" * 64, tmp_path, dev)
    with pytest.raises(InstallError, match="no install marker"):
        install.installed_root(Settings(("vda",)), dev)


def test_block_disks_skips_virtual_devices(tmp_path: Path) -> None:
    for name, size in (("vda", "2097152"), ("loop0", "10"), ("sda", "bad")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "size").write_text(size + "\n")
    assert install.block_disks(tmp_path) == {"vda": 2097152}


def test_boot_args_name_the_root_partition() -> None:
    assert install.boot_args("/dev/vda2", "ext4") == ["root=/dev/vda2", "rw", "rootfstype=ext4"]


class Recorder:
    """The recording fake runner: what install() would run, in order (the vm-test runs the real commands)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], Path | None, Path | None]] = []

    def __call__(self, argv: Sequence[str], *, stdin: Path | None = None, cwd: Path | None = None) -> None:
        self.calls.append((list(argv), stdin, cwd))


def test_commands_run_in_order_with_the_verified_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = make_plan(Settings(("vda",), swap_mib=64), {"vda": SECTORS_1G}, 1 << 20)
    dev = _disk(tmp_path, Marker("old" * 2, "x", 1.0, "/dev/vda1"))
    for n in (1, 2):
        (dev / f"vda{n}").touch()
    monkeypatch.setattr(install, "_reread", lambda disk: None)  # BLKRRPART needs a real block device
    cpio = tmp_path / "rootfs.cpio"
    cpio.write_bytes(b"070701")
    run = Recorder()
    marker = install.install(plan, cpio, manifest_hash="c" * 64, capsule="disk", mountpoint=tmp_path / "mnt",
                             run=run, dev=dev, clock=lambda: 5.0)  # fmt: skip
    argvs = [c[0] for c in run.calls]
    assert argvs == [
        ["mkswap", "-L", "swap", str(dev / "vda1")],
        ["mkfs.ext4", "-F", "-q", "-t", "ext4", "-L", "root", str(dev / "vda2")],
        ["mount", "-t", "ext4", str(dev / "vda2"), str(tmp_path / "mnt")],
        ["cpio", "-i", "-d", "-m", "-u"],
        ["umount", str(tmp_path / "mnt")],
    ]
    assert run.calls[3][1:] == (cpio, tmp_path / "mnt")
    disk = (dev / "vda").read_bytes()
    assert disk[510:512] == b"\x55\xaa" and disk[446 + 4] == 0x82
    assert parse_marker(disk[512:1024]) == marker == Marker("c" * 64, "disk", 5.0, "/dev/vda2")


def test_a_failed_command_leaves_no_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = make_plan(Settings(("vda",)), {"vda": SECTORS_1G}, 1 << 20)
    dev = _disk(tmp_path, Marker("c" * 64, "disk", 1.0, "/dev/vda1"))
    (dev / "vda1").touch()
    monkeypatch.setattr(install, "_reread", lambda disk: None)

    def failing(argv: Sequence[str], *, stdin: Path | None = None, cwd: Path | None = None) -> None:
        if argv[0] == "cpio":
            raise InstallError("cpio failed (1): short read")

    cpio = tmp_path / "rootfs.cpio"
    cpio.write_bytes(b"")
    with pytest.raises(InstallError, match="cpio failed"):
        install.install(plan, cpio, manifest_hash="c" * 64, capsule="disk", mountpoint=tmp_path / "mnt",
                        run=failing, dev=dev)  # fmt: skip
    assert install.read_marker("vda", dev) is None
