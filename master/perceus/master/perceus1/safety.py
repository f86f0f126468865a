"""Is the original perceusd still running?  A listener on TCP 987 (any address) says so.

Read from /proc/net/tcp{,6} rather than by connecting: a connect would make the old daemon log a bogus
request, and the listener may be bound to the master NIC's address only.
"""

from __future__ import annotations

from pathlib import Path

PERCEUSD_PORT = 987
_LISTEN = "0A"


def listening(port: int, proc: Path = Path("/proc/net")) -> bool:
    """True when some socket on this host listens on TCP `port`."""
    for name in ("tcp", "tcp6"):
        try:
            lines = (proc / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False
