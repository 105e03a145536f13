"""The audit log's hash chain and signed checkpoints: the format an auditor re-implements.

Each event is stored as its *canonical body*: a JSON object with keys sorted, no insignificant
white space (separators ``,`` and ``:``), non-ASCII characters as UTF-8 (not ``\\u`` escapes),
only strings, integers, booleans, null, lists and objects. Its hash is::

    hash = SHA-256( b"vault:audit:v1\\x00" || prev_hash (32 bytes) || body (UTF-8) )

where ``prev_hash`` is the previous event's hash, or 32 zero bytes for event 1. A checkpoint
signs the head of the chain with Ed25519::

    message = b"vault:audit-checkpoint:v1\\x00" || seq (8 bytes, big-endian) || head_hash (32)
              || at (RFC 3339 UTC text, UTF-8)

SECURITY.md ("Audit log format") restates this; ``tests/vectors/audit-chain-v1.json`` pins it.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from vault.crypto._hazmat import ed25519_sign, ed25519_verify

EVENT_DOMAIN = b"vault:audit:v1\x00"
CHECKPOINT_DOMAIN = b"vault:audit-checkpoint:v1\x00"
GENESIS_HASH = bytes(32)
BODY_VERSION = 1
INLINE_CUSTOMER_IDS = 100  # events naming more customers keep only their count and digest


def canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(prev_hash: bytes, body: bytes) -> bytes:
    return hashlib.sha256(EVENT_DOMAIN + prev_hash + body).digest()


def customer_digest(customer_ids: Iterable[str]) -> str:
    """SHA-256 (hex) of the sorted, de-duplicated ids joined by newlines."""
    return hashlib.sha256("\n".join(sorted(set(customer_ids))).encode()).hexdigest()


def format_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def checkpoint_message(seq: int, head_hash: bytes, at: str) -> bytes:
    return CHECKPOINT_DOMAIN + struct.pack(">Q", seq) + head_hash + at.encode()


def sign_checkpoint(private_seed: bytes, seq: int, head_hash: bytes, at: str) -> bytes:
    return ed25519_sign(private_seed, checkpoint_message(seq, head_hash, at))


def checkpoint_signature_valid(
    public_key: bytes, seq: int, head_hash: bytes, at: str, signature: bytes
) -> bool:
    return ed25519_verify(public_key, signature, checkpoint_message(seq, head_hash, at))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    head_hash: bytes
    at: str
    signature: bytes

    public_key: bytes | None = None  # as given in a checkpoint file

    def to_json(self, public_key: bytes) -> dict[str, Any]:
        return {
            "format": "vault-audit-checkpoint/v1",
            "seq": self.seq,
            "head_hash": self.head_hash.hex(),
            "at": self.at,
            "signature": self.signature.hex(),
            "public_key": public_key.hex(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        return cls(
            seq=int(data["seq"]),
            head_hash=bytes.fromhex(data["head_hash"]),
            at=str(data["at"]),
            signature=bytes.fromhex(data["signature"]),
            public_key=bytes.fromhex(data["public_key"]) if data.get("public_key") else None,
        )


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    kind: str  # modified | missing | reordered | truncated | bad-signature | forked
    detail: str

    def __str__(self) -> str:
        return f"event {self.seq}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    events: int
    last_seq: int
    head_hash: bytes
    checkpoints: int
    problems: Sequence[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


VERIFIED_COLUMNS = ("actor", "action", "purpose", "outcome", "at", "request_id")


class ChainVerifier:
    """Walks events in ``seq`` order and reports the first way the chain is broken."""

    def __init__(self) -> None:
        self.prev_hash = GENESIS_HASH
        self.expected_seq = 1
        self.count = 0
        self.problem: Problem | None = None
        self.hash_at: dict[int, bytes] = {}
        self._want: set[int] = set()

    def want_hash_at(self, seqs: Iterable[int]) -> None:
        """Remember the hashes at these positions (where checkpoints point)."""
        self._want.update(seqs)

    def feed(
        self,
        seq: int,
        columns: tuple[str | None, ...],
        body: bytes,
        prev_hash: bytes,
        digest: bytes,
        customer_count: int,
        indexed_customers: Sequence[str],
    ) -> bool:
        """Check one stored event: its ``seq``, the queryable ``columns`` (actor, action,
        purpose, outcome, at, request_id, customer_count), its record, its hashes, and the
        customer index rows queries use.
        Returns False at the first problem (then stop feeding)."""
        if seq != self.expected_seq:
            self.problem = Problem(
                self.expected_seq,
                "missing",
                f"the log jumps from event {self.expected_seq - 1} to {seq}",
            )
            return False
        if hashlib.sha256(EVENT_DOMAIN + prev_hash + body).digest() != digest:
            self.problem = Problem(seq, "modified", "its record does not match its hash")
            return False
        record = orjson.loads(body)  # the canonical body is JSON; orjson parses it ~3× faster
        if record.get("seq") != seq:
            self.problem = Problem(
                seq, "reordered", f"it holds the record of event {record.get('seq')}"
            )
            return False
        if prev_hash != self.prev_hash:
            self.problem = Problem(
                seq,
                "forked",
                f"expected prev {self.prev_hash.hex()[:12]}…, got {prev_hash.hex()[:12]}…",
            )
            return False
        for name, value in zip(VERIFIED_COLUMNS, columns, strict=True):
            if record.get(name) != value:
                self.problem = Problem(
                    seq, "modified", f"column {name!r} differs from the hashed record"
                )
                return False
        customers = record.get("customers", {})
        if customer_count != customers.get("count"):
            self.problem = Problem(
                seq, "modified", "column 'customer_count' differs from the hashed record"
            )
            return False
        if len(indexed_customers) != customers.get("count") or (
            indexed_customers and customer_digest(indexed_customers) != customers.get("digest")
        ):
            self.problem = Problem(
                seq, "modified", "its customer index rows differ from the hashed record"
            )
            return False
        if seq in self._want:
            self.hash_at[seq] = digest
        self.prev_hash = digest
        self.expected_seq += 1
        self.count += 1
        return True

    def check_checkpoint(
        self, checkpoint: Checkpoint, public_key: bytes, *, last_seq: int, source: str
    ) -> Problem | None:
        if checkpoint.public_key is not None and checkpoint.public_key != public_key:
            return Problem(
                checkpoint.seq,
                "bad-signature",
                f"{source} checkpoint was signed by another key than this vault's "
                "(was the audit signing key replaced?)",
            )
        if not checkpoint_signature_valid(
            public_key, checkpoint.seq, checkpoint.head_hash, checkpoint.at, checkpoint.signature
        ):
            return Problem(checkpoint.seq, "bad-signature", f"{source} checkpoint does not verify")
        if checkpoint.seq > last_seq:
            return Problem(
                last_seq + 1,
                "truncated",
                f"the log ends at event {last_seq} but a {source} checkpoint covers "
                f"event {checkpoint.seq}",
            )
        stored = self.hash_at.get(checkpoint.seq)
        if stored != checkpoint.head_hash:
            return Problem(
                checkpoint.seq,
                "modified",
                f"the chain's hash here differs from the signed {source} checkpoint "
                f"(expected {checkpoint.head_hash.hex()[:12]}…); the log was rewritten",
            )
        return None
