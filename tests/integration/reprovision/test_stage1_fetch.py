"""provisiond's half of `reprovision` against the bus's real HTTP boot server on 127.0.0.1: every stage-one
file is checked (size, SHA-256) before anything is loaded, the initramfs files are joined 4-aligned, and the
re-entered stage one's key is appended where the kernel (and the fleet emulator) unpacks it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from perceus.agent import handover
from perceus.agent.emulated import unpack_appended
from perceus.agent.reprovision import prepare
from perceus.errors import CapsuleError
from perceus.master.netmgr.http_boot import BootHttpServer
from perceus.protocol.messages import BootFile, Reprovision


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "tftp"
    root.mkdir()
    (root / "vmlinuz").write_bytes(os.urandom(300_001))
    (root / "stage1.cpio.zst").write_bytes(os.urandom(1_000_003))  # odd sizes: the joins must pad
    (root / "keys.cpio").write_bytes(os.urandom(512))
    server = BootHttpServer(root, ("127.0.0.1", 0))
    server.start()
    yield server.url, root
    server.close()


def _file(base: str, root: Path, name: str, **override: object) -> BootFile:
    data = (root / name).read_bytes()
    fields: dict[str, object] = {"url": f"{base}/{name}", "sha256": hashlib.sha256(data).hexdigest(),
                                 "size": len(data)}  # fmt: skip
    fields.update(override)
    return BootFile(**fields)  # type: ignore[arg-type]


def _msg(kernel: BootFile, *initrds: BootFile) -> Reprovision:
    words = "console=ttyS0 quiet perceus.master=10.0.0.1:9987 perceus.masterkey=" + "ee" * 32
    return Reprovision(job="j1", node="52:54:00:00:00:01", kernel=kernel, initrds=initrds, cmdline=words)


def test_verified_files_become_one_initrd_with_the_session_key_appended(served: tuple[str, Path],
                                                                        tmp_path: Path) -> None:  # fmt: skip
    base, root = served
    msg = _msg(_file(base, root, "vmlinuz"), _file(base, root, "stage1.cpio.zst"), _file(base, root, "keys.cpio"))
    got = prepare(msg, tmp_path / "work")
    assert got.kernel.read_bytes() == (root / "vmlinuz").read_bytes()
    image = got.initrd.read_bytes()
    first = (root / "stage1.cpio.zst").read_bytes()
    second_at = len(first) + (-len(first) % 4)
    assert image[: len(first)] == first and image[len(first) : second_at] == b"\0" * (second_at - len(first))
    assert image[second_at : second_at + 512] == (root / "keys.cpio").read_bytes()
    assert got.image_bytes == second_at + 512 and len(image) > got.image_bytes
    # What a kernel (or the emulator) unpacks from the appended segment is the re-entry key, 0600.
    unpack = tmp_path / "stage1-root"
    assert unpack_appended(got.initrd, got.image_bytes, unpack) == [str(handover.SESSION_KEY)]  # files only
    key = unpack / handover.SESSION_KEY
    assert key.stat().st_mode & 0o777 == 0o600
    pair = handover.read_credential(unpack)
    assert pair is not None and pair[0].hex() == got.next_key
    # The message's master key is never taken: the node keeps the one it trusts (none in this test process).
    assert "perceus.masterkey" not in got.cmdline and got.cmdline.startswith("console=ttyS0 quiet")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"sha256": "00" * 32}, "SHA-256"),
        ({"size": 300_000}, "longer than the 300000 bytes"),
        ({"size": 300_002}, "300001 bytes, 300002 announced"),
        ({"url": "ftp://127.0.0.1/vmlinuz"}, "only http:// and https://"),
        ({"size": 0}, "not acceptable"),
    ],
)
def test_a_file_that_is_not_the_announced_one_is_refused(served: tuple[str, Path], tmp_path: Path,
                                                         change: dict[str, object], error: str) -> None:  # fmt: skip
    base, root = served
    msg = _msg(_file(base, root, "vmlinuz", **change), _file(base, root, "stage1.cpio.zst"))
    with pytest.raises(CapsuleError, match=error):
        prepare(msg, tmp_path / "work")


def test_a_missing_file_is_refused(served: tuple[str, Path], tmp_path: Path) -> None:
    base, root = served
    gone = BootFile(url=f"{base}/nope", sha256="00" * 32, size=10)
    with pytest.raises(CapsuleError, match="HTTP 404"):
        prepare(_msg(_file(base, root, "vmlinuz"), gone), tmp_path / "work")
