"""Network bring-up for stage one: links up, carrier, DHCP (pyroute2's own client), address and route.

The only pyroute2 importer (imported lazily, it costs ~1 s under TCG and the runtime agent rarely needs it).
1.x probed a fixed list eth0..eth7/ib0/ib1 and ran busybox udhcpc per NIC (1.x ref §6.2); here every Ethernet
link is found over netlink, links come up together and carrier is awaited once, with a bound, then DHCP runs
on each link with carrier (in name order) until one lease.  `dhcp_eth=`/`dhcp_mac=`/`eth_mtu=` keep their
meaning; `perceus.net=IP/PLEN,GW,DEV` configures statically (the hand-over from stage one at kexec): then
links come from sysfs and the address from raw rtnetlink (rtnl.py), without pyroute2, whose import is most of
a bare runtime's network step under QEMU TCG.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from perceus.agent import rtnl
from perceus.agent.cmdline import AgentConfig, StaticNet
from perceus.agent.failures import NetworkError

log = structlog.get_logger("perceus.agent.network")

ARPHRD_ETHER = 1
CARRIER_TIMEOUT = 10.0  # per round; 1.x's ethinfo check was instant, but virtio/e1000 take ~1-3 s
CARRIER_SETTLE = 2.0  # once one link has carrier, give the others this long to catch up
DHCP_TIMEOUT = 10.0  # per link and round (udhcpc -t 5 ≈ 9 s in 1.x)
ROUNDS = 5  # 1.x MAX_TRIES
ROUND_PAUSE = 2.0


@dataclass(frozen=True, slots=True)
class Lease:
    """The address a link got: from DHCP (`server_id`, `next_server` set) or static (`perceus.net=`)."""

    iface: str
    mac: str
    ip: str
    prefixlen: int
    gateway: str = ""
    server_id: str = ""
    next_server: str = ""
    static: bool = False

    def as_static(self) -> StaticNet:
        return StaticNet(self.ip, self.prefixlen, self.gateway, self.iface)


@dataclass(frozen=True, slots=True)
class Link:
    index: int
    name: str
    mac: str
    carrier: bool


def _links(raw: Sequence[Any]) -> list[Link]:
    out: list[Link] = []
    for msg in raw:
        if msg["ifi_type"] != ARPHRD_ETHER or msg.get("ifname") in (None, "lo"):
            continue
        out.append(Link(msg["index"], msg.get("ifname"), (msg.get("address") or "").upper(),
                        bool(msg.get("carrier"))))  # fmt: skip
    return sorted(out, key=lambda link: link.name)


def candidates(links: Sequence[Link], config: AgentConfig) -> list[Link]:
    """Links DHCP may run on, after `dhcp_eth=` / `dhcp_mac=` (1.x `ifcheck`)."""
    out = [link for link in links if not config.dhcp_eth or link.name == config.dhcp_eth]
    return [link for link in out if not config.dhcp_mac or link.mac == config.dhcp_mac]


async def _dump(ipr: Any) -> list[Link]:
    return _links([msg async for msg in await ipr.link("dump")])


async def _up(ipr: Any, links: Sequence[Link], mtu: int) -> None:
    for link in links:
        extra = {"mtu": mtu} if mtu else {}
        await ipr.link("set", index=link.index, state="up", **extra)
        log.debug("link_up", iface=link.name, mac=link.mac, **extra)


class _CarrierWait:
    """When to stop waiting for carrier: every named link has it, or (once one has) CARRIER_SETTLE passed, or
    `timeout`."""

    def __init__(self, names: set[str], timeout: float) -> None:
        self.names, self.timeout = names, timeout
        self.start = time.monotonic()
        self.first: float | None = None

    def done(self, ready: Sequence[Link]) -> bool:
        now = time.monotonic()
        if ready and self.first is None:
            self.first = now
        settled = self.first is not None and now - self.first >= CARRIER_SETTLE
        return len(ready) == len(self.names) or now - self.start >= self.timeout or settled


async def _await_carrier(ipr: Any, names: set[str], timeout: float) -> list[Link]:
    """Poll netlink until the wait is over (_CarrierWait); the links with carrier."""
    wait = _CarrierWait(names, timeout)
    while True:
        ready = [link for link in await _dump(ipr) if link.name in names and link.carrier]
        if wait.done(ready):
            return ready
        await asyncio.sleep(0.1)


def _log_carrier(links: Sequence[Link], ready: Sequence[Link]) -> None:
    for link in ready:
        log.info("link_carrier", iface=link.name, mac=link.mac)
    for link in links:
        if link.name not in {r.name for r in ready}:
            log.info("link_no_carrier", iface=link.name, mac=link.mac)


def _lean_pyroute2() -> None:
    """Make `pyroute2` importable without running its `__init__.py`, which imports every netlink family it knows
    (conntrack, ipset, nftables, wireguard, NDB with sqlite3 …): 124 ms natively against 48 ms for the DHCP
    client and AsyncIPRoute alone, ~0.5 s of stage one under QEMU TCG.  The package's submodules load as usual
    (we import them by their full names); only the package's re-exports are absent.  Called in the forked
    network child (isolate.py), never in the agent itself."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is not None and spec.submodule_search_locations is not None:
        sys.modules["pyroute2"] = importlib.util.module_from_spec(spec)


