"""`perceus help`, `perceus <command> help`, `perceus <command> <sub> help` print the `--help` text, exit 0;
`perceusd`'s 1.x flags map onto perceus-bus."""

from __future__ import annotations

import pytest
from tests.unit.cli.clirun import run

from perceus.master.config import Paths
from perceus.master.perceusd import translate

# (1.x spelling, the --help spelling, a line the help must contain)
HELP = [
    (["help"], ["--help"], "usage: perceus [-h] [--version] <command> ..."),
    (["node", "help"], ["node", "--help"], "usage: perceus node [-h] <subcommand> ..."),
    (["vnfs", "help"], ["vnfs", "--help"], "usage: perceus vnfs [-h] <subcommand> ..."),
    (["node", "set", "help"], ["node", "set", "--help"], "usage: perceus node set [-h] KEY VALUE NODE"),
    (["vnfs", "import", "help"], ["vnfs", "import", "-h"], "usage: perceus vnfs import [-h]"),
    (["module", "activate", "help"], ["module", "activate", "--help"], "usage: perceus module activate"),
    (["help", "info"], ["info", "--help"], "usage: perceus info [-h]"),
    (["-q", "group", "help"], ["group", "-h"], "usage: perceus group [-h]"),
]


@pytest.mark.parametrize(("legacy", "dashed", "line"), HELP)
def test_help_word_prints_the_same_as_dash_help(paths: Paths, legacy: list[str], dashed: list[str], line: str) -> None:
    before = sorted(p.name for p in paths.state_dir.iterdir())
    a, b = run(paths, *legacy), run(paths, *dashed)
    assert (a.code, a.err) == (0, "") and (b.code, b.err) == (0, "")
    assert a.out == b.out
    assert line in a.out
    assert sorted(p.name for p in paths.state_dir.iterdir()) == before  # help changes nothing


def test_help_as_a_value_is_a_value(paths: Paths) -> None:
    result = run(paths, "-y", "node", "set", "desc", "help", "nosuch")
    assert result.code == 1
    assert "node 'nosuch' does not exist" in result.err


PERCEUSD = [
    (["--debug", "--foreground"], ["--debug", "--foreground"], []),
    (["--debug"], ["--debug"], []),
    (["-v"], ["--foreground"], []),
    (["-s"], ["--foreground"], ["perceusd: note: -s: statistics are in `perceus info` (no periodic status print)"]),
    (
        ["-t", "10", "--foreground", "--config-dir", "/x"],
        ["--foreground", "--config-dir", "/x"],
        ["perceusd: note: -t 10: the 1.x loop tick has no counterpart in perceus-bus (ignored)"],
    ),
    ([], [], []),
]


@pytest.mark.parametrize(("argv", "bus_argv", "notes"), PERCEUSD)
def test_perceusd_flags(argv: list[str], bus_argv: list[str], notes: list[str]) -> None:
    assert translate(argv) == (bus_argv, notes)
