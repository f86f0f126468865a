"""`perceus configure dhcpd` (alias `dhcp`): write dnsmasq.conf, the hosts files and the TFTP boot tree.

As Perceus 1.x (1.x ref §2.4, §2.6) the answers come from perceus.conf and the provisioning interface, but
nothing is asked interactively: every answer is a perceus.conf key (docs/network.md).  `--test` runs
`dnsmasq --test` on the result.  Unlike 1.x, a running perceus-bus is told to apply the new file (it rewrites
it with its live endpoints and restarts dnsmasq); without a daemon the files are simply written.
"""

from __future__ import annotations

import argparse
import subprocess
from typing import Any

from perceus.errors import ConfigError
from perceus.master.cli.context import CliContext
from perceus.master.netmgr.files import NetFiles
from perceus.master.netmgr.process import find_dnsmasq
from perceus.master.netmgr.settings import from_system
from perceus.master.netmgr.tree import write_all


def register_dhcpd(verbs: Any) -> None:
    v = verbs.add_parser(
        "dhcpd",
        aliases=["dhcp"],
        help="write dnsmasq.conf, the static-lease hosts file and the iPXE boot tree from perceus.conf",
    )
    v.add_argument("--test", action="store_true", help="check the written file with `dnsmasq --test`")
    v.set_defaults(func=dhcpd)


def _syntax_check(conf: str) -> str:
    binary = find_dnsmasq()
    if binary is None:
        raise ConfigError("--test needs dnsmasq (apt install dnsmasq-base)")
    proc = subprocess.run(
        [binary, "--test", f"--conf-file={conf}"], capture_output=True, text=True, timeout=30, check=False
    )
    output = (proc.stderr or proc.stdout).strip()
    if proc.returncode != 0:
        raise ConfigError(f"dnsmasq rejects it: {output.splitlines()[-1] if output else proc.returncode}", path=conf)
    return output


def dhcpd(ctx: CliContext, ns: argparse.Namespace) -> int:
    settings = from_system(ctx.config)  # validates everything before a single file is written
    files = NetFiles(ctx.paths)
    result = write_all(files, settings, ctx.store.list_nodes())
    for warning in result.warnings:
        ctx.warn(warning)
    checked = _syntax_check(str(files.conf)) if ns.test else ""
    reply = ctx.notify("dnsmasq_restart") if result.changed else None
    applied = bool(reply and reply.get("ok"))
    if ctx.json:
        ctx.emit_json(
            {
                "conf": str(files.conf),
                "hosts": str(files.hosts),
                "tftp": str(files.tftp),
                "interface": settings.interface,
                "range": [str(settings.range_start), str(settings.range_end)],
                "known_nodes": result.hosts,
                "changed": [str(p) for p in result.changed],
                "warnings": result.warnings,
                "test": checked or None,
                "restarted": applied,
            }
        )
        return 0
    ctx.info(
        f"Wrote {files.conf}: {settings.interface} {settings.address}, range {settings.range_start}-"
        f"{settings.range_end}, {result.hosts} known nodes in {files.hosts}"
    )
    ctx.info(f"Boot tree in {files.tftp}: stage one from perceus.master={settings.master_host}:{settings.bus_port}")
    if checked:
        ctx.info(checked)
    if applied:
        ctx.info("perceus-bus restarted dnsmasq with the new configuration")
    return 0
