"""Parsing apt output and finding the kernel release in an extracted package (no apt run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.stage1.kernel import KernelPackage, parse_depends, parse_version, release_of

SHOW_META = """\
Package: linux-image-amd64
Source: linux-signed-amd64 (6.1.192+3)
Version: 6.1.192-3
Depends: linux-image-6.1.0-57-amd64 (= 6.1.192-3)
Description: Linux for 64-bit PCs (meta-package)
"""


def test_parse_depends_gives_name_and_exact_version() -> None:
    assert parse_depends(SHOW_META) == KernelPackage("linux-image-6.1.0-57-amd64", "6.1.192-3")


def test_parse_depends_without_version() -> None:
    text = "Depends: linux-image-6.1.0-99-amd64\n"
    assert parse_depends(text) == KernelPackage("linux-image-6.1.0-99-amd64", "")


def test_parse_depends_with_alternatives() -> None:
    text = "Depends: initramfs-tools | linux-initramfs-tool, linux-image-6.1.0-57-amd64 (= 6.1.192-3)\n"
    assert parse_depends(text).name == "linux-image-6.1.0-57-amd64"


def test_parse_depends_fails_loudly() -> None:
    with pytest.raises(LookupError):
        parse_depends("Package: foo\n")


def test_parse_version() -> None:
    assert parse_version(SHOW_META) == "6.1.192-3"


def test_release_is_derived_from_the_tree(tmp_path: Path) -> None:
    (tmp_path / "lib/modules/6.1.0-57-amd64").mkdir(parents=True)
    assert release_of(tmp_path) == "6.1.0-57-amd64"
    (tmp_path / "lib/modules/6.1.0-58-amd64").mkdir()
    with pytest.raises(LookupError):
        release_of(tmp_path)
