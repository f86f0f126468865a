"""Unit tier: pure code only.  The tripwire fails any test that starts a subprocess (house style)."""

from __future__ import annotations

import subprocess
from typing import Any, NoReturn

import pytest


@pytest.fixture(autouse=True)
def no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def tripwire(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError(f"unit tests must not start processes: {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess.Popen, "__init__", tripwire)
