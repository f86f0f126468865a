"""Stateful install: settings, partition plan, MBR bytes, refusals, marker, and the argv we would run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from perceus.agent import install
from perceus.agent.install import InstallError, Marker, Settings, make_plan, parse_marker
from perceus.agent.layout import sfdisk_script

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
        ({"targets": "vda", "filesystem": "zfs"}, "FILESYSTEM 'zfs'"),
        ({"targets": "vda", "swap_size": "lots"}, "SWAP_SIZE"),
    ],
)
def test_settings_refuse_bad_values(raw: dict[str, str], fragment: str) -> None:
    with pytest.raises(InstallError, match=fragment):
        Settings.parse(raw)


def test_plan_swap_then_root_aligned_to_the_disk() -> None:
    plan = make_plan(Settings(("/dev/vda",), swap_mib=64), {"vda": SECTORS_1G, "vdb": SECTORS_1G}, 100 << 20,
                     uefi=False)  # fmt: skip
    assert plan.disk == "vda"
    swap, root = plan.partitions
    assert (swap.role, swap.number, swap.start, swap.sectors) == ("swap", 1, 2048, 64 * 2048)
    assert (root.role, root.number, root.start) == ("root", 2, 2048 + 64 * 2048)
    assert root.start + root.sectors <= SECTORS_1G and root.sectors % 2048 == 0
    assert plan.device("root") == "/dev/vda2"


def test_plan_without_swap_has_root_first_and_nvme_names_get_p() -> None:
    plan = make_plan(Settings(("nvme0n1",)), {"nvme0n1": SECTORS_1G}, 1 << 20, uefi=False)
    assert [p.role for p in plan.partitions] == ["root"]
    assert plan.device("root") == "/dev/nvme0n1p1"


def test_refuses_missing_disk_naming_what_exists() -> None:
    with pytest.raises(InstallError, match=r"/dev/sda is not present \(disks found: vda\)"):
        make_plan(Settings(("/dev/sda",)), {"vda": SECTORS_1G}, 1 << 20, uefi=False)


def test_refuses_too_small_disk() -> None:
    with pytest.raises(InstallError, match="too small"):
        make_plan(Settings(("vda",), swap_mib=512), {"vda": SECTORS_1G}, 600 << 20, uefi=False)


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
    data = bytearray(1 << 20)
    if marker is not None:
        data[install.MARKER_OFFSET : install.MARKER_OFFSET + 512] = marker.encode()
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


def _cpio(tmp_path: Path, names: list[str]) -> Path:
    """A real newc stream (the writer the disk initrd uses) holding `names` as small files."""
    from perceus.agent.disk_initrd import Newc

    path = tmp_path / "rootfs.cpio"
    with open(path, "wb") as fh:
        out = Newc(fh)
        for name in names:
            out.file(name, b"x" * 7)
        out.close()
    return path


def test_mbr_commands_run_in_order_with_the_verified_stream(tmp_path: Path) -> None:
    plan = make_plan(Settings(("vda",), swap_mib=64), {"vda": SECTORS_1G}, 1 << 20, uefi=False)
    dev = _disk(tmp_path, Marker("old" * 2, "x", 1.0, "/dev/vda1"))
    for n in (1, 2):
        (dev / f"vda{n}").touch()
    cpio = _cpio(tmp_path, ["bin/sh"])
    run = Recorder()
    mods: list[list[str]] = []
    marker = install.install(plan, cpio, manifest_hash="c" * 64, capsule="disk", mountpoint=tmp_path / "run/mnt",
                             run=run, dev=dev, clock=lambda: 5.0, load_modules=mods.append)  # fmt: skip
    argvs = [c[0] for c in run.calls]
    assert argvs == [
        ["sfdisk", "--quiet", "--wipe", "always", "--wipe-partitions", "always", str(dev / "vda")],
        ["mkswap", "-L", "swap", str(dev / "vda1")],
        ["mkfs.ext4", "-F", "-q", "-t", "ext4", "-L", "root", str(dev / "vda2")],
        ["mount", "-t", "ext4", str(dev / "vda2"), str(tmp_path / "run/mnt")],
        ["cpio", "-i", "-d", "-m", "-u"],
        ["umount", str(tmp_path / "run/mnt")],
    ]
    assert run.calls[0][1] == tmp_path / "run/sfdisk.script"
    assert (tmp_path / "run/sfdisk.script").read_text() == sfdisk_script(plan)
    assert run.calls[4][1:] == (cpio, tmp_path / "run/mnt")
    assert mods == [["crc32c_generic", "ext4"]]
    assert install.read_marker("vda", dev) == marker == Marker("c" * 64, "disk", 5.0, "/dev/vda2", "", "ext4")
    assert (dev / "vda").read_bytes()[512:1024] == bytes(512)  # the 1.x-era location is cleared


def test_raid1_gpt_creates_the_mirror_stops_it_and_marks_both_disks(tmp_path: Path) -> None:
    settings = Settings(("vda", "vdb"), "xfs", 0, 0, "auto", "raid1", "none")
    plan = make_plan(settings, {"vda": SECTORS_1G, "vdb": SECTORS_1G}, 1 << 20, uefi=True)
    dev = tmp_path / "dev"
    dev.mkdir()
    for disk in ("vda", "vdb"):
        (dev / disk).write_bytes(bytes(1 << 20))
        for n in (1, 2):
            (dev / f"{disk}{n}").touch()
    (dev / "md0").touch()
    cpio = _cpio(tmp_path, ["bin/sh"])
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"kernel")
    run = Recorder()
    # mdadm's libraries: the integration test lists them with the real loader (no processes in unit tests)
    boot = install.BootFiles(kernel, lambda root, fs: f"root={root} rootfstype={fs}", tmp_path / "run/initrd",
                             libraries=lambda binary: [])  # fmt: skip
    # the ESP "mount" is a directory here: the recorder runs nothing, so files land in <run>/esp
    marker = install.install(plan, cpio, manifest_hash="d" * 64, capsule="disk", mountpoint=tmp_path / "run/mnt",
                             run=run, dev=dev, boot=boot, md_uuid="01234567:89abcdef:01234567:89abcdef")  # fmt: skip
    argvs = [c[0] for c in run.calls]
    assert argvs[0][0] == argvs[1][0] == "sfdisk" and argvs[1][-1] == str(dev / "vdb")
    assert ["mkfs.fat", "-F", "32", "-n", "ESP", str(dev / "vda1")] in argvs
    assert ["mkfs.fat", "-F", "32", "-n", "ESP", str(dev / "vdb1")] in argvs
    create = next(a for a in argvs if a[:2] == ["mdadm", "--create"])
    assert create == ["mdadm", "--create", str(dev / "md0"), "--run", "--level=1", "--raid-devices=2",
                      "--metadata=1.2", "--name=root", "--uuid=01234567:89abcdef:01234567:89abcdef",
                      str(dev / "vda2"), str(dev / "vdb2")]  # fmt: skip
    assert ["mkfs.xfs", "-f", "-q", "-L", "root", str(dev / "md0")] in argvs
    assert argvs[-1] == ["mdadm", "--stop", str(dev / "md0")]  # after every umount, before the marker
    assert argvs.index(["umount", str(tmp_path / "run/mnt")]) < len(argvs) - 1
    assert marker.root == "/dev/md0" and marker.esp == "/dev/vda1"
    assert install.read_marker("vda", dev) == install.read_marker("vdb", dev) == marker
    esp = tmp_path / "run/esp"
    assert (esp / "perceus/vmlinuz").read_bytes() == b"kernel"
    assert (esp / "perceus/cmdline").read_text() == "root=/dev/md0 rootfstype=xfs"
    assert not (esp / "EFI").exists()  # BOOTLOADER=none: kernel and initrd for stage one only


def test_a_capsule_without_systemd_boot_is_refused_before_any_disk_is_touched(tmp_path: Path) -> None:
    plan = make_plan(Settings(("vda",)), {"vda": SECTORS_1G}, 1 << 20, uefi=True)
    dev = _disk(tmp_path, Marker("c" * 64, "disk", 1.0, "/dev/vda2"))
    before = (dev / "vda").read_bytes()
    run = Recorder()
    boot = install.BootFiles(tmp_path / "k", lambda root, fs: "", tmp_path / "initrd")
    with pytest.raises(InstallError, match=r"capsule disk has no boot loader: /usr/lib/systemd/boot/efi/"):
        install.install(plan, _cpio(tmp_path, ["bin/sh"]), manifest_hash="c" * 64, capsule="disk",
                        mountpoint=tmp_path / "mnt", run=run, dev=dev, boot=boot)  # fmt: skip
    assert run.calls == [] and (dev / "vda").read_bytes() == before


def test_cpio_names_finds_the_loader_with_or_without_dot_slash(tmp_path: Path) -> None:
    stream = _cpio(tmp_path, ["./usr/lib/systemd/boot/efi/systemd-bootx64.efi", "etc/passwd"])
    assert install.cpio_names(stream, install.SYSTEMD_BOOT) == {"usr/lib/systemd/boot/efi/systemd-bootx64.efi"}
    assert install.cpio_names(stream, ["etc/shadow"]) == set()


def test_a_failed_command_leaves_no_marker(tmp_path: Path) -> None:
    plan = make_plan(Settings(("vda",)), {"vda": SECTORS_1G}, 1 << 20, uefi=False)
    dev = _disk(tmp_path, Marker("c" * 64, "disk", 1.0, "/dev/vda1"))
    (dev / "vda1").touch()

    def failing(argv: Sequence[str], *, stdin: Path | None = None, cwd: Path | None = None) -> None:
        if argv[0] == "cpio":
            raise InstallError("cpio failed (1): short read")

    with pytest.raises(InstallError, match="cpio failed"):
        install.install(plan, _cpio(tmp_path, []), manifest_hash="c" * 64, capsule="disk",
                        mountpoint=tmp_path / "mnt", run=failing, dev=dev)  # fmt: skip
    assert install.read_marker("vda", dev) is None


def test_legacy_sector_1_marker_still_reads(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    data = bytearray(1 << 20)
    old = Marker("e" * 64, "disk", 1.0, "/dev/vda2")
    data[512:1024] = old.encode()
    (dev / "vda").write_bytes(bytes(data))
    assert install.read_marker("vda", dev) == old
