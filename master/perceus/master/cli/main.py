"""`perceus` entry point: global options anywhere on the line (as Perceus 1.x's Getopt bundling), noun
modules registered in order, one-line errors: `perceus: error: …`, exit 2 for usage and 1 otherwise."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from perceus import logsetup
from perceus.agent import __version__
from perceus.errors import PerceusError, UsageError
from perceus.master.cli import (
    completion,
    configure,
    contact,
    demo,
    group,
    helptext,
    import_,
    info,
    init,
    lab,
    module,
    node,
    stage1,
    vnfs,
)
from perceus.master.cli.context import CliContext
from perceus.master.cli.info import ABOUT
from perceus.master.config import Paths

# The noun modules, in `perceus --help` order; each has `register(subparsers)`.
NOUNS = (node, group, vnfs, module, info, configure, contact, init, import_, stage1, demo, lab)
_FLAGS = {
    "i": "by_nodeid",
    "y": "yes",
    "n": "no",
    "q": "quiet",
    "v": "verbose",
    "d": "debug",
    "e": "embedded",
}
_LONG = {
    "--nodeid": "by_nodeid",
    "--yes": "yes",
    "--no": "no",
    "--quiet": "quiet",
    "--verbose": "verbose",
    "--debug": "debug",
    "--embeded": "embedded",
    "--embedded": "embedded",
    "--json": "json",
}


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing multi-line usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def split_globals(argv: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Pull global flags out of argv wherever they stand (until a bare `--`)."""
    flags: dict[str, Any] = {}
    rest: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in _LONG:
            flags[_LONG[arg]] = True
        elif arg in ("--config-dir", "--state-dir") and i + 1 < len(args):
            flags[arg[2:].replace("-", "_")] = args[i + 1]
            i += 1
        elif arg.startswith(("--config-dir=", "--state-dir=")):
            key, _, value = arg.partition("=")
            flags[key[2:].replace("-", "_")] = value
        elif len(arg) > 1 and arg[0] == "-" and arg[1] != "-" and all(c in _FLAGS for c in arg[1:]):
            for c in arg[1:]:
                flags[_FLAGS[c]] = True
        else:
            rest.append(arg)
        i += 1
    return flags, rest


def build_parser() -> Parser:
    parser = Parser(
        prog="perceus",
        description="Perceus cluster provisioning. Global options (anywhere): -i/--nodeid, -y/--yes, -n/--no, "
        "-q/--quiet, -v/--verbose, -d/--debug, -e (= -y -q), --json, --config-dir DIR, --state-dir DIR.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="noun", metavar="<command>", parser_class=Parser)
    for noun in NOUNS:
        noun.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, context: CliContext | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    flags, rest = split_globals(argv)
    if flags.get("embedded"):
        flags["yes"] = flags["quiet"] = True
    ctx = context or CliContext(paths=Paths.resolve(flags.get("config_dir"), flags.get("state_dir")))
    if context is not None and ("config_dir" in flags or "state_dir" in flags):
        ctx.paths = Paths.resolve(flags.get("config_dir"), flags.get("state_dir"))
    for key in ("json", "yes", "no", "quiet", "verbose", "debug", "by_nodeid"):
        if flags.get(key):
            setattr(ctx, key, True)
    logsetup.configure(level="debug" if ctx.debug else ("info" if ctx.verbose else "warning"), stream=ctx.stderr)
    try:
        parser = build_parser()
        completion.autocomplete(parser, ctx)  # bash TAB: answers and exits when _ARGCOMPLETE is set
        text = helptext.requested(parser, rest)  # `perceus <command> [<sub>] help`, as 1.x, and --help
        if text is not None:
            ctx.out(text.rstrip("\n"))
            return 0
        ns = parser.parse_args(rest)
        if ns.version:
            ctx.out(f"Version={__version__}")
            return 0
        if ns.noun is None:
            ctx.out(ABOUT)
            return 0
        func = getattr(ns, "func", None)
        if func is None:
            raise UsageError(f"perceus {ns.noun}: missing subcommand (see 'perceus {ns.noun} --help')")
        return int(func(ctx, ns))
    except PerceusError as exc:
        print(f"perceus: error: {exc}", file=ctx.stderr)
        if ctx.debug:
            import traceback

            traceback.print_exc(file=ctx.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("perceus: error: interrupted", file=ctx.stderr)
        return 130
    except BrokenPipeError:
        return 1
    finally:
        ctx.close()


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
