"""`perceus-web`: serve the dashboard, the JSON API and /metrics (127.0.0.1:8987 unless told otherwise)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from perceus.errors import PerceusError, UsageError
from perceus.master.config import MasterConfig, Paths
from perceus.web.auth import Tokens, tokens_path

log = structlog.get_logger("perceus.web")

DEFAULT_PORT = 8987


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="perceus-web", description=__doc__)
    p.add_argument("--config-dir", help="default $PERCEUS_CONFIG_DIR or /etc/perceus")
    p.add_argument("--state-dir", help="default $PERCEUS_STATE_DIR or /var/lib/perceus")
    p.add_argument("--listen", default="127.0.0.1", help="address to bind (default 127.0.0.1: this host only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT}; 0 = any free)")
    p.add_argument("--cert", help="TLS certificate (PEM); with --key the dashboard is served over HTTPS")
    p.add_argument("--key", help="TLS private key (PEM)")
    p.add_argument("--tokens", help="token file (default <config>/web/tokens.json, created 0600 on first start)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between store snapshots while watched")
    p.add_argument(
        "--nice",
        type=int,
        default=10,
        help="lower this process's CPU priority (default 10): under load perceus-bus, not the dashboard, gets the CPU",
    )
    p.add_argument("--print-url", action="store_true", help="print the admin sign-in URL and exit")
    p.add_argument("--url-file", help="write the bound base URL here once listening (tests, the demo)")
    return p


def base_url(host: str, port: int, tls: bool) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(parser().parse_args(argv))
    except PerceusError as exc:
        print(f"perceus-web: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except OSError as exc:
        print(f"perceus-web: error: {exc.strerror or exc}", file=sys.stderr)
        return 1


def run(ns: argparse.Namespace) -> int:
    from perceus.web.pages import login_url

    paths = Paths.resolve(ns.config_dir, ns.state_dir)
    if bool(ns.cert) != bool(ns.key):
        raise UsageError("--cert and --key go together")
    try:
        ipaddress.ip_address(ns.listen)
    except ValueError:
        raise UsageError(f"--listen takes an IP address, not {ns.listen!r}") from None
    tls = bool(ns.cert)
    tokens = Tokens.load_or_create(tokens_path(paths) if not ns.tokens else Path(ns.tokens))
    if ns.print_url:
        print(login_url(base_url(ns.listen, ns.port, tls), tokens.admin))
        return 0
    paths.ensure()
    config = MasterConfig.load(paths)
    return serve(ns, paths, config, tokens, tls)


def serve(ns: argparse.Namespace, paths: Paths, config: MasterConfig, tokens: Tokens, tls: bool) -> int:
    import asyncio
    import socket

    import uvicorn

    from perceus.master.fsutil import atomic_write
    from perceus.web.app import build
    from perceus.web.pages import login_url
    from perceus.web.state import WebState

    if ns.nice:
        os.nice(ns.nice)
    state = WebState(paths=paths, config=config, tokens=tokens, interval=ns.interval, tls=tls)
    family = socket.AF_INET6 if ":" in ns.listen else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ns.listen, ns.port))
    port = sock.getsockname()[1]
    url = base_url(ns.listen, port, tls)
    server = uvicorn.Server(
        uvicorn.Config(
            build(state),
            log_level="warning",
            access_log=False,
            ssl_certfile=ns.cert,
            ssl_keyfile=ns.key,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
    )
    log.info("web_listening", url=url, tokens=str(tokens_path(paths)) if not ns.tokens else ns.tokens)
    print(
        f"perceus-web: dashboard at {url}/  (sign in: {login_url(url, '<admin token>')}; perceus-web --print-url)",
        flush=True,
    )
    if ns.url_file:
        atomic_write(Path(ns.url_file), (url + "\n").encode(), mode=0o600)
    asyncio.run(server.serve(sockets=[sock]))
    return 0


def entry() -> None:
    from perceus import logsetup

    logsetup.configure(stream=sys.stdout)  # daemons log to stdout, one event per line
    sys.exit(main())
