"""Shell words as sh splits them: quotes, backslash escapes (also `\\$` `\\`` in double quotes), # comments."""

from __future__ import annotations

_DOUBLE_QUOTE_ESCAPES = '$`"\\\n'


def shell_words(line: str) -> list[str] | None:
    """The words of one command line; None when a quote is left open."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch in " \t\n":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
        elif ch == "#" and not in_word:
            break
        elif ch == "\\":
            if i + 1 < len(line):
                word.append(line[i + 1])
                i += 1
            in_word = True
        elif ch == "'":
            end = line.find("'", i + 1)
            if end < 0:
                return None
            word.append(line[i + 1 : end])
            i, in_word = end, True
        elif ch == '"':
            i += 1
            while i < len(line) and line[i] != '"':
                if line[i] == "\\" and i + 1 < len(line) and line[i + 1] in _DOUBLE_QUOTE_ESCAPES:
                    i += 1
                word.append(line[i])
                i += 1
            if i >= len(line):
                return None
            in_word = True
        else:
            word.append(ch)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(word))
    return words
