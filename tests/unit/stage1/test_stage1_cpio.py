"""The newc writer: format details the kernel relies on, and byte-for-byte reproducibility."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from perceus.stage1.cpio import TRAILER, header, write_tree


def read_newc(data: bytes) -> list[tuple[str, int, tuple[int, int], bytes]]:
    """Minimal newc reader: (name, mode, (rdevmajor, rdevminor), body) per entry, trailer included."""
    entries = []
    pos = 0
    while True:
        assert data[pos : pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name_start = pos + 110
        name = data[name_start : name_start + namesize - 1].decode()
        assert data[name_start + namesize - 1] == 0
        body_start = name_start + namesize + (-(110 + namesize) % 4)
        body = data[body_start : body_start + filesize]
        entries.append((name, fields[1], (fields[9], fields[10]), body))
        pos = body_start + filesize + (-filesize % 4)
        if name == TRAILER:
            return entries


def make_tree(root: Path) -> None:
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/busybox").write_bytes(b"\x7fELF" + b"x" * 13)
    (root / "usr/bin/busybox").chmod(0o755)
    (root / "bin").symlink_to("usr/bin")
    (root / "init").write_text("#!/bin/sh\n")
    (root / "init").chmod(0o755)


def test_header_is_110_bytes_plus_padded_name() -> None:
    h = header(name="init", ino=1, mode=0o100755, nlink=1, mtime=0, filesize=10)
    assert h.startswith(b"070701")
    assert len(h) % 4 == 0
    assert h[110:115] == b"init\0"


def test_round_trip(tmp_path: Path) -> None:
    make_tree(tmp_path)
    out = io.BytesIO()
    count = write_tree(tmp_path, out, char_devices={"dev/console": (0o600, 5, 1)})
    entries = {name: (mode, rdev, body) for name, mode, rdev, body in read_newc(out.getvalue())}
    assert count == 6  # bin, init, usr, usr/bin, usr/bin/busybox, dev/console
    assert entries["bin"][2] == b"usr/bin" and stat.S_ISLNK(entries["bin"][0])
    assert entries["init"][2] == b"#!/bin/sh\n" and stat.S_IMODE(entries["init"][0]) == 0o755
    assert stat.S_ISDIR(entries["usr/bin"][0])
    assert entries["usr/bin/busybox"][2].startswith(b"\x7fELF")
    mode, rdev, _ = entries["dev/console"]
    assert stat.S_ISCHR(mode) and rdev == (5, 1)
    assert TRAILER in entries
    assert len(out.getvalue()) % 4 == 0


def test_parents_come_before_children(tmp_path: Path) -> None:
    make_tree(tmp_path)
    out = io.BytesIO()
    write_tree(tmp_path, out)
    names = [name for name, *_ in read_newc(out.getvalue())]
    assert names.index("usr") < names.index("usr/bin") < names.index("usr/bin/busybox")


def test_reproducible_regardless_of_mtimes(tmp_path: Path) -> None:
    make_tree(tmp_path)
    first = io.BytesIO()
    write_tree(tmp_path, first)
    os.utime(tmp_path / "init", (1_000_000, 1_000_000))
    second = io.BytesIO()
    write_tree(tmp_path, second)
    assert first.getvalue() == second.getvalue()
