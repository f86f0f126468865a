"""`perceusd`: the 1.x daemon name and flags (1.x ref §5.1) in front of `perceus-bus`.

`perceusd --debug --foreground` (the FAQ's debugging advice) works as it did.  1.x flags map onto perceus-bus:
`--debug` (debug log, foreground), `--foreground`, `-v/--verbose` (foreground), `-s/--statistics`
(foreground; the counters are in `perceus info` and the bus's `security`/`ping` control replies) and
`-t/--timeout SECONDS`, which paced 1.x's select() loop and has no counterpart in an event loop: it is
accepted with a one-line note, never silently.  Every perceus-bus option passes through unchanged.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from perceus.master import busd

NOTE = "perceusd: note: {what}"


def translate(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """1.x perceusd argv → (perceus-bus argv, notes to print)."""
    p = argparse.ArgumentParser(prog="perceusd", add_help=False)
    p.add_argument("--debug", action="store_true")
    p.add_argument("--foreground", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("-s", "--statistics", action="store_true")
    p.add_argument("-t", "--timeout", type=float)
    known, rest = p.parse_known_args(list(argv))
    out: list[str] = []
    notes: list[str] = []
    if known.debug:
        out.append("--debug")
    if known.foreground or known.verbose or known.statistics:
        out.append("--foreground")
    if known.statistics:
        notes.append(NOTE.format(what="-s: statistics are in `perceus info` (no periodic status print)"))
    if known.timeout is not None:
        notes.append(
            NOTE.format(what=f"-t {known.timeout:g}: the 1.x loop tick has no counterpart in perceus-bus (ignored)")
        )
    return out + rest, notes


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print("usage: perceusd [--debug] [--foreground] [-v] [-s] [-t SECONDS] [perceus-bus options]")
        print("The Perceus 1.x daemon name: runs perceus-bus.  perceus-bus options:\n")
        busd.parse_args(["--help"])  # prints perceus-bus's help and exits 0
    bus_argv, notes = translate(args)
    for note in notes:
        print(note, file=sys.stderr)
    return busd.main(bus_argv)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
