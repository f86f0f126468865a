"""Child processes the lab started, stopped by pid and only by pid."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO


class ManagedProcess:
    """One process the lab started; ``stop()`` signals exactly this pid, never a name."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin: int | IO[bytes] | None = subprocess.DEVNULL,
        stdout: int | IO[bytes] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self._log_fh = log.open("ab") if log is not None else None
        out = stdout if stdout is not None else (self._log_fh or subprocess.DEVNULL)
        # A new session: a Ctrl-C in the terminal reaches only us, and we tear
        # children down in order instead of racing them.
        self.popen: subprocess.Popen[bytes] = subprocess.Popen(
            self.argv,
            stdin=stdin,
            stdout=out,
            stderr=self._log_fh or subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit status."""
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
            except ProcessLookupError:
                pass
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        return self.popen.returncode

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.popen.pid})"
