"""Running build-host tools, with failures turned into one readable BuildError."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from perceus.errors import PerceusError


class BuildError(PerceusError):
    """A step of the stage-one build failed; keeps the command and the tail of its stderr."""

    def __init__(self, step: str, detail: str, *, command: Sequence[str] = ()) -> None:
        super().__init__(f"stage-one build failed at {step}: {detail}")
        self.step = step
        self.detail = detail
        self.command = tuple(command)


def run(args: Sequence[str], *, step: str, cwd: Path | None = None) -> str:
    """Run ``args``; return stdout, or raise BuildError with the last stderr line(s)."""
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, check=False)
    except FileNotFoundError as exc:
        raise BuildError(step, f"{args[0]} is not installed", command=args) from exc
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise BuildError(step, f"{args[0]} exited {proc.returncode}: {tail}", command=args)
    return proc.stdout
