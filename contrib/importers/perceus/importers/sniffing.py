"""Scoring helpers for `auto`: each format rates a file's head from 0 (not me) to 100 (certainly me)."""

from __future__ import annotations

import re


def content_lines(text: str) -> list[str]:
    """Non-blank lines that are not `#` comments."""
    return [line for line in text.split("\n") if line.strip() and not line.lstrip().startswith("#")]


def share_of_lines(text: str, pattern: str, *, weight: int = 80) -> int:
    """`weight` scaled by the share of content lines matching `pattern` (0 when fewer than half do)."""
    lines = content_lines(text)
    if not lines:
        return 0
    regex = re.compile(pattern)
    share = sum(1 for line in lines if regex.search(line)) / len(lines)
    return int(weight * share) if share >= 0.5 else 0


def has(text: str, pattern: str, score: int, flags: int = re.MULTILINE) -> int:
    """`score` when `pattern` occurs anywhere in the head, else 0."""
    return score if re.search(pattern, text, flags) else 0
