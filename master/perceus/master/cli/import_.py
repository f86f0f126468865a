"""`perceus import <format> FILE…`: node importers (contrib) and the Perceus 1.x upgrade (`perceus1`)."""

from __future__ import annotations

import argparse
from typing import Any

from perceus.errors import UsageError
from perceus.master.cli.context import CliContext


def register(sub: Any) -> None:
    try:
        from perceus.importers import cli as importers_cli
    except ImportError:
        importers_cli = None  # type: ignore[assignment]
    try:
        from perceus.master.perceus1 import cli as perceus1_cli
    except ImportError:
        perceus1_cli = None  # type: ignore[assignment]
    if importers_cli is None and perceus1_cli is None:
        return
    if importers_cli is not None:
        importers_cli.add_parser(sub)
        parser = sub.choices["import"]
    else:
        parser = sub.add_parser("import", help="import nodes / upgrade from Perceus 1.x")
    if perceus1_cli is not None:
        _attach_perceus1(parser, perceus1_cli)

    def run(ctx: CliContext, ns: argparse.Namespace) -> int:
        if getattr(ns, "format", None) == "perceus1" and perceus1_cli is not None:
            return int(perceus1_cli.run(ctx, ns))
        assert importers_cli is not None
        if not getattr(ns, "files", None):
            raise UsageError(f"perceus import {getattr(ns, 'format', '')}: no input FILE given")
        return int(importers_cli.run(ns, ctx.open_store))

    parser.set_defaults(func=run)


def _attach_perceus1(parser: argparse.ArgumentParser, perceus1_cli: Any) -> None:
    hook = getattr(perceus1_cli, "attach", None)
    if hook is not None:
        hook(parser)
