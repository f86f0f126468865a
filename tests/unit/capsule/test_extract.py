"""Unsafe archive members are refused with one-line errors; a failed import leaves nothing behind."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from perceus.errors import CapsuleError
from perceus.master.capsule.extract import Extractor, UnsafeEntry
from perceus.master.capsule.importer import import_capsule
from perceus.master.config import Paths


def member(
    name: str, kind: bytes = tarfile.REGTYPE, *, data: bytes = b"", link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, data


def write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def extract(root: Path, members: list[tuple[tarfile.TarInfo, bytes]], **kw: bool) -> Extractor:
    root.mkdir(exist_ok=True)
    with Extractor(root, source="test.tar", **kw) as ex:  # type: ignore[arg-type]
        for info, data in members:
            ex.add(info, io.BytesIO(data) if info.isreg() else None)
        ex.finish()
    return ex


REJECTED = [
    ([member("/etc/passwd", data=b"x")], "absolute path"),
    ([member("../escape", data=b"x")], r"parent reference \(\.\.\)"),
    ([member("a/../../escape", data=b"x")], r"parent reference \(\.\.\)"),
    ([member("link", tarfile.SYMTYPE, link="../../etc")], "symlink pointing out of the capsule"),
    ([member("a/b", tarfile.SYMTYPE, link="../../x")], "symlink pointing out of the capsule"),
    ([member("hard", tarfile.LNKTYPE, link="/etc/shadow")], "absolute path in hard link target"),
    ([member("hard", tarfile.LNKTYPE, link="../etc/shadow")], r"parent reference \(\.\.\) in hard link target"),
    ([member("hard", tarfile.LNKTYPE, link="nothere")], "hard link to missing"),
    (
        [member("etc", tarfile.SYMTYPE, link="/etc"), member("etc/passwd", data=b"pwned")],
        "path goes through 'etc', which is a symlink",
    ),
    (
        [member("d", tarfile.SYMTYPE, link="sub"), member("sub", tarfile.DIRTYPE), member("d/x", data=b"1")],
        "path goes through 'd', which is a symlink",
    ),
    ([member("dir", tarfile.DIRTYPE), member("h", tarfile.LNKTYPE, link="dir")], "hard link to non-file"),
    ([member("n\0ul", data=b"x")], "NUL byte"),
]


@pytest.mark.parametrize(("members", "error"), REJECTED)
def test_unsafe_members_are_refused(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], error: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(UnsafeEntry, match=error) as exc:
        extract(tmp_path / "root", members)
    assert "\n" not in str(exc.value) and str(exc.value).startswith("test.tar: refusing entry")
    assert list(outside.iterdir()) == []


def test_safe_members_are_written(tmp_path: Path) -> None:
    root = tmp_path / "root"
    extract(root, [
        member("etc", tarfile.DIRTYPE), member("etc/hosts", data=b"127.0.0.1 localhost\n"),
        member("etc/hosts.hard", tarfile.LNKTYPE, link="etc/hosts"),
        member("etc/localtime", tarfile.SYMTYPE, link="/usr/share/zoneinfo/UTC"),  # absolute: rooted in the capsule
        member("usr/lib/x", tarfile.SYMTYPE, link="../../etc/hosts"),
        member("fifo", tarfile.FIFOTYPE),
    ])  # fmt: skip
    assert (root / "etc/hosts").read_bytes() == b"127.0.0.1 localhost\n"
    assert os.stat(root / "etc/hosts.hard").st_ino == os.stat(root / "etc/hosts").st_ino
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/UTC"
    assert (root / "usr/lib/x").read_bytes().startswith(b"127")


def test_devices_only_as_root(tmp_path: Path) -> None:
    ex = extract(tmp_path / "a", [member("dev", tarfile.DIRTYPE), member("dev/null", tarfile.CHRTYPE)],
                 allow_devices=False)  # fmt: skip
    assert ex.skipped_devices == 1 and not (tmp_path / "a/dev/null").exists()
    if os.geteuid() == 0:
        extract(tmp_path / "b", [member("dev/null", tarfile.CHRTYPE)], allow_devices=True)
        assert (tmp_path / "b/dev/null").is_char_device()


def test_later_member_replaces_earlier(tmp_path: Path) -> None:
    root = tmp_path / "root"
    extract(root, [member("x", tarfile.DIRTYPE), member("x/y", data=b"1"), member("x", data=b"file now")])
    assert (root / "x").read_bytes() == b"file now"


def _state(paths: Paths) -> tuple[list[str], list[str], list[str]]:
    chunks = sorted(str(p) for p in (paths.state_dir / "chunks").rglob("*") if p.is_file()) if (
        paths.state_dir / "chunks").exists() else []  # fmt: skip
    manifests = sorted(p.name for p in (paths.state_dir / "manifests").glob("*")) if (
        paths.state_dir / "manifests").exists() else []  # fmt: skip
    return sorted(p.name for p in paths.vnfs.iterdir()), chunks, manifests


def test_failed_import_leaves_nothing(paths: Paths, tmp_path: Path) -> None:
    good = [member("boot", tarfile.DIRTYPE), member("boot/vmlinuz-6.1", data=os.urandom(1000)),
            member("bin/sh", data=b"#!")]  # fmt: skip
    before = _state(paths)
    bad = write_tar(tmp_path / "bad.tar", [*good, member("../../etc/cron.d/x", data=b"boom")])
    with pytest.raises(CapsuleError, match=r"refusing entry '\.\./\.\./etc/cron\.d/x'"):
        import_capsule(paths, bad, name="bad")
    assert _state(paths) == before
    nokernel = write_tar(tmp_path / "nokernel.tar", [member("bin/sh", data=b"#!")])
    with pytest.raises(CapsuleError, match="no kernel found"):
        import_capsule(paths, nokernel)
    assert _state(paths) == before
    ok = import_capsule(paths, write_tar(tmp_path / "ok.tar", good))
    assert ok.name == "ok" and (paths.vnfs / "ok/config").is_file()
