"""ldd parsing and the lib-dynload selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.stage1.pyruntime import dynload_wanted, parse_ldd

LDD = """\
\tlinux-vdso.so.1 (0x00007ffd5a1f5000)
\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f0c1f6a0000)
\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f0c1f681000)
\tlibzmq-5c1d5c4e.so.5.2.5 => /tmp/root/usr/lib/python3/dist-packages/zmq/../pyzmq.libs/libzmq.so.5 (0x00007f0c1f000000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c1f4a0000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f0c1fa2e000)
"""


def test_parse_ldd() -> None:
    found = parse_ldd(LDD)
    assert found["libm.so.6"] == Path("/lib/x86_64-linux-gnu/libm.so.6")
    assert found["/lib64/ld-linux-x86-64.so.2"] == Path("/lib64/ld-linux-x86-64.so.2")
    assert "linux-vdso.so.1" not in found
    assert len(found) == 5


def test_parse_ldd_missing_library_is_an_error() -> None:
    with pytest.raises(FileNotFoundError, match="libfoo"):
        parse_ldd("\tlibfoo.so.1 => not found\n")


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("_ssl.cpython-311-x86_64-linux-gnu.so", True),
        ("_sqlite3.cpython-311-x86_64-linux-gnu.so", True),
        ("_ctypes.cpython-311-x86_64-linux-gnu.so", True),
        ("_asyncio.cpython-311-x86_64-linux-gnu.so", True),
        ("_testcapi.cpython-311-x86_64-linux-gnu.so", False),
        ("_ctypes_test.cpython-311-x86_64-linux-gnu.so", False),
        ("_curses_panel.cpython-311-x86_64-linux-gnu.so", False),
        ("readline.cpython-311-x86_64-linux-gnu.so", False),
        ("xxlimited_35.cpython-311-x86_64-linux-gnu.so", False),
        ("_codecs_jp.cpython-311-x86_64-linux-gnu.so", False),
    ],
)
def test_dynload_selection(name: str, wanted: bool) -> None:
    assert dynload_wanted(name) is wanted
