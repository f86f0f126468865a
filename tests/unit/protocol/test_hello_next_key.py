"""`Hello.next_key` (issue 14) is an optional field: old frames decode with it empty, the new golden frame with it."""

from __future__ import annotations

from pathlib import Path

from perceus.protocol import codec
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Hello

GOLDEN = Path(__file__).parents[2] / "data" / "wire" / "v1"


def test_old_hello_frame_has_no_next_key() -> None:
    msg = codec.decode((GOLDEN / "hello.msgpack").read_bytes())
    assert isinstance(msg, Hello) and msg.next_key == ""


def test_hello_with_next_key_golden_frame() -> None:
    msg = codec.decode((GOLDEN / "hello_next_key.msgpack").read_bytes())
    assert msg == Hello(rid=1, macs=("52:54:00:12:34:56",), state="init", stage=Stage.STAGE1, boot_id="b2",
                        agent_version="2.0.0", seq=1, next_key="ab" * 32)  # fmt: skip
