"""Cluster SSH host keys (`perceus configure sshkeys`, 1.x ref §2.8) delivered as a module action, and only so.

They travel in a `welcome`/`ack` action over the authenticated, encrypted bus, once per boot, to an enrolled,
enabled, unrevoked node whose runtime session *proved continuity* (provisiond holding the key its own stage one
handed over, security/gate.py) — never on a stage a client merely declares, never in a capsule (every node
could read every capsule in 1.x's NFS export) nor in a TFTP file.  With `bus security = none` they are not
sent at all: a secret must not cross the network in clear text.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import structlog

from perceus.master.config import Paths
from perceus.master.security.gate import Gate
from perceus.master.store.models import Node
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Action

log = structlog.get_logger("perceus.security")

KEY_TYPES = ("rsa", "ecdsa", "ed25519")
MODULE = "sshkeys"
KIND = "host_keys"


def key_files(paths: Paths) -> list[Path]:
    d = paths.config_dir / "keys"
    out: list[Path] = []
    for kind in KEY_TYPES:
        secret = d / f"ssh_host_{kind}_key"
        if secret.is_file() and secret.with_name(secret.name + ".pub").is_file():
            out += [secret, secret.with_name(secret.name + ".pub")]
    return out


class HostKeyDelivery:
    """`Dispatcher.actions_for` hook: the host-key action once per node boot, chained after any other hook."""

    def __init__(
        self,
        paths: Paths,
        gate: Gate,
        previous: Callable[[Node, str], tuple[Action, ...]] | None = None,
    ) -> None:
        self.paths = paths
        self.gate = gate
        self.previous = previous
        self._delivered: dict[str, str] = {}
        self._stamp: tuple[tuple[str, int], ...] = ()
        self._action: Action | None = None
        self.sent = 0
        self._load()  # now, as root: perceus-bus may drop privileges right after start-up

    def _load(self) -> Action | None:
        if self._stamp and not os.access(self.paths.config_dir / "keys", os.R_OK | os.X_OK):
            return self._action  # after the privilege drop: what was read as root stays
        try:
            files = key_files(self.paths)
            stamp = tuple((p.name, p.stat().st_mtime_ns) for p in files)
            if stamp != self._stamp:
                data = {p.name: p.read_text(encoding="ascii") for p in files}
                self._stamp = stamp
                self._action = Action(module=MODULE, kind=KIND, data={"files": data}) if data else None
        except OSError as exc:  # unreadable after the privilege drop: keep what was read as root
            log.debug("host_keys_reload_skipped", error=str(exc))
        return self._action

    def __call__(self, node: Node, state: str) -> tuple[Action, ...]:
        actions = self.previous(node, state) if self.previous is not None else ()
        binding = self.gate.bound(node.nodeid)
        if binding is None or not binding.key or binding.stage != Stage.RUNTIME:
            return actions
        if not binding.proven:
            if self._action is not None:  # there was a secret to give: say who did not get it, and why
                self.gate.audit.refusal("secrets_withheld", binding.key, node=node.nodeid, reason="session not proven")
            return actions
        if not node.enabled:
            return actions
        if self._delivered.get(node.nodeid) == binding.boot_id:
            return actions
        action = self._load()
        if action is None:
            return actions
        if len(self._delivered) >= 1 << 20:
            self._delivered.clear()
        self._delivered[node.nodeid] = binding.boot_id
        self.sent += 1
        log.info("host_keys_sent", node=node.hostname, boot_id=binding.boot_id)
        return (*actions, action)
