"""The audit log's hash chain and signed checkpoints: the format an auditor re-implements.

Each event is stored as its *canonical body*: the record (a JSON object of 13 keys, ``v`` its
version) serialised by RFC 8785 (JCS) as UTF-8 for v2; v1 bodies used ``json.dumps`` with
sorted keys, which is the same bytes for these records. A verifier hashes the stored bytes and
never re-serialises them. Its hash is::

    hash = SHA-256( b"vault:audit:v1\\x00" || prev_hash (32 bytes) || body )
    mac  = HMAC-SHA256( HMAC-SHA256(seed, b"vault:audit-event-mac-key:v1"), hash )

where ``prev_hash`` is the previous event's hash, or 32 zero bytes for event 1. A checkpoint
signs the head of the chain with Ed25519::

    message = b"vault:audit-checkpoint:v1\\x00" || seq (8 bytes, big-endian) || head_hash (32)
              || at (RFC 3339 UTC text, UTF-8)

SECURITY.md §5 restates this; ``tests/vectors/audit-chain-v1.json`` and ``audit-v2.json`` pin it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import operator
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
BODY_VERSION = 2  # v2: canonical JSON by RFC 8785; v1 logs keep verifying
INLINE_CUSTOMER_IDS = 100  # events naming more customers keep only their count and digest


MAX_SAFE_INTEGER = 2**53 - 1  # I-JSON (RFC 7493): integers a double holds exactly
RECORD_KEYS = frozenset(
    {
        "v",
        "seq",
        "at",
        "actor",
        "roles",
        "action",
        "purpose",
        "outcome",
        "customers",
        "fields",
        "reason",
        "request_id",
        "details",
    }
)
RECORD_VERSIONS = (1, 2)


def _jcs_string(text: str) -> str:
    # JSON.stringify's escapes: \" \\ \b \f \n \r \t, other C0 as \u00xx; everything else
    # as itself. json.dumps(ensure_ascii=False) escapes exactly that set, in lower-case hex.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a string with a lone surrogate has no canonical form") from None
    return json.dumps(text, ensure_ascii=False)


def _jcs(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is outside the I-JSON range (±2^53-1)")
        out.append(str(value))
    elif isinstance(value, str):
        out.append(_jcs_string(value))
    elif isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise ValueError("object keys must be strings")
        out.append("{")
        # RFC 8785 §3.2.3: keys sorted by their UTF-16 code units.
        for n, key in enumerate(sorted(value, key=lambda k: k.encode("utf-16-be"))):
            if n:
                out.append(",")
            out.append(_jcs_string(key))
            out.append(":")
            _jcs(value[key], out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _jcs(item, out)
        out.append("]")
    else:
        # Floats (and anything else) never appear in an audit record: refused, not rounded.
        raise ValueError(f"{type(value).__name__} has no place in an audit record")


def _dumps_is_jcs(value: Any) -> bool:
    """Whether ``json.dumps(sort_keys=True)`` writes ``value`` exactly as JCS does: no floats,
    integers in range, and every key in the Basic Multilingual Plane (where code point order
    and UTF-16 order agree). The usual audit record; checked without serialising."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is dict:
        return all(
            type(key) is str and (key.isascii() or max(key) <= "\uffff") and _dumps_is_jcs(item)
            for key, item in value.items()
        )
    if kind is list or kind is tuple:
        return all(_dumps_is_jcs(item) for item in value)
    return False


def canonical(body: Mapping[str, Any]) -> bytes:
    """RFC 8785 (JCS) for the JSON an audit record holds: strings, integers within ±2^53-1,
    booleans, null, arrays and objects; UTF-8. Floats are refused. For records whose keys are
    all in the Basic Multilingual Plane this is also the v1 form (``json.dumps`` with sorted
    keys, no spaces, UTF-8), so v1 bodies are reproduced too (and it is the fast path here)."""
    if type(body) is dict and _dumps_is_jcs(body):
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string with a lone surrogate has no canonical form") from None
    out: list[str] = []
    _jcs(body, out)
    return "".join(out).encode("utf-8")


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
    # modified | missing | reordered | truncated | bad-signature | forked | malformed | stray
    # | unauthenticated | not-recorded
    kind: str
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
MAC_KEY_LABEL = b"vault:audit-event-mac-key:v1"
_COLUMNS_OF = operator.itemgetter(*VERIFIED_COLUMNS)
_sha256 = hashlib.sha256


def mac_key_for(signing_seed: bytes) -> bytes:
    """The key of the events' MACs, derived from (and kept with) the audit signing key."""
    return hmac.new(signing_seed, MAC_KEY_LABEL, hashlib.sha256).digest()


def event_mac(mac_key: bytes, digest: bytes) -> bytes:
    """HMAC-SHA256 over an event's chain hash: only a holder of the signing key makes one."""
    return hmac.new(mac_key, digest, hashlib.sha256).digest()


