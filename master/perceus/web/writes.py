"""Approve and revoke from the web: the very verbs `perceus node approve/revoke` run, plus one audit line naming
the web as the actor (the verbs write their own `approved`/`revoked` lines, as from the CLI)."""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass

from perceus.errors import PerceusError
from perceus.master.cli import node as node_cli
from perceus.master.cli.context import CliContext
from perceus.master.config import Paths
from perceus.master.security.audit import AuditLog


@dataclass(frozen=True)
class WriteResult:
    ok: bool
    message: str


def _run(paths: Paths, verb: str, ns: argparse.Namespace) -> WriteResult:
    out, err = io.StringIO(), io.StringIO()
    ctx = CliContext(paths=paths, yes=True, stdout=out, stderr=err, stdin=io.StringIO())
    try:
        func = node_cli.approve if verb == "approve" else node_cli.revoke
        code = func(ctx, ns)
    except PerceusError as exc:
        return WriteResult(False, str(exc))
    finally:
        ctx.close()
    text = " ".join((out.getvalue() + " " + err.getvalue()).split())
    return WriteResult(code == 0, text)


def approve(paths: Paths, macs: list[str], *, actor: str, remote: str) -> WriteResult:
    result = _run(paths, "approve", argparse.Namespace(macs=macs, all=False))
    AuditLog.for_paths(paths).record(
        "web_approve", actor=actor, remote=remote, macs=macs, ok=result.ok, message=result.message
    )
    return result


def revoke(paths: Paths, nodes: list[str], *, undo: bool, actor: str, remote: str) -> WriteResult:
    result = _run(paths, "revoke", argparse.Namespace(nodes=nodes, undo=undo))
    AuditLog.for_paths(paths).record(
        "web_unrevoke" if undo else "web_revoke",
        actor=actor,
        remote=remote,
        nodes=nodes,
        ok=result.ok,
        message=result.message,
    )
    return result
