"""The swarm on perceus-bus (issue 21): `get_sources` → `sources`, backed by the policy in swarm.py.

A node fetching its assigned capsule asks where to get its next chunks; the reply pairs chunk indices with
peers (endpoint as the master saw the node's address, key as Curve/ZAP vouched for it — never what the node
claims) or with the master itself, plus a voucher bound to the asker's Curve key that the peers check
(perceus.protocol.swarm).  Only a node whose grant is this manifest takes part, as asker and as listed source:
the same access rule as `get_chunks` (serve.py), re-checked for every source listed (at most every NODE_TTL).
Reports about peers are checked, not trusted (swarm_reports.py, swarm_verify.py).

Pacing (pacing.py) bounds the master's own uplink, for the swarm too: the master sends a swarm member a chunk
at once only if the swarm assigned that chunk to it from the master (a ticket, used once), and the swarm
assigns master chunks only while its master sends plus the pacer's busy slots stay within the pacer's slots.
Any other `get_chunks` from a member is paced like a star node's.  The fleet's links (rack uplinks, node links)
are the policy's business (peer upload slots, same rack first), not pacing's.

The per-rack byte counters and the excluded peers are written to `<state>/run/swarm.json` (at most once a second
and when a node completes) for `perceus vnfs status` and `perceus node status`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from perceus.errors import PerceusError
from perceus.master.bus.handlers import Dispatcher, Incoming, Outgoing
from perceus.master.capsule.swarm import MASTER, Swarm, SwarmSettings
from perceus.master.capsule.swarm_reports import Reports
from perceus.master.capsule.swarm_verify import Verifier
from perceus.master.config import Paths
from perceus.protocol import hwaddr
from perceus.protocol.capsule import decode_manifest
from perceus.protocol.messages import Event, GetChunks, GetManifest, GetSources, Message, Sources, SwarmPeer
from perceus.protocol.swarm import token_payload

if TYPE_CHECKING:
    from perceus.master.capsule.serve import ChunkServer

log = structlog.get_logger("perceus.capsule.swarm")

STATE_FILE = "swarm.json"
MAX_WANT = 1024
MAX_SWARMS = 8
MAX_TICKETS = 1 << 18
CHUNK_BYTES = 2 << 20  # the packer's target chunk size (docs/capsules.md): sets how soon "not now" re-asks


def _yes(raw: dict[str, list[str]] | Any, key: str, default: str) -> bool:
    return (raw.get(key) or [default])[0].strip().lower() not in ("no", "off", "false", "0")


def settings_from_config(raw: Any) -> SwarmSettings:
    """`capsule swarm = yes|no` (default yes); master slots from the pacing rates (uplink ÷ node link + 1)."""
    from perceus.master.capsule.pacing import PacingSettings

    pacing = PacingSettings.from_config(raw)
    mbit = 1e6 / 8
    settings = SwarmSettings.for_links(pacing.node_mbit * mbit, pacing.uplink_mbit * mbit, CHUNK_BYTES,
                                       enabled=_yes(raw, "capsule swarm", "yes"))  # fmt: skip
    slots = (raw.get("capsule swarm peer slots") or [""])[0].strip()
    if slots:
        try:
            n = int(slots)
        except ValueError:
            raise PerceusError(f"capsule swarm peer slots = {slots!r}: not a whole number") from None
        if not 1 <= n <= 16:
            raise PerceusError(f"capsule swarm peer slots = {n}: outside 1..16")
        settings = dataclasses.replace(settings, peer_slots=n)
    return settings


def state_path(paths: Paths) -> Path:
    return paths.run / STATE_FILE


def read_state(paths: Paths) -> dict[str, Any]:
    """What the bus last wrote (empty without a swarm run)."""
    try:
        data = json.loads(state_path(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def excluded_peers(paths: Paths) -> set[str]:
    """Node ids the swarm excluded for serving bad bytes (any capsule), for `perceus node status`."""
    capsules = read_state(paths).get("capsules", {})
    return {str(p) for c in capsules.values() if isinstance(c, dict) for p in c.get("excluded", [])}


@dataclass
class SwarmService:
    """The `get_sources` handler and the swarms it keeps (one per manifest hash in use)."""

    paths: Paths
    server: ChunkServer
    settings: SwarmSettings
    signer: Any = None  # nacl.signing.SigningKey, or None on a master without keys
    swarms: dict[str, Swarm] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    endpoints: dict[str, tuple[str, str]] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    curve_keys: tuple[bytes, bytes] | None = None  # the master's bus keypair: its own checks of reported peers
    tickets: dict[tuple[str, str], float] = field(default_factory=dict)  # (node, chunk hash) → expiry
    hashes: dict[str, list[str]] = field(default_factory=dict)  # manifest → chunk hash by index
    _written: float = 0.0
    _dirty: bool = False

    def __post_init__(self) -> None:
        sign = (lambda payload: bytes(self.signer.sign(payload).signature)) if self.signer is not None else None
        self.reports = Reports(Verifier(sign, self.curve_keys), time.monotonic, self.server.audit.refusal)

    def _swarm(self, disp: Dispatcher, manifest: str) -> Swarm | None:
        found = self.swarms.get(manifest)
        if found is not None:
            return found
        data = self.server.index.manifest_bytes(manifest)
        if data is None:
            return None
        try:
            m = decode_manifest(data[1], manifest)
        except PerceusError as exc:
            log.error("manifest_unreadable", manifest=manifest, error=str(exc))
            return None
        if len(self.swarms) >= MAX_SWARMS:  # the oldest capsule version's swarm goes
            old = next(iter(self.swarms))
            del self.swarms[old]
            self.names.pop(old, None)
            self.hashes.pop(old, None)
        swarm = self.swarms[manifest] = Swarm([c.size for c in m.all_chunks()], self.settings, clock=disp.clock)
        self.names[manifest] = m.name
        self.hashes[manifest] = [c.hash for c in m.all_chunks()]
        log.info("swarm_started", capsule=m.name, manifest=manifest[:16], chunks=len(swarm.sizes))
        return swarm

    def get_sources(self, disp: Dispatcher, item: Incoming) -> Outgoing | None:
        msg = item.msg
        assert isinstance(msg, GetSources)
        grant = self.server._grant(disp, item, msg.node)
        if isinstance(grant, Outgoing):
            return grant
        if not grant.manifest or msg.manifest != grant.manifest:
            return self.server._not_assigned(item, msg.node, "swarm", msg.manifest)
        swarm = self._swarm(disp, grant.manifest)
        if swarm is None:
            return self.server._not_assigned(item, msg.node, "swarm", msg.manifest)
        node = hwaddr.normalize(msg.node)
        if node not in swarm.rack:
            for other in self.swarms.values():  # assigned another capsule now: it serves the old one no more
                if other is not swarm and node in other.rack:
                    other.leave(node)
            found = disp.store.get(node)
            swarm.join(node, str((found.attrs.get("rack") if found is not None else "") or ""))
        self.members.add(node)
        if msg.port and item.peer and 0 < msg.port < 65536:
            self.endpoints[node] = (f"tcp://{item.peer}:{msg.port}", item.key)
        if msg.have:  # a node that does not serve (port 0) counts its bytes but is nobody's source
            swarm.have(node, msg.have, serving=node in self.endpoints)
            self._dirty = True
        self._settle()
        hashes = self.hashes[grant.manifest]
        for peer in msg.bad[:16]:
            self.reports.bad(swarm, node, peer, grant.manifest, hashes.__getitem__, self.endpoints.get(peer))
        for peer in msg.dead[:16]:
            self.reports.dead(swarm, node, peer, grant.manifest)
        want = [i for i in msg.want[:MAX_WANT] if isinstance(i, int)]
        credit = max(0, min(msg.credit or len(want), len(want), 16))
        reserved = self._reserve(swarm)
        swarm.master_busy += reserved  # the policy sees only the master slots pacing leaves free
        try:
            pairs = swarm.assign(node, want, credit) if credit else []
        finally:
            swarm.master_busy -= reserved
        pairs = self._listed(disp, item, swarm, grant.manifest, pairs)
        peers: list[SwarmPeer] = []
        slot: dict[str, int] = {}
        assign: list[tuple[int, int]] = []
        expires = disp.clock() + self.settings.assign_ttl
        for idx, source in pairs:
            if source == MASTER:
                assign.append((idx, -1))
                self._ticket(node, hashes[idx], expires)
                continue
            if source not in slot:
                endpoint, key = self.endpoints[source]
                slot[source] = len(peers)
                peers.append(SwarmPeer(node=source, endpoint=endpoint, key=key))
            assign.append((idx, slot[source]))
            self.reports.assigned(node, source, grant.manifest, idx)
        now = time.time()
        token = b""
        if self.signer is not None and peers:
            token = bytes(self.signer.sign(token_payload(grant.manifest, node, item.key, now)).signature)
        complete = swarm.held.get(node, 0) >= len(swarm.sizes)
        self._maybe_write(force=complete)
        retry = self.settings.retry_s if want and not pairs else 0.0
        reply = Sources(rid=msg.rid, manifest=grant.manifest, peers=tuple(peers), assign=tuple(assign),
                        token=token, issued=now, now=now, retry_after=retry)  # fmt: skip
        return Outgoing(item.identity, reply)

    def _settle(self) -> None:
        """Apply the master's own checks of reported peers (exclusions, strikes) reached since the last call."""
        for verdict in self.reports.settle(self.swarms):
            if verdict.result == "bad":
                self._dirty = True

    def _reserve(self, swarm: Swarm) -> int:
        """Master slots of this swarm to hold back so that its master sends, the other swarms' and the pacer's
        busy slots stay within the pacer's slots (one budget: the master's uplink)."""
        pacer = self.server.pacer
        if pacer is None or not pacer.settings.enabled:
            return 0
        others = sum(s.master_busy for s in self.swarms.values() if s is not swarm)
        room = pacer.settings.slots - len(pacer.active) - others
        return max(0, self.settings.master_slots - max(0, room))

    def _listed(self, disp: Dispatcher, item: Incoming, swarm: Swarm, manifest: str,
                pairs: list[tuple[int, str]]) -> list[tuple[int, str]]:  # fmt: skip
        """The pairs whose source is still assigned this capsule (and not revoked) with a known endpoint; a source
        that is not leaves the swarm (its assignments lapse, the chunks are asked for again)."""
        out: list[tuple[int, str]] = []
        gone: set[str] = set()
        for idx, source in pairs:
            if source != MASTER and (source in gone or source not in self.endpoints
                                     or not self._member(disp, item, source, manifest)):  # fmt: skip
                if source not in gone:
                    gone.add(source)
                    swarm.leave(source)
                    self.endpoints.pop(source, None)
                    log.info("swarm_source_dropped", peer=source, capsule=self.names.get(manifest))
                continue
            out.append((idx, source))
        return out

    def _member(self, disp: Dispatcher, item: Incoming, peer: str, manifest: str) -> bool:
        """Is `peer` (still) enrolled, not revoked and assigned this manifest? (grant cached for NODE_TTL)"""
        if disp.revoked(peer):
            return False
        grant = self.server._grant(disp, item, peer)  # the one access rule, shared with serve.py
        return not isinstance(grant, Outgoing) and grant.manifest == manifest

    def _ticket(self, node: str, chunk: str, expires: float) -> None:
        if len(self.tickets) >= MAX_TICKETS:
            now = expires - self.settings.assign_ttl
            self.tickets = {k: t for k, t in self.tickets.items() if t > now}
            if len(self.tickets) >= MAX_TICKETS:
                self.tickets.clear()
        self.tickets[(node, chunk)] = expires

    def ticketed(self, node: str, msg: GetChunks, now: float) -> bool:
        """A `get_chunks` the swarm assigned to the master (ticket used up here); anything else is paced."""
        if len(msg.hashes) != 1:
            return False
        return self.tickets.pop((node, msg.hashes[0]), 0.0) > now

    def forget(self, node: str) -> None:
        """The node booted again: whatever it held went with its RAM."""
        for swarm in self.swarms.values():
            if node in swarm.rack:
                swarm.leave(node)
        self.endpoints.pop(node, None)
        self.members.discard(node)

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"updated": time.time(), "capsules": {}}
        for h, swarm in self.swarms.items():
            out["capsules"][h] = {
                "name": self.names.get(h, ""),
                "chunks": len(swarm.sizes),
                "bytes": sum(swarm.sizes),
                "racks": swarm.totals(),
                "excluded": sorted(swarm.excluded),
                "nodes": len(swarm.rack),
                "complete": sum(1 for n in swarm.held.values() if n >= len(swarm.sizes)),
            }
        return out

    def _maybe_write(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self._dirty or (not force and now - self._written < 1.0):
            return
        path = state_path(self.paths)
        tmp = path.with_name(f".{STATE_FILE}.tmp")
        try:
            tmp.write_text(json.dumps(self.snapshot()), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("swarm_state_not_written", error=str(exc))
        self._written, self._dirty = now, False


def install(dispatcher: Dispatcher, server: ChunkServer, paths: Paths) -> SwarmService | None:
    """Register `get_sources` unless `capsule swarm = no`; swarm members bypass boot-storm pacing."""
    from perceus.master.security import keys

    settings = settings_from_config(dispatcher.config.raw)
    log.info("capsule_swarm", enabled=settings.enabled, master_slots=settings.master_slots)
    if not settings.enabled:
        return None
    try:
        found = keys.load(paths)
    except PerceusError as exc:
        log.warning("swarm_unsigned", error=str(exc))
        found = None
    signer = found.signer() if found is not None else None
    curve_keys = (found.bus_public, found.bus_secret) if found is not None else None
    service = SwarmService(paths, server, settings, signer, curve_keys=curve_keys)
    dispatcher.extra[GetSources] = service.get_sources
    paced = server.pace

    def pace(item: Incoming, node: str) -> Outgoing | None:
        if isinstance(item.msg, GetManifest):
            return None  # a few KiB; a swarm agent asks for sources next, an older one is paced at its chunks
        try:
            mac = hwaddr.normalize(node)
        except PerceusError:
            return paced(item, node)
        if (
            mac in service.members
            and isinstance(item.msg, GetChunks)
            and service.ticketed(mac, item.msg, dispatcher.clock())
        ):
            return None  # the swarm sent this chunk to the master within its share of the uplink
        return paced(item, node)

    server.pace = pace
    publish = dispatcher.publish

    def observed(msg: Message) -> None:
        publish(msg)
        # A node booting again has an empty RAM; stage one reports its kexec phase just before the kexec ends its
        # peer server (a runtime hello follows one): either way it holds nothing the swarm can fetch any more.
        if not isinstance(msg, Event) or not msg.node:
            return
        if msg.event == "hello" or (msg.event == "phase" and msg.data.get("phase") == "kexec"):
            try:
                service.forget(hwaddr.normalize(msg.node))
            except PerceusError:
                pass

    dispatcher.publish = observed
    return service
