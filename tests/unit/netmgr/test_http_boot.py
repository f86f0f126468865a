"""http_boot's pure parts: which bytes a Range header asks for, which file a request path names."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.master.netmgr.http_boot import RangeNotSatisfiableError, byte_range, resolve


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("", 100, None),
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=90-", 100, (90, 99)),
        ("bytes=90-1000", 100, (90, 99)),  # the end is clipped to the file
        ("bytes=-10", 100, (90, 99)),  # suffix: the last 10 bytes
        ("bytes=-1000", 100, (0, 99)),
        ("bytes=0-0", 1, (0, 0)),
        # ignored (the whole file): several ranges, other units, garbage, last < first
        ("bytes=0-1,5-6", 100, None),
        ("items=0-1", 100, None),
        ("bytes=a-b", 100, None),
        ("bytes=-", 100, None),
        ("bytes=9-3", 100, None),
    ],
)
def test_byte_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=100-", 100), ("bytes=200-300", 100), ("bytes=-0", 100),
                                              ("bytes=-5", 0)])  # fmt: skip
def test_unsatisfiable_range(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        byte_range(header, size)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    tftp = tmp_path / "tftp"
    (tftp / "nodes").mkdir(parents=True)
    (tftp / "vmlinuz").write_bytes(b"k")
    (tftp / "nodes" / "52-54-00-77-00-01.ipxe").write_text("#!ipxe\n")
    (tftp / ".vmlinuz.tmp").write_bytes(b"half")
    (tmp_path / "secret").write_text("not served")
    (tftp / "escape").symlink_to(tmp_path / "secret")
    return tftp


@pytest.mark.parametrize(
    ("target", "name"),
    [
        ("/vmlinuz", "vmlinuz"),
        ("/vmlinuz?x=1", "vmlinuz"),
        ("/nodes/52-54-00-77-00-01.ipxe", "nodes/52-54-00-77-00-01.ipxe"),
        ("/%76mlinuz", "vmlinuz"),
    ],
)
def test_resolve_serves_files_under_the_root(root: Path, target: str, name: str) -> None:
    assert resolve(root, target) == (root / name).resolve()


@pytest.mark.parametrize(
    "target",
    [
        "/",  # no listings
        "/nodes",
        "/nodes/",
        "/missing",
        "/../secret",
        "/%2e%2e/secret",
        "/nodes/../../secret",
        "/escape",  # a symlink out of the root
        "/.vmlinuz.tmp",  # an atomic write's temporary
        "/vmlinuz%00",
        "vmlinuz",
        "http://other/vmlinuz/..",
    ],
)
def test_resolve_refuses(root: Path, target: str) -> None:
    assert resolve(root, target) is None