def _lease_type() -> type:
    """A pyroute2 Lease subclass that neither prints nor writes files (stage one has no state dir)."""
    from pyroute2.dhcp.leases import Lease as PyLease

    class MemoryLease(PyLease):  # type: ignore[misc]
        def dump(self) -> None:
            return None

        @classmethod
        def load(cls, interface: str) -> None:
            return None

    return MemoryLease


async def _dhcp(link: Link, timeout: float, hostname: str) -> Lease | None:
    from pyroute2.dhcp import fsm
    from pyroute2.dhcp.client import AsyncDHCPClient, ClientConfig

    config = ClientConfig(
        interface=link.name, lease_type=_lease_type(), hooks=(), handle_signals=False, release=False,
        write_pidfile=False, vendor_id="perceus", host_name=hostname or None,
    )  # fmt: skip
    start = time.monotonic()
    async with AsyncDHCPClient(config) as client:
        await client.bootstrap()
        try:
            await client.wait_for_state(fsm.State.BOUND, timeout=timeout)
        except TimeoutError:
            log.info("dhcp_timeout", iface=link.name, timeout_s=timeout)
            return None
        got = client.lease
    assert got is not None
    gateway = ""
    try:
        gateway = got.default_gateway
    except (LookupError, IndexError):
        pass
    server = ""
    try:
        server = got.server_id
    except LookupError:
        pass
    siaddr = str(got.ack.get("siaddr") or "")
    lease = Lease(link.name, link.mac, got.ip, got.prefixlen, gateway, server,
                  "" if siaddr == "0.0.0.0" else siaddr)  # fmt: skip  # noqa: S104
    log.info("dhcp_lease", iface=link.name, ip=lease.ip, prefixlen=lease.prefixlen, gateway=gateway,
             server_id=server, next_server=lease.next_server,
             duration_ms=round((time.monotonic() - start) * 1000, 1))  # fmt: skip
    return lease


async def _configure(ipr: Any, index: int, lease: Lease) -> None:
    await ipr.addr("replace", index=index, address=lease.ip, prefixlen=lease.prefixlen)
    if lease.gateway:
        await ipr.route("replace", dst="0.0.0.0/0", gateway=lease.gateway, oif=index)
    log.info("address_configured", iface=lease.iface, ip=lease.ip, prefixlen=lease.prefixlen,
             gateway=lease.gateway, static=lease.static)  # fmt: skip


