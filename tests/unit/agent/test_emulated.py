"""The emulated node's kexec stand-in: what the runtime kernel would unpack from stage one's appended segment."""

from __future__ import annotations

from pathlib import Path

from perceus.agent import handover
from perceus.agent.emulated import unpack_appended


def test_appended_session_key_lands_in_the_runtime_root(tmp_path: Path) -> None:
    initrd = tmp_path / "rootfs.cpio"
    initrd.write_bytes(b"capsule root stream" * 3)  # 57 bytes: the appender pads to 4 first
    before = initrd.stat().st_size
    handover.append_credential(initrd, b"\x01" * 32, b"\x02" * 32)
    root = tmp_path / "root"
    written = unpack_appended(initrd, before, root)
    assert written == [str(handover.SESSION_KEY)]
    assert handover.read_credential(root) == (b"\x01" * 32, b"\x02" * 32)
    assert (root / handover.SESSION_KEY).stat().st_mode & 0o777 == 0o600


def test_nothing_appended_writes_nothing(tmp_path: Path) -> None:
    initrd = tmp_path / "rootfs.cpio"
    initrd.write_bytes(b"x" * 100)
    assert unpack_appended(initrd, 100, tmp_path / "root") == []
    assert not (tmp_path / "root").exists()
