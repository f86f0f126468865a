"""Helpers for the hostile-client suite: an attacker's tools against a real perceus-bus on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import zmq
from tests.integration.security.conftest import master_pub

from perceus.agent.bus import BusClient, CurveClient
from perceus.errors import BusError
from perceus.lab.bus import RunningBus
from perceus.master.config import Paths
from perceus.master.security.audit import audit_path, read
from perceus.master.security.hostkeys import KIND
from perceus.protocol import codec
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Hello, Message, Welcome

MAC = "52:54:00:AA:00:01"
BOOT = "1f" * 16
SECRET_TEXT = "-----BEGIN OPENSSH PRIVATE KEY-----\ncluster-secret\n-----END OPENSSH PRIVATE KEY-----\n"


def write_host_keys(paths: Paths) -> None:
    """Cluster SSH host keys as `perceus configure sshkeys` leaves them (content is opaque to the bus)."""
    keys = paths.config_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / "ssh_host_ed25519_key").write_text(SECRET_TEXT)
    (keys / "ssh_host_ed25519_key").chmod(0o600)
    (keys / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519 AAAA cluster\n")


def node_client(bus: RunningBus, keypair: tuple[bytes, bytes] | None = None) -> BusClient:
    return BusClient([bus.endpoint], curve=CurveClient(master_pub(bus.paths), keypair))


def stage1_hello(mac: str = MAC, boot: str = BOOT, next_key: str = "") -> Hello:
    return Hello(macs=(mac,), state="init", stage=Stage.STAGE1, boot_id=boot, next_key=next_key)


def runtime_hello(mac: str = MAC, boot: str = "ab" * 16) -> Hello:
    return Hello(macs=(mac,), state="ready", stage=Stage.RUNTIME, boot_id=boot)


def has_secrets(reply: Message) -> bool:
    return isinstance(reply, Welcome) and any(a.kind == KIND for a in reply.actions)


def refused(c: BusClient, msg: Message, code: str) -> bool:
    try:
        c.request(msg, timeout=5.0)
    except BusError as exc:
        return exc.code == code
    return False


def audit_events(paths: Paths) -> list[str]:
    return [str(r.get("event")) for r in read(audit_path(paths))]


def audit_has(paths: Paths, event: str, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if event in audit_events(paths):
            return True
        time.sleep(0.05)
    return False


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def pipelined(endpoint: str, server_key: bytes, frames: list[bytes], *, keys: int = 8) -> int:
    """Send `frames` from `keys` fresh Curve keys as fast as possible; returns the replies received."""
    ctx = zmq.Context.instance()
    socks: list[zmq.Socket[bytes]] = []
    for _ in range(keys):
        s: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        CurveClient(server_key)(s)
        s.connect(endpoint)
        socks.append(s)
    try:
        for i, frame in enumerate(frames):
            socks[i % keys].send(frame)
        got = 0
        deadline = time.monotonic() + 120
        while got < len(frames) and time.monotonic() < deadline:
            for s in socks:
                while s.poll(0):
                    s.recv_multipart()
                    got += 1
            time.sleep(0.01)
        return got
    finally:
        for s in socks:
            s.close(linger=0)


def encode(msg: Message, **changes: Any) -> bytes:
    import dataclasses

    return codec.encode(dataclasses.replace(msg, **changes) if changes else msg)
