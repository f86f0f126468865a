"""Security for one perceus-bus: keys, ZAP thread and gate before the sockets bind, then the hooks after.

busd.py calls `prepare()` before it builds the BusServer (CurveZMQ options and the ZAP handler must exist
before `bind`), passes `.curve` to the server, and calls `.install(daemon)` once the features are in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
import zmq

from perceus.master.bus.handlers import Incoming, Outgoing
from perceus.master.config import MasterConfig, Paths
from perceus.master.daemon import Daemon
from perceus.master.security import keys as master_keys
from perceus.master.security import settings as sec_settings
from perceus.master.security.audit import AuditLog
from perceus.master.security.gate import Gate
from perceus.master.security.hostkeys import HostKeyDelivery
from perceus.master.security.overlay import write_overlay
from perceus.master.security.policy import REVOKED_ATTR
from perceus.master.security.ratelimit import RateLimiter
from perceus.master.security.signing import sign_all
from perceus.master.security.zap import ZapPolicy, ZapThread
from perceus.master.store.models import Node
from perceus.protocol import hwaddr
from perceus.protocol.messages import Ack, Event, Handover, Hello, Message

log = structlog.get_logger("perceus.security")

AUDITED_EVENTS = ("node_enrolled", "node_pending")


@dataclass
class BusSecurity:
    settings: sec_settings.SecuritySettings
    keys: master_keys.MasterKeys | None
    gate: Gate
    audit: AuditLog
    zap: ZapThread | None = None
    hostkeys: HostKeyDelivery | None = None

    @property
    def curve(self) -> tuple[bytes, bytes] | None:
        """(public, secret) z85 for BusServer(curve=…), or None with `bus security = none`."""
        if self.keys is None or not self.settings.curve:
            return None
        return (self.keys.bus_public_z85, self.keys.bus_secret_z85)

    # ------------------------------------------------------------------ after the server exists
    def install(self, daemon: Daemon) -> None:
        disp = daemon.dispatcher
        disp.guard = self.gate.check
        gate = self.gate

        def bind(item: Incoming, msg: Hello, node: Node) -> None:
            gate.bind(item, msg, node.nodeid, node.macs)

        disp.bind = bind

        def handover(_: object, item: Incoming) -> Outgoing:
            msg = item.msg
            assert isinstance(msg, Handover)
            bound = gate.bound(hwaddr.normalize(msg.node))
            kept = bound is not None and bool(item.key) and gate.handover(bound.nodeid, msg.next_key)
            log.info("session_handover", node=msg.node, key=msg.next_key[:16], kept=kept)
            return Outgoing(item.identity, Ack(rid=msg.rid, interval=float(daemon.config.checkin_interval)))

        disp.extra[Handover] = handover
        disp.revoked = lambda mac: mac in gate.revoked_macs
        gate.push = daemon.server.push
        daemon.server.route = gate.identity_of
        self.reload_revoked(daemon)
        publish = disp.publish

        def audited(msg: Message) -> None:
            if isinstance(msg, Event) and msg.event in AUDITED_EVENTS:
                self.audit.record(msg.event.removeprefix("node_"), node=msg.node, hostname=msg.hostname)
            elif isinstance(msg, Event) and msg.event == "node_pending_refused":
                peer = str(msg.data.get("peer", ""))
                self.audit.refusal("refused_pending_full", peer, node=msg.node)
                return  # nothing for subscribers
            publish(msg)

        disp.publish = audited
        from perceus.master.reprovision import serve as reprovision  # needs the gate: sessions, re-entry keys

        reprovision.install(daemon, gate, self.audit)
        if self.settings.curve:
            self.hostkeys = HostKeyDelivery(daemon.paths, self.gate, disp.actions_for)
            disp.actions_for = self.hostkeys
        handlers = daemon.server.control_handlers
        handlers["revoke"] = lambda req: self._revoke(req, revoke=True)
        handlers["unrevoke"] = lambda req: self._revoke(req, revoke=False)
        handlers["security"] = lambda req: self.stats()
        previous: Callable[[dict[str, Any]], dict[str, Any]] | None = handlers.get("nodes_changed")

        def nodes_changed(req: dict[str, Any]) -> dict[str, Any]:
            self.reload_revoked(daemon)
            return previous(req) if previous is not None else {"ok": True}

        handlers["nodes_changed"] = nodes_changed
        if self.keys is not None:
            sign_all(daemon.paths)  # capsules packed before the keys existed
        daemon.on_close(self.close)
        log.info(
            "bus_security",
            mode=self.settings.mode,
            policy=daemon.config.enrollment_policy,
            rate=self.settings.rate,
            handshake_rate=self.settings.handshake_rate,
            master_key=self.keys.bus_public.hex() if self.keys else "",
        )

    def reload_revoked(self, daemon: Daemon) -> None:
        macs = {mac for node in daemon.store.list_nodes() if node.attrs.get(REVOKED_ATTR) for mac in node.macs}
        self.gate.set_revoked(macs)

    def _revoke(self, request: dict[str, Any], *, revoke: bool) -> dict[str, Any]:
        macs = [hwaddr.normalize(str(m)) for m in request.get("macs", [])]
        if revoke:
            cut = self.gate.revoke(macs)
            log.warning("nodes_revoked", macs=len(macs), sessions_cut=cut)
            return {"ok": True, "sessions": cut}
        self.gate.unrevoke(macs)
        return {"ok": True}

    def stats(self) -> dict[str, Any]:
        zap = self.zap.policy if self.zap is not None else None
        return {
            "ok": True,
            "mode": self.settings.mode,
            "refused": self.gate.refused,
            **self.gate.sizes(),
            "revoked_keys": len(self.gate.revoked_keys),
            "zap_allowed": zap.allowed if zap else 0,
            "zap_denied": zap.denied if zap else 0,
            "host_keys_sent": self.hostkeys.sent if self.hostkeys else 0,
        }

    def close(self) -> None:
        if self.zap is not None:
            self.zap.stop()
            self.zap = None


def prepare(
    paths: Paths,
    config: MasterConfig,
    *,
    override: str | None = None,
    context: zmq.Context[zmq.Socket[bytes]] | None = None,
) -> BusSecurity:
    """Keys (generated on first start), gate and — with Curve — the running ZAP thread."""
    settings = sec_settings.load(config, override)
    keys, created = master_keys.ensure(paths)
    audit = AuditLog.for_paths(paths)
    if created:
        log.info("master_keys_generated", dir=str(master_keys.keys_dir(paths)), master_key=keys.bus_public.hex())
        audit.record("master_keys_generated", master_key=keys.bus_public.hex(), sign_key=keys.sign_public.hex())
    # The public keys reach PXE-booted stage one as a second initrd next to the image (boot.ipxe loads it
    # when present), so a fresh master works end to end without a manual `perceus configure keys`.
    write_overlay(paths, keys)
    gate = Gate(
        audit=audit,
        limiter=RateLimiter(settings.rate, settings.burst),
        require_key=settings.curve,
        probe_seconds=settings.session_probe,
        kexec_window=settings.kexec_window,
        reprovision_window=settings.reprovision_window,
    )
    security = BusSecurity(settings=settings, keys=keys, gate=gate, audit=audit)
    if settings.curve:
        limiter = RateLimiter(settings.handshake_rate, settings.handshake_burst)
        # Local root tools may subscribe to events with the master's own keypair (only root can read it).
        policy = ZapPolicy(gate, limiter, audit, admin_keys=frozenset({keys.bus_public.hex()}))
        security.zap = ZapThread(context or zmq.Context.instance(), policy)
        security.zap.start()
    return security
