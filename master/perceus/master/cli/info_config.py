"""`perceus info config "<key>"`: the effective value of every documented perceus.conf key (1.x ref §2.2 and
the keys this master adds), set or not — 1.x's configure scripts call it (`perceus -e info config …`).

A key that is set prints what perceus.conf says; one that is not prints the value the master uses.
Computed defaults (the master's address, the DHCP range) are computed as their readers do.
"""

from __future__ import annotations

from collections.abc import Callable

from perceus.master.cli.context import CliContext
from perceus.master.netinfo import interface_ipv4

Getter = Callable[[CliContext], str]


def _const(value: str) -> Getter:
    return lambda ctx: value


def _master_ip(ctx: CliContext) -> str:
    return interface_ipv4(ctx.config.master_device) or ""


# key → default when perceus.conf does not set it.  Order: the 1.x keys, then this master's.
DEFAULTS: dict[str, Getter] = {
    "master network device": lambda ctx: ctx.config.master_device,
    "vnfs transfer method": _const("bus"),
    "vnfs transfer master": _master_ip,
    "vnfs transfer prefix": _const(""),
    "database type": lambda ctx: ctx.config.database,
    "database server": _const("localhost"),
    "database name": _const("perceus"),
    "database user": _const(""),
    "database pass": _const(""),
    "node timeout": lambda ctx: str(ctx.config.node_timeout),
    "controlport bind address": _const("127.0.0.1"),
    "controlport allow address": _const("127.0.0.1"),
    "checkin interval": lambda ctx: str(ctx.config.checkin_interval),
    "enrollment policy": lambda ctx: ctx.config.enrollment_policy,
    "bus address": lambda ctx: ctx.config.bus_address,
    "bus port": lambda ctx: str(ctx.config.bus_port),
    "event port": lambda ctx: str(ctx.config.event_port),
    "bus security": _const("curve"),
    "manage dnsmasq": lambda ctx: "yes" if ctx.config.manage_dnsmasq else "no",
    "dhcp lease time": _const("1h"),
    "dns domain": _const(""),
    "dnsmasq user": _const(""),
    "ipxe directory": _const("/usr/lib/ipxe"),
    "stage1 append": _const(""),
    "legacy listener": _const("no"),
    "legacy port": _const("987"),
    "legacy address": _master_ip,
    "capsule pacing": _const("yes"),
    "capsule uplink": _const("10gbit"),
    "capsule node rate": _const("1gbit"),
    "capsule swarm": _const("yes"),
    "capsule swarm peer slots": _const("4"),
}
# Paths 1.x's configure scripts asked for.
PATHS: dict[str, Getter] = {
    "statedir": lambda ctx: str(ctx.paths.state_dir),
    "sysconfdir": lambda ctx: str(ctx.paths.config_dir),
    "configdir": lambda ctx: str(ctx.paths.config_dir),
}


def value(ctx: CliContext, key: str) -> str | None:
    """The effective value of `key`, or None when the key is not documented and not set."""
    if key in PATHS:
        return PATHS[key](ctx)
    raw = ctx.config.raw
    if key in raw:
        return ",".join(raw[key])
    getter = DEFAULTS.get(key)
    return getter(ctx) if getter is not None else None


def every(ctx: CliContext) -> dict[str, str]:
    """Every documented key and every key perceus.conf sets, with its effective value."""
    keys = list(DEFAULTS) + [k for k in ctx.config.raw if k not in DEFAULTS]
    return {k: v for k in keys if (v := value(ctx, k)) is not None}
