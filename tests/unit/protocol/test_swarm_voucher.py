"""The swarm voucher's signed bytes (perceus.protocol.swarm): fixed forever for v2, bound to the asker's key."""

from __future__ import annotations

import nacl.signing

from perceus.agent import security
from perceus.protocol.swarm import TOKEN_TTL, VERIFIER, token_payload

MANIFEST = "ab" * 32
NODE = "52:54:00:21:00:09"
KEY = "0f" * 32

# Golden: what a v2 master signs and a v2 peer rebuilds (a change here breaks every node in the field)
GOLDEN = (
    b"perceus-swarm-voucher-v2\x00" + b"ab" * 32 + b"\x0052:54:00:21:00:09\x00" + b"0f" * 32 + b"\x001796420000.125"
)


def test_payload_bytes_are_the_golden_ones() -> None:
    assert token_payload(MANIFEST, NODE, KEY, 1796420000.125) == GOLDEN
    assert token_payload(MANIFEST, NODE, KEY.upper(), 1796420000.125) == GOLDEN  # hex case never matters


def test_a_voucher_verifies_only_for_the_key_node_capsule_and_time_it_names() -> None:
    signer = nacl.signing.SigningKey(b"\x21" * 32)
    trust = security.Trust(sign_key=bytes(signer.verify_key))
    issued = 1796420000.125
    sig = bytes(signer.sign(token_payload(MANIFEST, NODE, KEY, issued)).signature)
    assert security.verify_voucher(token_payload(MANIFEST, NODE, KEY, issued), sig, trust)
    others = [
        token_payload(MANIFEST, NODE, "1e" * 32, issued),  # the same voucher from another Curve key
        token_payload(MANIFEST, NODE, "", issued),
        token_payload("cd" * 32, NODE, KEY, issued),
        token_payload(MANIFEST, "52:54:00:21:00:0a", KEY, issued),
        token_payload(MANIFEST, VERIFIER, KEY, issued),
        token_payload(MANIFEST, NODE, KEY, issued + TOKEN_TTL),
    ]
    assert not any(security.verify_voucher(p, sig, trust) for p in others)
    # a v1 voucher (no key in the signed bytes) is not a v2 one
    v1 = b"perceus-swarm-voucher-v1\x00" + f"{MANIFEST}\x00{NODE}\x00{issued:.3f}".encode()
    v1_sig = bytes(signer.sign(v1).signature)
    assert not security.verify_voucher(token_payload(MANIFEST, NODE, KEY, issued), v1_sig, trust)
