"""A swarm peer for the hostile swarm tests: a real stage-one capsule fetch (perceus.agent.capsule_fetch, swarm
on, its peer server on a port the test chose) in a process of its own, which then keeps serving.

Run as `python -m tests.integration.security.swarm_peer CONFIG_JSON`; it prints one JSON line when the fetch is
done (`fetched`, with its duration) and one when stdin closes (`stats` of its peer server), then exits.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from perceus import logsetup
from perceus.agent import peer_serve, security
from perceus.agent.bus import BusClient, CurveClient
from perceus.agent.capsule_fetch import fetch_capsule
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Hello, Welcome


def main(argv: list[str]) -> int:
    cfg = json.loads(argv[1])
    logsetup.configure(level="info", json=True, stream=sys.stderr)
    security.use(security.Trust(bytes.fromhex(cfg["master_key"]), bytes.fromhex(cfg["sign_key"]), "test"))
    peer_serve.LISTEN_PORT = int(cfg["port"])
    keypair = (bytes.fromhex(cfg["public"]), bytes.fromhex(cfg["secret"]))
    client = BusClient([cfg["endpoint"]], curve=CurveClient(bytes.fromhex(cfg["master_key"]), keypair))
    mac = cfg["mac"]
    welcome = client.request(Hello(macs=(mac,), state="init", stage=Stage.STAGE1, boot_id=cfg["boot"]))
    assert isinstance(welcome, Welcome), welcome
    dest = Path(cfg["dest"])
    started = time.monotonic()
    fetched = fetch_capsule(client, mac, welcome.capsule, dest, swarm=True, timeout=10.0)
    seconds = time.monotonic() - started
    if cfg.get("corrupt"):  # a hostile peer: what it keeps for serving no longer matches the manifest
        for kept in (dest / peer_serve.SWARM_DIR).iterdir():
            if not kept.name.startswith("."):
                data = bytearray(kept.read_bytes())
                data[len(data) // 2] ^= 0xFF
                kept.write_bytes(bytes(data))
    print(json.dumps({"event": "fetched", "seconds": seconds, "chunks": fetched.fetched_chunks}), flush=True)
    sys.stdin.read()  # serve until the test closes our stdin
    server = next(iter(peer_serve._servers.values()))
    print(json.dumps({"event": "stats", "served": server.served, "refused": server.refused,
                      "limited": server.limited, "handshakes_refused": server.limits.handshakes_refused}),
          flush=True)  # fmt: skip
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
