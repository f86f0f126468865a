"""Fixtures for capsule tests: a small root tree with a kernel, built in tmp_path."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest


def make_tree(root: Path, *, files: int = 200, seed: int = 1) -> Path:
    rng = random.Random(seed)
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0-9-amd64").write_bytes(rng.randbytes(300_000))
    (root / "sbin").mkdir()
    (root / "sbin/init").write_text("#!/bin/sh\nexec /bin/sh\n")
    os.chmod(root / "sbin/init", 0o755)
    lib = root / "usr/lib"
    lib.mkdir(parents=True)
    for i in range(files):
        (lib / f"lib{i:04d}.so").write_bytes(rng.randbytes(rng.randint(1, 40_000)) + b"\0" * 10_000)
    (root / "usr/share").mkdir()
    (root / "usr/share/big.dat").write_bytes(rng.randbytes(1_500_000))
    os.symlink("/usr/lib/lib0001.so", root / "usr/abs-link")
    os.symlink("../lib/lib0002.so", root / "usr/share/rel-link")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "chroot")
