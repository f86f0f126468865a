"""Bring a bare runtime onto the network: a capsule without its own init system or network configuration.

A small stateless capsule (busybox + CPython + provisiond, e.g. the stage-one image imported as a capsule)
starts the agent straight from its /init.  Nothing has loaded NIC drivers or configured an address then, so
provisiond does what stage one did, with the address stage one handed over at kexec (`perceus.net=`) and
DHCP only as a fallback.  A full OS (systemd, networkd, NetworkManager) already has an address when
provisiond starts (its unit runs after network-online.target), and then nothing here runs.
"""

from __future__ import annotations

import fcntl
import socket
import struct

import structlog

from perceus.agent.cmdline import AgentConfig
from perceus.agent.isolate import run_isolated
from perceus.errors import PerceusError

log = structlog.get_logger("perceus.agent.bare")

_SIOCGIFADDR = 0x8915


def has_ipv4_address() -> bool:
    """True when any interface other than loopback has an IPv4 address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            if name == "lo":
                continue
            try:
                fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            return True
    return False


def bring_up(config: AgentConfig) -> None:
    """Mounts, NIC drivers and the network for a bare runtime; a no-op when the OS already did it."""
    if has_ipv4_address():
        return
    from perceus.agent import drivers, network
    from perceus.agent.stage1 import ensure_mounts

    log.info("bare_runtime_network", static=str(config.net) if config.net else "dhcp")
    ensure_mounts()
    try:
        result = run_isolated(lambda: drivers.load_drivers(config.kmods, config.noload), what="driver loading")
        log.info("drivers_loaded", summary=result.summary())
    except PerceusError as exc:  # built-in drivers may still do: the network step decides
        log.warning("drivers_failed", error=str(exc))
    lease = run_isolated(lambda: network.bring_up(config, hostname=config.nodename), what="network")
    log.info("address_configured", iface=lease.iface, ip=lease.ip, prefixlen=lease.prefixlen, static=lease.static)
