"""Start a `perceus-web` process and talk to it (tests, benchmarks, the demo) — stdlib HTTP only."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perceus.master.config import Paths
from perceus.web.auth import Tokens, tokens_path


@dataclass
class RunningWeb:
    """A perceus-web subprocess, its base URL and tokens."""

    paths: Paths
    proc: subprocess.Popen[bytes]
    url: str
    tokens: Tokens
    log: Path
    cafile: str | None = None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def request(
        self,
        path: str,
        *,
        token: str | None = None,
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers with lower-case names, body); HTTP errors are answers, not exceptions."""
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)  # noqa: S310 - a URL on a fixed http(s) base
        context = ssl.create_default_context(cafile=self.cafile) if self.url.startswith("https:") else None
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:  # noqa: S310 - a URL on a fixed http(s) base
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()

    def get_json(self, path: str, token: str | None = None) -> Any:
        status, _, body = self.request(path, token=token or self.tokens.read)
        if status != 200:
            raise AssertionError(f"GET {path}: {status} {body[:300]!r}")
        return json.loads(body)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_web(
    paths: Paths, *extra: str, timeout: float = 20.0, env: dict[str, str] | None = None, cafile: str | None = None
) -> RunningWeb:
    """`python -m perceus.web` on 127.0.0.1, any free port; returns once it answers."""
    from perceus.lab.bus import python_env

    paths.ensure()
    url_file = paths.run / f"web-{time.monotonic_ns()}.url"
    log = paths.logs / f"web-{time.monotonic_ns()}.log"
    dirs = ["--config-dir", str(paths.config_dir), "--state-dir", str(paths.state_dir)]
    argv = [sys.executable, "-m", "perceus.web", *dirs, "--port", "0", "--url-file", str(url_file), *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env or python_env())
    deadline = time.monotonic() + timeout
    while not url_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"perceus-web did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    url = url_file.read_text().strip()
    tokens = Tokens.load_or_create(tokens_path(paths))
    web = RunningWeb(paths, proc, url, tokens, log, cafile)
    while True:  # the socket is bound before the URL is written; wait for the app itself
        try:
            web.request("/openapi.json", timeout=2)
            return web
        except OSError:
            if time.monotonic() > deadline:
                web.stop()
                raise RuntimeError(f"perceus-web does not answer: {log.read_text(errors='replace')[-2000:]}") from None
            time.sleep(0.05)
