"""The TCP 987 request line and reply framing (legacy listener), and the ARP-table lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.errors import ProtocolError
from perceus.master.legacy import arp, wire


@pytest.mark.parametrize(
    ("line", "command", "args"),
    [
        (b"init nodeid=00:1e:67:aa:bb:cc\x00", "init", {"nodeid": "00:1e:67:aa:bb:cc"}),
        (b"ready  nodeid=A   extra\r", "ready", {"nodeid": "A"}),
        (b"init nodename=n0001 nodeid=X nodeid=Y", "init", {"nodename": "n0001", "nodeid": "X"}),
        (b"init k=a=b", "init", {"k": "a=b"}),  # 1.x truncated at the second '='; we keep it whole
    ],
)
def test_parse(line: bytes, command: str, args: dict[str, str]) -> None:
    request = wire.parse(line)
    assert (request.command, request.args) == (command, args)


@pytest.mark.parametrize("line", [b"", b"\x00", b"rm;ls nodeid=x", b"../x"])
def test_parse_rejects(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        wire.parse(line)


def test_split_line_frames_on_newline_and_bounds_size() -> None:
    assert wire.split_line(b"init nodeid=x") is None
    assert wire.split_line(b"init nodeid=x\n\x00") == b"init nodeid=x"
    with pytest.raises(ProtocolError):
        wire.split_line(b"x" * (wire.MAX_REQUEST + 1))


def test_script_reply_framing() -> None:
    assert wire.script_reply(["a", "b\n", ""]) == (b"# NODESCRIPT START\na\nb\n# NODESCRIPT END\n# PROVISIOND END\n")
    assert wire.shell_message("it's off") == "echo 'it'\\''s off' >&2\nexit 1\n"


def test_arp_lookup(tmp_path: Path) -> None:
    table = tmp_path / "arp"
    table.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "10.0.0.5         0x1         0x2         00:1e:67:aa:bb:cc     *        eth1\n"
        "10.0.0.6         0x1         0x0         00:00:00:00:00:00     *        eth1\n"
    )
    assert arp.lookup("10.0.0.5", table=table) == "00:1E:67:AA:BB:CC"
    assert arp.lookup("10.0.0.5", "eth0", table=table) == ""
    assert arp.lookup("10.0.0.6", table=table) == ""  # incomplete entry
    assert arp.lookup("10.0.0.7", table=tmp_path / "missing") == ""
