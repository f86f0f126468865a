"""`perceus configure keys [--rotate] [--sign] [--overlay FILE]`: the master's bus and signing keys (issue 10).

Perceus 1.x had no keys at all.  perceus-bus also generates missing keys on its first start; this verb shows
them, rotates them (every node then needs the new public keys: a new stage-one key overlay), re-signs stored
capsule manifests, and writes the stage-one key overlay (`<state>/tftp/perceus-keys.cpio` by default).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from perceus.master.cli.context import CliContext
from perceus.master.security import keys as master_keys
from perceus.master.security.audit import AuditLog
from perceus.master.security.overlay import write_overlay
from perceus.master.security.signing import sign_all


def register_keys(verbs: Any) -> None:
    v = verbs.add_parser("keys", help="master CurveZMQ and Ed25519 keys: create, show, rotate; sign capsules")
    v.add_argument("--rotate", action="store_true", help="replace both key pairs (nodes need the new public keys)")
    v.add_argument("--sign", action="store_true", help="(re-)sign every stored capsule manifest")
    v.add_argument("--overlay", metavar="FILE", help="write the stage-one key overlay here (default: tftp dir)")
    v.set_defaults(func=keys)


def keys(ctx: CliContext, ns: argparse.Namespace) -> int:
    ctx.paths.ensure()
    if ns.rotate and not ctx.confirm("Replace the master keys? Every node needs the new public keys to boot."):
        ctx.info("Keys unchanged.")
        return 1
    pair, created = master_keys.ensure(ctx.paths, rotate=ns.rotate)
    audit = AuditLog.for_paths(ctx.paths)
    if created:
        audit.record(
            "master_keys_rotated" if ns.rotate else "master_keys_generated",
            master_key=pair.bus_public.hex(),
            sign_key=pair.sign_public.hex(),
        )
    signed = sign_all(ctx.paths, force=ns.rotate or ns.sign)
    overlay = write_overlay(ctx.paths, pair, Path(ns.overlay) if ns.overlay else None)
    if ctx.json:
        ctx.emit_json(
            {
                "master_key": pair.bus_public.hex(),
                "sign_key": pair.sign_public.hex(),
                "created": created,
                "signed": signed,
                "overlay": str(overlay),
                "dir": str(master_keys.keys_dir(ctx.paths)),
            }
        )
        return 0
    ctx.info(f"{'Created' if created else 'Using'} master keys in {master_keys.keys_dir(ctx.paths)}")
    ctx.out(f"perceus.masterkey={pair.bus_public.hex()}")
    ctx.out(f"perceus.signkey={pair.sign_public.hex()}")
    if signed:
        ctx.info(f"Signed {signed} capsule manifests")
    ctx.info(f"Stage-one key overlay: {overlay}")
    if created and ns.rotate:
        ctx.notify("reload")
    return 0
