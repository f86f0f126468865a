"""The node's peer server on 127.0.0.1 (real ZeroMQ, Curve with the node's key): it serves only what it holds,
for the capsule it holds, to askers with a voucher the master signed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import nacl.signing
import pytest

from perceus.agent import security
from perceus.agent.bus import CurveClient, PeerLink, new_keypair, poll_sockets
from perceus.agent.peer_serve import PeerServer
from perceus.protocol import codec
from perceus.protocol.capsule import digest
from perceus.protocol.messages import Chunk, Error, Message, PeerGet
from perceus.protocol.swarm import token_payload

MANIFEST = "ab" * 32
ASKER = "52:54:00:21:00:09"
MASTER_SIGNER = nacl.signing.SigningKey.generate()
ASKER_KEY = CurveClient(b"\0" * 32)  # the asker's session keypair: the voucher names its public half


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[PeerServer, CurveClient]]:
    security.use(security.Trust(sign_key=bytes(MASTER_SIGNER.verify_key)))
    node_key = CurveClient(b"\0" * 32, new_keypair())  # the serving node's own session keypair
    srv = PeerServer(MANIFEST, tmp_path / "swarm", curve=node_key, port=0).start()
    yield srv, node_key
    srv.stop()
    security.use(None)


def voucher(node: str, issued: float, signer: nacl.signing.SigningKey = MASTER_SIGNER) -> bytes:
    payload = token_payload(MANIFEST, node, ASKER_KEY.public_key.hex(), issued)
    return bytes(signer.sign(payload).signature) + f"{issued:.3f}".encode()


def ask(srv: PeerServer, node_key: CurveClient, msg: PeerGet) -> tuple[Message, list[bytes]]:
    link = PeerLink(f"tcp://127.0.0.1:{srv.port}", curve=ASKER_KEY.toward(node_key.public_key))
    try:
        link.send(msg)
        assert poll_sockets([link.socket], 5.0), "no answer from the peer server"
        frames = link.socket.recv_multipart()
        return codec.decode(frames[0]), frames[1:]
    finally:
        link.close()


def test_serves_held_chunks_to_vouched_askers_only(server: tuple[PeerServer, CurveClient]) -> None:
    srv, key = server
    data = b"compressed chunk bytes" * 1000
    h = digest(data)
    srv.keep(h, data)
    now = time.time()
    reply, payload = ask(srv, key, PeerGet(rid=1, node=ASKER, manifest=MANIFEST, hash=h, token=voucher(ASKER, now)))
    assert isinstance(reply, Chunk) and reply.hash == h and payload == [data]
    refused = {
        "voucher for another node": PeerGet(rid=2, node=ASKER, manifest=MANIFEST, hash=h,
                                            token=voucher("52:54:00:21:00:0a", now)),
        "not the master's key": PeerGet(rid=3, node=ASKER, manifest=MANIFEST, hash=h,
                                        token=voucher(ASKER, now, nacl.signing.SigningKey.generate())),
        "expired": PeerGet(rid=4, node=ASKER, manifest=MANIFEST, hash=h, token=voucher(ASKER, now - 3600)),
        "no voucher": PeerGet(rid=5, node=ASKER, manifest=MANIFEST, hash=h),
        "another capsule": PeerGet(rid=6, node=ASKER, manifest="cd" * 32, hash=h, token=voucher(ASKER, now)),
        "not held": PeerGet(rid=7, node=ASKER, manifest=MANIFEST, hash="ef" * 32, token=voucher(ASKER, now)),
    }  # fmt: skip
    for why, msg in refused.items():
        reply, payload = ask(srv, key, msg)
        assert isinstance(reply, Error) and not payload, why
    assert srv.served == 1 and srv.refused == len(refused)


def test_a_client_with_the_wrong_server_key_gets_nothing(server: tuple[PeerServer, CurveClient]) -> None:
    srv, _ = server
    impostor = CurveClient(b"\0" * 32).toward(CurveClient(b"\0" * 32).public_key)  # not the node's key
    link = PeerLink(f"tcp://127.0.0.1:{srv.port}", curve=impostor)
    try:
        link.send(PeerGet(rid=1, node=ASKER, manifest=MANIFEST, hash="ab" * 32, token=b""))
        assert not poll_sockets([link.socket], 1.0)  # the Curve handshake fails: no request ever arrives
    finally:
        link.close()
    assert srv.served == 0 and srv.refused == 0