async def _bring_up(config: AgentConfig, *, rounds: int, carrier_timeout: float, dhcp_timeout: float,
                    hostname: str) -> Lease:  # fmt: skip
    _lean_pyroute2()
    from pyroute2.iproute.linux import AsyncIPRoute

    async with AsyncIPRoute() as ipr:
        await ipr.link("set", index=1, state="up")  # lo: some services in scripts expect it
        for attempt in range(1, rounds + 1):
            links = candidates(await _dump(ipr), config)
            if not links:
                log.warning("no_network_links", attempt=attempt)
            else:
                await _up(ipr, links, config.eth_mtu)
                ready = await _await_carrier(ipr, {link.name for link in links}, carrier_timeout)
                _log_carrier(links, ready)
                for link in ready:
                    lease = await _dhcp(link, dhcp_timeout, hostname)
                    if lease is None:
                        continue
                    await _configure(ipr, link.index, lease)
                    return lease
            if attempt < rounds:
                log.warning("network_retry", attempt=attempt, of=rounds)
                await asyncio.sleep(ROUND_PAUSE)
    raise NetworkError(f"no network: no lease on any link after {rounds} rounds")


def _sys_links() -> list[Link]:
    return [Link(link.index, link.name, link.mac, rtnl.has_carrier(link.name)) for link in rtnl.links() if link.ether]


def _static_round(nl: rtnl.Rtnl, config: AgentConfig, net: StaticNet, carrier_timeout: float,
                  attempt: int) -> Lease | None:  # fmt: skip
    links = [link for link in candidates(_sys_links(), config) if link.name == (net.device or link.name)]
    if not links:
        log.warning("no_network_links", attempt=attempt)
        return None
    for link in links:
        nl.link_up(link.index, config.eth_mtu)
        log.debug("link_up", iface=link.name, mac=link.mac)
    names = {link.name for link in links}
    wait = _CarrierWait(names, carrier_timeout)
    while not wait.done(ready := [link for link in _sys_links() if link.name in names and link.carrier]):
        time.sleep(0.05)
    _log_carrier(links, ready)
    for link in ready:
        nl.replace_address(link.index, net.ip, net.prefixlen)
        if net.gateway:
            nl.replace_default_route(net.gateway, link.index)
        log.info("address_configured", iface=link.name, ip=net.ip, prefixlen=net.prefixlen, gateway=net.gateway,
                 static=True)  # fmt: skip
        return Lease(link.name, link.mac, net.ip, net.prefixlen, net.gateway, static=True)
    return None


def _static(config: AgentConfig, net: StaticNet, *, rounds: int, carrier_timeout: float) -> Lease:
    """`perceus.net=`: the same rounds as DHCP, over sysfs and raw rtnetlink (no pyroute2)."""
    try:
        with rtnl.Rtnl() as nl:
            nl.link_up(1)  # lo: some services in scripts expect it
            for attempt in range(1, rounds + 1):
                lease = _static_round(nl, config, net, carrier_timeout, attempt)
                if lease is not None:
                    return lease
                if attempt < rounds:
                    log.warning("network_retry", attempt=attempt, of=rounds)
                    time.sleep(ROUND_PAUSE)
    except OSError as exc:
        raise NetworkError(f"static network {net}: {exc.strerror or exc}") from None
    raise NetworkError(f"no network: no link with carrier for {net} after {rounds} rounds")


def bring_up(config: AgentConfig, *, rounds: int = ROUNDS, carrier_timeout: float = CARRIER_TIMEOUT,
             dhcp_timeout: float = DHCP_TIMEOUT, hostname: str = "") -> Lease:  # fmt: skip
    """Bring the node onto the network (DHCP, or `perceus.net=`); NetworkError after `rounds` rounds."""
    if config.net is not None:
        return _static(config, config.net, rounds=rounds, carrier_timeout=carrier_timeout)
    return asyncio.run(_bring_up(config, rounds=rounds, carrier_timeout=carrier_timeout,
                                 dhcp_timeout=dhcp_timeout, hostname=hostname))  # fmt: skip
