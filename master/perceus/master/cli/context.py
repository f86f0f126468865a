"""What every CLI verb gets: paths, config, the store (opened lazily), output and confirmation helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from perceus.errors import UsageError
from perceus.master.bus.control import poke
from perceus.master.config import MasterConfig, NodeDefaults, Paths
from perceus.master.store import NodeStore, open_store


@dataclass
class CliContext:
    """Shared state of one `perceus` invocation."""

    paths: Paths
    json: bool = False
    yes: bool = False
    no: bool = False
    quiet: bool = False
    verbose: bool = False
    debug: bool = False
    by_nodeid: bool = False
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    _store: NodeStore | None = None
    _config: MasterConfig | None = None

    # ------------------------------------------------------------------ resources
    @property
    def config(self) -> MasterConfig:
        if self._config is None:
            self.paths.ensure()
            self._config = MasterConfig.load(self.paths)
        return self._config

    @property
    def defaults(self) -> NodeDefaults:
        return NodeDefaults.load(self.paths)

    @property
    def store(self) -> NodeStore:
        if self._store is None:
            self._store = open_store(self.paths, self.config)
        return self._store

    @contextmanager
    def open_store(self) -> Iterator[NodeStore]:
        """For plug-ins that want a context manager (importers)."""
        yield self.store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def notify(self, cmd: str, **args: Any) -> dict[str, Any] | None:
        """Poke the running perceus-bus (if any) after a change; never fails the command."""
        try:
            return poke(self.paths.control_socket, cmd, timeout=1.0, **args)
        except Exception:  # noqa: BLE001 - an error boundary: any failure here is one line and the caller goes on
            return None

    # ------------------------------------------------------------------ output
    def out(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def info(self, text: str) -> None:
        """Informational text (suppressed by -q), as the original's iprint."""
        if not self.quiet:
            print(text, file=self.stdout)

    def warn(self, text: str) -> None:
        if not self.quiet:
            print(f"perceus: warning: {text}", file=self.stderr)

    def emit_json(self, data: Any) -> None:
        json.dump(data, self.stdout, indent=2, sort_keys=False, default=str)
        self.stdout.write("\n")

    # ------------------------------------------------------------------ confirmation
    def confirm(self, question: str, rows: Sequence[str] = ()) -> bool:
        """Destructive verbs: -y answers yes, -n no; a TTY is asked; anything else needs --yes."""
        if self.no:
            return False
        if self.yes:
            return True
        if not self.stdin.isatty():
            raise UsageError(f"confirmation needed ({question}); pass -y/--yes when stdin is not a terminal")
        for row in rows:
            print(f"   {row}", file=self.stdout)
        while True:
            print(f"{question} [yes/no]> ", end="", file=self.stdout, flush=True)
            answer = self.stdin.readline()
            if not answer:
                return False
            answer = answer.strip().lower()
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False
