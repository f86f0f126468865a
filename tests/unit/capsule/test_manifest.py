"""Manifest format: encode → decode round trip, hash binding, hostile input, command line."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perceus.errors import CapsuleError
from perceus.protocol.capsule import (
    Blob,
    ChunkRef,
    decode_manifest,
    digest,
    encode_manifest,
    kernel_cmdline,
    verify_chunk,
)

H = "ab" * 32


def sample(**over: object) -> bytes:
    ref = ChunkRef(H, 10, 20)
    args: dict[str, object] = dict(
        name="deb", version=3, created=1.5, type="stateless", kernel=Blob(H, 20, (ref,)), initrd=None,
        rootfs=Blob(H, 40, (ref, ref)), chunk_size=2 << 20, kexec_args="", kernel_args="quiet console=tty0",
        console="ttyS0,115200",
    )  # fmt: skip
    args.update(over)
    return encode_manifest(**args)  # type: ignore[arg-type]


def test_round_trip_keeps_exact_bytes_and_hash() -> None:
    data = sample()
    m = decode_manifest(data, digest(data))
    assert m.data == data and m.hash == digest(data)
    assert (m.name, m.version, m.type, m.layout) == ("deb", 3, "stateless", "cpio-newc")
    assert m.rootfs.size == 40 and len(m.rootfs.chunks) == 2
    assert [c.hash for c in m.all_chunks()] == [H]  # distinct chunks only
    assert sample() == data  # deterministic encoding


def test_wrong_hash_is_refused_before_decoding() -> None:
    with pytest.raises(CapsuleError, match="manifest hash mismatch"):
        decode_manifest(sample(), "00" * 32)


def test_sizes_must_add_up() -> None:
    with pytest.raises(CapsuleError, match="do not add up"):
        decode_manifest(sample(rootfs=Blob(H, 41, (ChunkRef(H, 10, 20), ChunkRef(H, 10, 20)))))


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda b: b.update(format=2), "format 2 is not supported"),
        (lambda b: b.update(type="diskless"), "type 'diskless'"),
        (lambda b: b["kernel"].update(hash="zz"), "not a BLAKE3 hex digest"),
        (lambda b: b["rootfs"].update(layout="tar"), "layout 'tar'"),
        (lambda b: b["rootfs"]["chunks"][0].update(size=-1), "out of range"),
        (lambda b: b.update(config=[]), "config: expected a map"),
    ],
)
def test_invalid_fields(mutate: object, error: str) -> None:
    body = msgpack.unpackb(sample())
    mutate(body)  # type: ignore[operator]
    with pytest.raises(CapsuleError, match=error):
        decode_manifest(msgpack.packb(body))


@given(st.binary(max_size=512))
def test_random_bytes_raise_only_capsule_error(data: bytes) -> None:
    try:
        decode_manifest(data)
    except CapsuleError:
        pass


def test_verify_chunk_checks_size_and_hash() -> None:
    data = b"x" * 10
    ref = ChunkRef(digest(data), 10, 10)
    assert verify_chunk(ref, data)
    assert not verify_chunk(ref, b"y" * 10)
    assert not verify_chunk(ref, data + b"!")


def test_cmdline_console_replaces_and_extra_appends() -> None:
    m = decode_manifest(sample())
    line = kernel_cmdline(m, extra=("perceus.master=10.0.0.1:9987",))
    assert line == "quiet console=ttyS0,115200 perceus.master=10.0.0.1:9987"
