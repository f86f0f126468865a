"""Stage one → provisiond hand-over: the session credential inside the runtime initramfs (never on the kernel
command line), and the hand-over words placed before a capsule's `--`."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from perceus.agent import handover, security
from perceus.agent.bus import new_keypair
from perceus.agent.cmdline import parse
from perceus.agent.runtime import Options, Runtime
from perceus.agent.stage1 import kexec_cmdline
from perceus.master.capsule.cpio_reader import members


def _entries(data: bytes) -> dict[str, tuple[int, bytes]]:
    out = {}
    for member, fh in members(io.BytesIO(data), "test"):
        out[member.name] = (member.mode, fh.read() if fh is not None else b"")
    return out


def test_archive_holds_the_key_file_root_only() -> None:
    public, secret = new_keypair()
    data = handover.archive({str(handover.SESSION_KEY): (0o600, handover.credential_text(public, secret))})
    entries = _entries(data)
    mode, text = entries["etc/perceus/session.key"]
    assert mode & 0o777 == 0o600
    assert handover.parse_credential(text.decode()) == (public, secret)
    assert "etc/perceus" in entries and len(data) % 512 == 0


def test_append_pads_the_image_and_provisiond_reads_it_back(tmp_path: Path) -> None:
    public, secret = new_keypair()
    initrd = tmp_path / "rootfs.cpio"
    original = os.urandom(1001)  # not 4-byte aligned: the kernel needs the next segment aligned
    initrd.write_bytes(original)
    handover.append_credential(initrd, public, secret)
    data = initrd.read_bytes()
    assert data.startswith(original) and data[1001:1004] == b"\0\0\0" and data[1004:1010] == b"070701"
    root = tmp_path / "root"
    for name, (mode, body) in _entries(data[1004:]).items():
        if not body and name != str(handover.SESSION_KEY):
            (root / name).mkdir(parents=True, exist_ok=True)
            continue
        (root / name).write_bytes(body)
        (root / name).chmod(mode & 0o777)
    assert handover.read_credential(root) == (public, secret)


def test_a_symlinked_credential_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "etc/perceus").mkdir(parents=True)
    public, secret = new_keypair()
    (tmp_path / "elsewhere").write_bytes(handover.credential_text(public, secret))
    (tmp_path / handover.SESSION_KEY).symlink_to(tmp_path / "elsewhere")
    assert handover.read_credential(tmp_path) is None


def test_provisiond_talks_with_the_handed_over_key(tmp_path: Path) -> None:
    public, secret = new_keypair()
    (tmp_path / "etc/perceus").mkdir(parents=True)
    (tmp_path / handover.SESSION_KEY).write_bytes(handover.credential_text(public, secret))
    security.use(security.Trust(bytes(32), None, "test"))
    try:
        rt = Runtime(parse("perceus.mode=runtime perceus.master=127.0.0.1:1 perceus.node=52:54:00:00:00:01"),
                     Options(root=tmp_path))  # fmt: skip
        try:
            assert rt.curve is not None and rt.curve.public_key == public
        finally:
            rt.close()
    finally:
        security.use(None)


@pytest.mark.parametrize("base", ["quiet -- single", "root=/dev/ram0 --", "-- init=/bin/sh"])
def test_handover_words_go_before_the_double_dash(base: str) -> None:
    key = bytes(range(32))
    trust = security.Trust(key, key, "test")
    security.use(trust)
    try:
        line = kexec_cmdline(base, parse("perceus.master=10.0.0.1"), "52:54:00:00:00:01", None, None)
    finally:
        security.use(None)
    words = line.split()
    cut = words.index("--")
    assert "perceus.mode=runtime" in words[:cut] and f"perceus.masterkey={key.hex()}" in words[:cut]
    assert words[cut:] == base.split()[base.split().index("--") :]
    assert security.discover(line).bus_key == key  # provisiond reads the key it was handed
