"""Hypothesis: random input never crashes a parser; problems only ever come back as reported errors."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perceus.importers import registry
from perceus.importers.records import ParseOptions

# Text built from the characters the formats care about, so random input reaches deep into the parsers.
_ALPHABET = st.sampled_from(
    [
        *list("abcdef0123456789:.-=,;{}[]()\"'#/*<>?| \t\n\r\\"),
        "host ",
        "hardware ethernet ",
        "INSERT INTO nodes VALUES ",
        "DHCPDISCOVER from ",
        "Dhcp4",
        "nodes:\n  ",
        "Object name: ",
        "dhcp-host=",
        '<?include "x"?>',
        'include "x";',
        "= INTEGER: ",
        ".1.3.6.1.2.1.17.7.1.2.2.1.2.",
        "\x00",
        "ÿ",
        "é",
    ]
)
_TEXT = st.lists(_ALPHABET, max_size=80).map("".join)


def _parse_all(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input"
        path.write_bytes(data)
        for name in registry.FORMATS:
            _, result = registry.parse(name, [str(path)], ParseOptions())
            for problem in [*result.errors, *result.skipped]:
                assert problem.where.line >= 0 and problem.reason


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT)
def test_random_text_never_crashes(text: str) -> None:
    _parse_all(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    _parse_all(data)


@settings(max_examples=30, deadline=None)
@given(_TEXT, st.integers(min_value=0, max_value=200))
def test_cut_gzip_is_reported_not_raised(text: str, cut: int) -> None:
    blob = gzip.compress(text.encode())
    _parse_all(blob[: min(cut, len(blob))])


@pytest.mark.parametrize("name", sorted(registry.FORMATS))
def test_empty_file_is_no_nodes(name: str, tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    _, result = registry.parse(name, [str(path)], ParseOptions())
    assert result.nodes == []
