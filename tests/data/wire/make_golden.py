"""Write golden frames for messages that have none yet.  Existing files are never rewritten: they are
what older agents and masters send, and must decode forever."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[3] / d) for d in ("agent", "tests/unit/protocol")]

from test_codec import EXAMPLES  # noqa: E402

from perceus.protocol import codec  # noqa: E402

out = Path(__file__).parent / "v1"
out.mkdir(exist_ok=True)
for name, msg in EXAMPLES.items():
    target = out / f"{name}.msgpack"
    if not target.exists():
        target.write_bytes(codec.encode(msg))
        print("wrote", target)
