"""perceus-web for a lab: in the namespace beside perceus-bus, reachable from the host through a PortForward."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from perceus.lab.bus import python_env
from perceus.lab.forward import PortForward
from perceus.lab.lab import Lab
from perceus.lab.netns import LabError
from perceus.lab.procs import ManagedProcess
from perceus.master.config import Paths
from perceus.web.auth import Tokens, tokens_path


@dataclass
class LabWeb:
    """The dashboard of a lab's master: its process, the host-side URL and the tokens."""

    process: ManagedProcess
    forward: PortForward
    tokens: Tokens

    @property
    def url(self) -> str:
        return self.forward.url

    def login_url(self, *, admin: bool = True) -> str:
        return f"{self.url}/login?token={quote(self.tokens.admin if admin else self.tokens.read)}"

    def close(self) -> None:
        self.forward.close()


def start_web(lab: Lab, paths: Paths, *, interval: float = 0.5, timeout: float = 30) -> LabWeb:
    """Start perceus-web in `lab`'s namespace on its 127.0.0.1 (any free port); forward a host port to it."""
    url_file = paths.run / "web.url"
    url_file.unlink(missing_ok=True)
    dirs = ["--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir)]
    argv = [
        sys.executable,
        "-m",
        "perceus.web",
        *dirs,
        "--port",
        "0",
        "--url-file",
        str(url_file),
        "--interval",
        str(interval),
    ]
    proc = lab.spawn("perceus-web", argv, env=python_env())
    deadline = time.monotonic() + timeout
    while not url_file.exists():
        if not proc.running() or time.monotonic() > deadline:
            tail = proc.log.read_text(errors="replace")[-2000:] if proc.log and proc.log.exists() else ""
            raise LabError(f"perceus-web did not start in {lab.name}: {tail}")
        time.sleep(0.1)
    inside = urlsplit(url_file.read_text().strip())
    forward = PortForward(lab.name, inside.hostname or "127.0.0.1", inside.port or 0)
    return LabWeb(proc, forward, Tokens.load_or_create(tokens_path(paths)))