def as_bytes(value: object) -> bytes | None:
    """A stored binary value as bytes; ``None`` for anything else (text, numbers, NULL)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return None


class ChainVerifier:
    """Walks events in ``seq`` order and reports the first way the chain is broken.

    With a ``mac_key``, every event after ``mac_after`` (the newest checkpoint whose signature
    verified) must carry a valid MAC, except events of a log older than migration 0009 that
    come before its first event with a MAC. ``start_at`` begins the walk at a checkpointed
    event instead of event 1 (what ``checkpoint`` does: it verifies from the last checkpoint).
    """

    def __init__(self, *, mac_key: bytes | None = None, mac_after: int = 0) -> None:
        self.prev_hash = GENESIS_HASH
        self.expected_seq = 1
        self.count = 0
        self.problem: Problem | None = None
        self.hash_at: dict[int, bytes] = {}
        self._want: set[int] = set()
        self._mac_key = mac_key
        self._mac_after = mac_after
        self._seen_mac = False
        self._anchor: tuple[int, bytes] | None = None
        self._version = 1

    def start_at(self, seq: int, head_hash: bytes) -> None:
        """Begin at event ``seq``, whose hash must be ``head_hash`` (a verified checkpoint)."""
        self.expected_seq = seq
        self._anchor = (seq, head_hash)

    def want_hash_at(self, seqs: Iterable[int]) -> None:
        """Remember the hashes at these positions (where checkpoints point)."""
        self._want.update(seqs)

    def _fail(self, seq: int, kind: str, detail: str) -> bool:
        self.problem = Problem(seq, kind, detail)
        return False

    def feed(
        self,
        seq: int,
        columns: tuple[object, ...],
        body: object,
        prev_hash: object,
        digest: object,
        customer_count: object,
        indexed_customers: Sequence[str],
        mac: object = None,
    ) -> bool:
        """Check one stored event (see :meth:`_feed`). This is the fast path for an event that
        is as the vault wrote it; anything else goes to :meth:`_feed`, which names the problem.
        Returns False at the first problem (then stop feeding)."""
        anchor = self._anchor
        if (
            seq == self.expected_seq
            and type(body) is bytes
            and type(digest) is bytes
            and prev_hash == self.prev_hash
            and (anchor is None or anchor[0] != seq)
            and _sha256(EVENT_DOMAIN + self.prev_hash + body).digest() == digest
        ):
            try:
                record = orjson.loads(body)
            except orjson.JSONDecodeError:
                record = None
            if type(record) is dict and record.keys() == RECORD_KEYS:
                version = record["v"]
                customers = record["customers"]
                if (
                    record["seq"] == seq
                    and type(version) is int
                    and self._version <= version <= 2
                    and _COLUMNS_OF(record) == columns
                    and type(customers) is dict
                    and customers.get("count") == customer_count == len(indexed_customers)
                ):
                    ids = customers.get("ids")
                    if (
                        ids == indexed_customers
                        if ids is not None
                        else (
                            not indexed_customers
                            or customer_digest(indexed_customers) == customers.get("digest")
                        )
                    ) and self._mac_ok(seq, digest, mac):
                        self._version = version
                        if seq in self._want:
                            self.hash_at[seq] = digest
                        self.prev_hash = digest
                        self.expected_seq += 1
                        self.count += 1
                        return True
        return self._feed(
            seq, columns, body, prev_hash, digest, customer_count, indexed_customers, mac
        )

    def _mac_ok(self, seq: int, digest: bytes, mac: object) -> bool:
        mac_bytes = as_bytes(mac)
        if self._mac_key is not None and seq > self._mac_after:
            if mac_bytes is None:
                if self._seen_mac:
                    return False
            elif not hmac.compare_digest(mac_bytes, event_mac(self._mac_key, digest)):
                return False
        if mac_bytes is not None:
            self._seen_mac = True  # from here on, an event without a MAC was not ours
        return True

    def _feed(
        self,
        seq: int,
        columns: tuple[object, ...],
        body: object,
        prev_hash: object,
        digest: object,
        customer_count: object,
        indexed_customers: Sequence[str],
        mac: object = None,
    ) -> bool:
        """Check one stored event: its ``seq``, the queryable ``columns`` (actor, action,
        purpose, outcome, at, request_id), its record, its hashes, its MAC and the customer
        index rows queries use. Values come as the database holds them: a column of the wrong
        type is a problem named here, never an exception.
        Returns False at the first problem (then stop feeding)."""
        if seq != self.expected_seq:
            return self._fail(
                self.expected_seq,
                "missing",
                f"the log jumps from event {self.expected_seq - 1} to {seq}",
            )
        body_bytes, prev, stored = as_bytes(body), as_bytes(prev_hash), as_bytes(digest)
        for name, value in (("body", body_bytes), ("prev_hash", prev), ("hash", stored)):
            if value is None:
                return self._fail(seq, "malformed", f"its {name} is not stored as bytes")
        assert body_bytes is not None and prev is not None and stored is not None
        if len(prev) != 32 or len(stored) != 32:
            return self._fail(seq, "malformed", "its prev_hash or hash is not 32 bytes")
        computed = hashlib.sha256(EVENT_DOMAIN + prev + body_bytes).digest()
        if computed != stored:
            return self._fail(seq, "modified", "its record does not match its hash")
        if self._anchor is not None and self._anchor[0] == seq:
            if stored != self._anchor[1]:
                return self._fail(
                    seq,
                    "modified",
                    f"the chain's hash here differs from the signed checkpoint (expected "
                    f"{self._anchor[1].hex()[:12]}…); the log was rewritten",
                )
            self.prev_hash = prev
        try:
            record = orjson.loads(body_bytes)  # orjson also refuses a body that is not UTF-8
        except orjson.JSONDecodeError:
            try:
                body_bytes.decode("utf-8")
            except UnicodeDecodeError:
                return self._fail(seq, "malformed", "its record is not UTF-8")
            return self._fail(seq, "malformed", "its record is not JSON")
        if not isinstance(record, dict):
            return self._fail(seq, "malformed", "its record is not a JSON object")
        version = record.get("v")
        if version not in RECORD_VERSIONS or isinstance(version, bool):
            return self._fail(seq, "malformed", f"its record version {version!r} is not 1 or 2")
        if version < self._version:
            return self._fail(seq, "malformed", f"a v{version} record after a v{self._version} one")
        if record.keys() != RECORD_KEYS:
            return self._fail(seq, "malformed", "its record does not have exactly the 13 keys")
        self._version = version
        if record.get("seq") != seq:
            return self._fail(
                seq, "reordered", f"it holds the record of event {record.get('seq')!r}"
            )
        if prev != self.prev_hash:
            return self._fail(
                seq,
                "forked",
                f"expected prev {self.prev_hash.hex()[:12]}…, got {prev.hex()[:12]}…",
            )
        for name, column in zip(VERIFIED_COLUMNS, columns, strict=True):
            if record.get(name) != column:
                return self._fail(
                    seq, "modified", f"column {name!r} differs from the hashed record"
                )
        customers = record.get("customers")
        if not isinstance(customers, dict):
            return self._fail(seq, "malformed", "its record has no 'customers' object")
        if customer_count != customers.get("count"):
            return self._fail(
                seq, "modified", "column 'customer_count' differs from the hashed record"
            )
        if len(indexed_customers) != customers.get("count") or (
            indexed_customers and customer_digest(indexed_customers) != customers.get("digest")
        ):
            return self._fail(
                seq, "modified", "its customer index rows differ from the hashed record"
            )
        mac_bytes = as_bytes(mac)
        if self._mac_key is not None and seq > self._mac_after:
            if mac_bytes is not None:
                if not hmac.compare_digest(mac_bytes, event_mac(self._mac_key, stored)):
                    return self._fail(
                        seq,
                        "unauthenticated",
                        "its MAC does not verify: the event was not written by this vault",
                    )
            elif self._seen_mac:
                return self._fail(
                    seq,
                    "unauthenticated",
                    "it has no MAC: the event was written into the database, not by the vault",
                )
        if mac_bytes is not None:
            self._seen_mac = True  # from here on, an event without a MAC was not ours
        if seq in self._want:
            self.hash_at[seq] = stored
        self.prev_hash = stored
        self.expected_seq += 1
        self.count += 1
        return True

    def check_checkpoint(
        self,
        checkpoint: Checkpoint,
        public_keys: Sequence[bytes],
        *,
        last_seq: int,
        source: str,
    ) -> Problem | None:
        """``public_keys``: every key this vault signed with, the current one first."""
        if checkpoint.public_key is not None and checkpoint.public_key not in public_keys:
            return Problem(
                checkpoint.seq,
                "bad-signature",
                f"{source} checkpoint was signed by another key than this vault's "
                "(was the audit signing key replaced?)",
            )
        keys = [checkpoint.public_key] if checkpoint.public_key is not None else public_keys
        if not any(
            checkpoint_signature_valid(
                key, checkpoint.seq, checkpoint.head_hash, checkpoint.at, checkpoint.signature
            )
            for key in keys
        ):
            return Problem(checkpoint.seq, "bad-signature", f"{source} checkpoint does not verify")
        if checkpoint.seq > last_seq:
            return Problem(
                last_seq + 1,
                "truncated",
                f"the log ends at event {last_seq} but a {source} checkpoint covers "
                f"event {checkpoint.seq}",
            )
        if checkpoint.seq == 0:
            return None
        stored = self.hash_at.get(checkpoint.seq)
        if stored != checkpoint.head_hash:
            return Problem(
                checkpoint.seq,
                "modified",
                f"the chain's hash here differs from the signed {source} checkpoint "
                f"(expected {checkpoint.head_hash.hex()[:12]}…); the log was rewritten",
            )
        return None
