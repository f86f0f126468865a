"""What master and nodes share about the capsule swarm (issue 21): the voucher's signed bytes, its lifetime, the port.

A voucher (`Sources.token`) is the master's Ed25519 signature (the same key that signs manifests) over
`token_payload(manifest, node, issued)`.  A serving peer checks it with the signing key it already trusts, that
it names the capsule the peer itself holds, and that it is younger than TOKEN_TTL by the master's clock (the
peer knows the master's clock from its own `sources` replies: stage one has no synchronised time).  The domain
prefix keeps a voucher from ever being mistaken for a signed manifest (a msgpack map).
"""

from __future__ import annotations

PEER_PORT = 9989
TOKEN_TTL = 600.0
_DOMAIN = b"perceus-swarm-voucher-v1\0"


def token_payload(manifest: str, node: str, issued: float) -> bytes:
    """The exact bytes the master signs to vouch that `node` may fetch chunks of `manifest` from peers."""
    return _DOMAIN + f"{manifest}\0{node}\0{issued:.3f}".encode("ascii")
