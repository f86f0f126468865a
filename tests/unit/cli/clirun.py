"""Run `perceus` through main(argv) with captured streams (shared by the CLI table tests of issue 17)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import Paths


@dataclass
class Run:
    code: int
    out: str
    err: str


class Terminal(io.StringIO):
    """A stdin that says it is a terminal (the prompts of `vnfs import` / `vnfs configure`)."""

    def isatty(self) -> bool:
        return True


def run(paths: Paths, *argv: str, stdin: str = "", tty: bool = False) -> Run:
    out, err = io.StringIO(), io.StringIO()
    ctx = CliContext(paths=paths, stdin=(Terminal if tty else io.StringIO)(stdin), stdout=out, stderr=err)
    code = main(list(argv), context=ctx)
    return Run(code, out.getvalue(), err.getvalue())
