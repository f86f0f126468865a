"""`perceus contact [--bundle FILE]`: where to get help, and a local diagnostics bundle.

Perceus 1.x mailed system details to a third party over raw SMTP (1.x ref §4.8, §13).  This never touches
the network: `--bundle` writes a tarball the admin can inspect and attach to a bug report themselves.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from perceus.agent import __version__
from perceus.errors import PerceusError
from perceus.master.cli.context import CliContext

HELP_TEXT = """\
Perceus {version}

Where to get help:
  * the documentation in this installation: README.md and docs/ (admin guide, upgrade from 1.x,
    security model, multi-master);
  * your site's cluster administrators;
  * the project's issue tracker, with a diagnostics bundle attached:

        perceus contact --bundle /tmp/perceus-diag.tar.gz

    The bundle holds your configuration, recent logs, versions and node counts. Nothing is sent
    anywhere; read it before you share it."""

_MAX_LOG_BYTES = 2 * 1024 * 1024


def register(sub: Any) -> None:
    p = sub.add_parser("contact", help="where to get help; --bundle writes a diagnostics tarball")
    p.add_argument("--bundle", metavar="FILE", help="write config, logs and versions to FILE (.tar.gz)")
    p.set_defaults(func=contact)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def write_bundle(ctx: CliContext, target: Path) -> list[str]:
    """Write the diagnostics tarball atomically; returns the member names."""
    members: list[str] = []
    versions: dict[str, Any] = {
        "perceus": __version__,
        "python": sys.version,
        "platform": " ".join(os.uname()),
    }
    try:
        import zmq

        versions |= {"pyzmq": zmq.__version__, "libzmq": zmq.zmq_version()}
    except ImportError:
        pass
    status: dict[str, Any] = {}
    try:
        nodes = ctx.store.list_nodes()
        status = {"nodes": len(nodes), "by_status": ctx.store.count_by_status(), "groups": ctx.store.groups()}
    except PerceusError as exc:
        status = {"error": str(exc)}
    tmp = target.with_name(f".{target.name}.part")
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            _add_bytes(tar, "perceus-diag/versions.json", json.dumps(versions, indent=2).encode())
            _add_bytes(tar, "perceus-diag/status.json", json.dumps(status, indent=2).encode())
            members += ["versions.json", "status.json"]
            for conf in sorted(ctx.paths.config_dir.glob("*.conf")):
                _add_bytes(tar, f"perceus-diag/etc/{conf.name}", conf.read_bytes())
                members.append(f"etc/{conf.name}")
            for logfile in sorted(ctx.paths.logs.glob("*.log")):
                data = logfile.read_bytes()[-_MAX_LOG_BYTES:]
                _add_bytes(tar, f"perceus-diag/log/{logfile.name}", data)
                members.append(f"log/{logfile.name}")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PerceusError(f"cannot write bundle {target}: {exc.strerror}") from None
    return members


def contact(ctx: CliContext, ns: argparse.Namespace) -> int:
    if ns.bundle:
        members = write_bundle(ctx, Path(ns.bundle))
        if ctx.json:
            ctx.emit_json({"bundle": ns.bundle, "members": members})
        else:
            ctx.info(f"Wrote {ns.bundle} ({len(members)} files). Nothing was sent; review it before sharing.")
        return 0
    ctx.out(HELP_TEXT.format(version=__version__))
    return 0
