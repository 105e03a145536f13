"""Verify a JSON Lines audit export on its own: no vault, no database, only pinned public keys
and, if the auditor kept any, checkpoints saved apart (SECURITY.md §5.7).

The export is every event (``{"seq", "prev_hash", "hash", "body" | "body_hex"}``), then every
stored checkpoint (``{"checkpoint": {...}}``), then the chain head (``{"head": {"seq", "hash"}}``)
as the last line. What it proves: the events form one chain from event 1; every checkpoint's
signature is by a pinned key and its hash is the chain's at its ``seq``; the head is the last
event. A checkpoint beyond the last event, a missing head line, or a head beyond the last event
is a truncation.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Sequence
from typing import Any

from vault.audit.chain import (
    GENESIS_HASH,
    RECORD_KEYS,
    RECORD_VERSIONS,
    Checkpoint,
    Problem,
    VerifyReport,
    checkpoint_signature_valid,
    customer_digest,
    event_hash,
)


def _event_bytes(line: dict[str, Any]) -> bytes | None:
    if isinstance(line.get("body"), str):
        return str(line["body"]).encode("utf-8")
    if isinstance(line.get("body_hex"), str):
        try:
            return bytes.fromhex(line["body_hex"])
        except ValueError:
            return None
    return None


def _hex32(value: object) -> bytes | None:
    if not isinstance(value, str) or len(value) != 64 or value != value.lower():
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def verify_export(
    lines: Iterable[str],
    public_keys: Sequence[bytes],
    external: Iterable[Checkpoint] = (),
) -> VerifyReport:
    """Check an export's lines against ``public_keys`` (pinned by the auditor) and the
    checkpoints kept apart. Stops at the first broken event; never raises for bad input."""
    prev, expected, count, last_version = GENESIS_HASH, 1, 0, 1
    hash_at: dict[int, bytes] = {}
    checkpoints: list[Checkpoint] = []
    head: tuple[int, bytes] | None = None
    problems: list[Problem] = []

    def fail(seq: int, kind: str, detail: str) -> VerifyReport:
        problems.append(Problem(seq, kind, detail))
        return VerifyReport(count, expected - 1, prev, len(checkpoints), problems)

    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            return fail(expected, "malformed", f"line {number} is not JSON")
        if not isinstance(line, dict):
            return fail(expected, "malformed", f"line {number} is not a JSON object")
        if head is not None:
            return fail(expected, "malformed", f"line {number} comes after the head line")
        if "checkpoint" in line:
            try:
                checkpoints.append(Checkpoint.from_json(line["checkpoint"]))
            except (KeyError, TypeError, ValueError):
                return fail(expected, "malformed", f"line {number}: a checkpoint line is malformed")
            continue
        if "head" in line:
            data = line["head"]
            seq = data.get("seq") if isinstance(data, dict) else None
            digest = _hex32(data.get("hash")) if isinstance(data, dict) else None
            if not isinstance(seq, int) or digest is None:
                return fail(expected, "malformed", f"line {number}: the head line is malformed")
            head = (seq, digest)
            continue
        if checkpoints:
            return fail(expected, "malformed", f"line {number}: an event after the checkpoints")
        seq = line.get("seq")
        if seq != expected:
            if isinstance(seq, int) and seq > expected:
                return fail(
                    expected, "missing", f"the log jumps from event {expected - 1} to {seq}"
                )
            return fail(expected, "malformed", f"line {number} is not event {expected}")
        body, stated_prev, stated = (
            _event_bytes(line),
            _hex32(line.get("prev_hash")),
            _hex32(line.get("hash")),
        )
        if body is None or stated_prev is None or stated is None:
            return fail(seq, "malformed", "its body, prev_hash or hash is missing or not hex")
        if not hmac.compare_digest(event_hash(stated_prev, body), stated):
            return fail(seq, "modified", "its record does not match its hash")
        try:
            record = json.loads(body)
        except ValueError:
            return fail(seq, "malformed", "its record is not UTF-8 JSON")
        if not isinstance(record, dict):
            return fail(seq, "malformed", "its record is not a JSON object")
        version = record.get("v")
        if version not in RECORD_VERSIONS or isinstance(version, bool) or version < last_version:
            return fail(seq, "malformed", f"its record version {version!r} is not valid here")
        if record.keys() != RECORD_KEYS:
            return fail(seq, "malformed", "its record does not have exactly the 13 keys")
        customers = record["customers"]
        if not isinstance(customers, dict) or (
            "ids" in customers
            and (
                not isinstance(customers["ids"], list)
                or customers.get("count") != len(customers["ids"])
                or customers.get("digest") != customer_digest(customers["ids"])
            )
        ):
            return fail(seq, "modified", "its customer ids differ from their count or digest")
        last_version = version
        if record.get("seq") != seq:
            return fail(seq, "reordered", f"it holds the record of event {record.get('seq')!r}")
        if stated_prev != prev:
            return fail(
                seq, "forked", f"expected prev {prev.hex()[:12]}…, got {stated_prev.hex()[:12]}…"
            )
        prev = stated
        hash_at[seq] = stated
        expected += 1
        count += 1

    last = expected - 1
    if head is None:
        return fail(last + 1, "truncated", "no head line: the export was cut short")
    for checkpoint, source in [
        *((c, "exported") for c in checkpoints),
        *((c, "external") for c in external),
    ]:
        problem = _check(checkpoint, source, public_keys, hash_at, last)
        if problem is not None:
            problems.append(problem)
            break
    if not problems:
        head_seq, head_hash = head
        if head_seq > last:
            problems.append(
                Problem(
                    last + 1,
                    "truncated",
                    f"the head records event {head_seq}, the log ends at {last}",
                )
            )
        elif head_seq < last:
            problems.append(
                Problem(
                    head_seq + 1,
                    "stray",
                    f"the head records event {head_seq}, the log goes on to {last}",
                )
            )
        elif head_hash != prev:
            problems.append(Problem(last, "modified", "the head's hash differs from the chain's"))
    return VerifyReport(count, last, prev, len(checkpoints), problems)


def _check(
    checkpoint: Checkpoint,
    source: str,
    public_keys: Sequence[bytes],
    hash_at: dict[int, bytes],
    last: int,
) -> Problem | None:
    keys = [checkpoint.public_key] if checkpoint.public_key is not None else list(public_keys)
    if checkpoint.public_key is not None and checkpoint.public_key not in public_keys:
        return Problem(
            checkpoint.seq, "bad-signature", f"{source} checkpoint names a key not pinned"
        )
    if not any(
        checkpoint_signature_valid(
            key, checkpoint.seq, checkpoint.head_hash, checkpoint.at, checkpoint.signature
        )
        for key in keys
    ):
        return Problem(checkpoint.seq, "bad-signature", f"{source} checkpoint does not verify")
    if checkpoint.seq > last:
        return Problem(
            last + 1,
            "truncated",
            f"the log ends at event {last} but a {source} checkpoint covers event {checkpoint.seq}",
        )
    if checkpoint.seq and hash_at.get(checkpoint.seq) != checkpoint.head_hash:
        return Problem(
            checkpoint.seq,
            "modified",
            f"the chain's hash here differs from the signed {source} checkpoint; "
            "the log was rewritten",
        )
    return None
