"""The audit format is pinned byte for byte by tests/vectors/audit-chain-v1.json."""

from __future__ import annotations

import json
from pathlib import Path

from vault.audit.chain import (
    GENESIS_HASH,
    canonical,
    checkpoint_signature_valid,
    event_hash,
    sign_checkpoint,
)
from vault.crypto._hazmat import ed25519_public_key

VECTOR = json.loads((Path(__file__).parent.parent / "vectors" / "audit-chain-v1.json").read_text())


def test_canonical_bodies_and_hashes_match_the_vectors() -> None:
    prev = GENESIS_HASH
    for event in VECTOR["events"]:
        body = event["body"].encode()
        assert canonical(json.loads(body)) == body  # the body is in canonical form
        assert event["prev_hash"] == prev.hex()
        prev = event_hash(prev, body)
        assert prev.hex() == event["hash"]


def test_checkpoint_signature_matches_the_vector() -> None:
    seed = bytes.fromhex(VECTOR["signing_seed"])
    public = ed25519_public_key(seed)
    assert public.hex() == VECTOR["public_key"]
    checkpoint = VECTOR["checkpoint"]
    head = bytes.fromhex(checkpoint["head_hash"])
    assert (
        sign_checkpoint(seed, checkpoint["seq"], head, checkpoint["at"]).hex()
        == checkpoint["signature"]
    )
    assert checkpoint_signature_valid(
        public, checkpoint["seq"], head, checkpoint["at"], bytes.fromhex(checkpoint["signature"])
    )
