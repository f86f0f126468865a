"""Shell words as sh splits them (rocks dump lines)."""

from __future__ import annotations

import pytest

from perceus.importers.shellwords import shell_words


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("rocks add host c-0-0 membership=Compute", ["rocks", "add", "host", "c-0-0", "membership=Compute"]),
        ('a "b c" d', ["a", "b c", "d"]),
        ("a 'b \\\" c'", ["a", 'b \\" c']),  # nothing escapes inside single quotes
        ('x "say \\"hi\\" \\$HOME \\q"', ["x", 'say "hi" $HOME \\q']),  # \\q is kept, as sh keeps it
        ("compute\\-0\\-2 a\\ b", ["compute-0-2", "a b"]),
        ('membership="Compute" # a comment', ["membership=Compute"]),
        ("a#b c", ["a#b", "c"]),  # '#' starts a comment only at the start of a word
        ('mac="00:11"x', ["mac=00:11x"]),
        ("", []),
    ],
)
def test_words(line: str, words: list[str]) -> None:
    assert shell_words(line) == words


@pytest.mark.parametrize("line", ['a "open', "a 'open"])
def test_unclosed_quote(line: str) -> None:
    assert shell_words(line) is None
