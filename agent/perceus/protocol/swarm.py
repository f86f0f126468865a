"""What master and nodes share about the capsule swarm (issue 21): the voucher's signed bytes, its lifetime, the port.

A voucher (`Sources.token`) is the master's Ed25519 signature (the same key that signs manifests) over
`token_payload(manifest, node, key, issued)`: this node, talking with this CurveZMQ public key (hex, the key the
master's ZAP handler saw), may fetch chunks of this capsule from peers until `issued + TOKEN_TTL` by the
master's clock.  A serving peer rebuilds the payload with the key *its own* ZAP handler saw on the connection
(never a key the asker names), so a voucher used from any other key fails the signature check.  It checks the
signature with the signing key it already trusts, that the voucher names the capsule the peer itself holds,
and the expiry (the peer knows the master's clock from its own `sources` replies: stage one has no
synchronised time).  The domain prefix keeps a voucher from ever being mistaken for a signed manifest (a
msgpack map); v2 added the key (a v1 voucher, not bound to a key, is refused by v2 peers and vice versa).

The master vouches for itself as `VERIFIER` when it checks a reported chunk at the accused peer (swarm_bus.py).
"""

from __future__ import annotations

PEER_PORT = 9989
TOKEN_TTL = 120.0  # a node asks for sources every fraction of a second while fetching: short is enough
VERIFIER = "master"  # the `node` of the master's own voucher (checking a reported peer)
_DOMAIN = b"perceus-swarm-voucher-v2\0"


def token_payload(manifest: str, node: str, key: str, issued: float) -> bytes:
    """The exact bytes the master signs: `node`, connecting with Curve key `key` (hex; "" without Curve), may
    fetch chunks of `manifest` from peers for TOKEN_TTL seconds after `issued`."""
    return _DOMAIN + f"{manifest}\0{node}\0{key.lower()}\0{issued:.3f}".encode("ascii", "replace")
