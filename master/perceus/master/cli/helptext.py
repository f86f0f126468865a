"""`perceus help`, `perceus <command> help`, `perceus <command> <sub> help` (the 1.x habit) and `--help`.

Both spellings print the same text, the help of the deepest command named, on the CLI's stdout, exit 0.
A `help` that is a value (`perceus node set desc help n0000`) is left to the parser.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def children(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-command parsers of `parser` by name (aliases included)."""
    out: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:  # argparse keeps sub-parsers only here
        if isinstance(action, argparse._SubParsersAction):
            out.update(action.choices)
    return out


def requested(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    """The help text `argv` asks for, or None when it asks for none."""
    words = list(argv)
    if "--" in words:
        words = words[: words.index("--")]
    if not words:
        return None
    dashed = "-h" in words or "--help" in words
    if dashed:
        words = [w for w in words if w not in ("-h", "--help")]
    elif words[-1] == "help":
        words = words[:-1]
    elif words[0] == "help":
        words = words[1:]
    else:
        return None
    current = parser
    for word in words:
        if word.startswith("-"):
            continue
        sub = children(current).get(word)
        if sub is None:
            if dashed:
                break  # `perceus node set debug 1 n0000 --help`: the help of `node set`
            return None
        current = sub
    return current.format_help()
