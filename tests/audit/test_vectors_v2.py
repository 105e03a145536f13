"""Audit format v2, pinned byte for byte by tests/vectors/audit-v2.json, and checked by a
verifier written only from SECURITY.md §5 (no import from the vault): JCS bodies, the chain,
the event MACs, a checkpoint, an export and the same export truncated."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from vault.audit.chain import (
    GENESIS_HASH,
    ChainVerifier,
    _jcs,
    canonical,
    customer_digest,
    event_hash,
    event_mac,
    mac_key_for,
    sign_checkpoint,
)
from vault.audit.export import verify_export
from vault.crypto._hazmat import ed25519_public_key

VECTORS = Path(__file__).parent.parent / "vectors" / "audit-v2.json"
SEED = bytes(range(32))
JCS_CASES = [
    '{"b":1,"a":[true,false,null],"\\u00e9":"x","\\u20ac":"\\u20ac","\\ud83d\\ude00":"1","\\ufb01":"2"}',
    '{"s":"\\u0000\\b\\t\\n\\f\\r\\"\\\\/\\u007f\\u2028\\u00e9"}',
    '{"n":[0,-1,9007199254740991,-9007199254740991],"o":{}}',
]
CUSTOMER = "0190f5a2-7c3e-7d4a-8b1c-2d3e4f506172"


def record(seq: int, action: str, ids: list[str], details: dict[str, Any]) -> dict[str, Any]:
    return {
        "v": 2,
        "seq": seq,
        "at": f"2026-01-02T03:04:0{seq}.000000Z",
        "actor": "张三-admin",
        "roles": ["admin"],
        "action": action,
        "purpose": "administration",
        "outcome": "allowed",
        "customers": {"count": len(ids), "digest": customer_digest(ids), "ids": ids},
        "fields": ["phone"] if ids else [],
        "reason": "",
        "request_id": f"r-{seq}",
        "details": details,
    }


def build() -> dict[str, Any]:
    records = [
        record(1, "write", [CUSTOMER], {"operation": "add", "source": "导入\t2026"}),
        record(2, "search", [CUSTOMER], {"operation": "find", "😀": 1, "ﬁ": 2}),
        record(3, "audit", [], {"operation": "checkpoint"}),
    ]
    prev, events = GENESIS_HASH, []
    for rec in records:
        body = canonical(rec)
        digest = event_hash(prev, body)
        events.append(
            {
                "seq": rec["seq"],
                "body": body.decode(),
                "prev_hash": prev.hex(),
                "hash": digest.hex(),
                "mac": event_mac(mac_key_for(SEED), digest).hex(),
            }
        )
        prev = digest
    at = "2026-01-02T03:04:09.000000Z"
    public = ed25519_public_key(SEED)
    checkpoint = {
        "format": "vault-audit-checkpoint/v1",
        "seq": 3,
        "head_hash": prev.hex(),
        "at": at,
        "signature": sign_checkpoint(SEED, 3, prev, at).hex(),
        "public_key": public.hex(),
    }
    lines = [
        json.dumps({k: e[k] for k in ("seq", "prev_hash", "hash", "body")}, ensure_ascii=False)
        for e in events
    ]
    export = [
        *lines,
        json.dumps({"checkpoint": checkpoint}),
        json.dumps({"head": {"seq": 3, "hash": prev.hex()}}),
    ]
    truncated = [
        *lines[:2],
        json.dumps({"checkpoint": checkpoint}),
        json.dumps({"head": {"seq": 2, "hash": events[1]["hash"]}}),
    ]
    return {
        "about": "vault audit format v2 (SECURITY.md §5): JCS bodies, SHA-256 chain, "
        "HMAC-SHA256 event MACs, Ed25519 checkpoints, JSON Lines export",
        "jcs": [
            {"input": case, "canonical": canonical(json.loads(case)).decode()} for case in JCS_CASES
        ],
        "signing_seed": SEED.hex(),
        "public_key": public.hex(),
        "mac_key": mac_key_for(SEED).hex(),
        "events": events,
        "checkpoint": checkpoint,
        "export": export,
        "truncated_export": {"lines": truncated, "verdict": "event 3: truncated"},
    }


def test_the_vectors_file_is_what_the_code_makes() -> None:
    assert json.loads(VECTORS.read_text(encoding="utf-8")) == build()


def test_jcs_sorts_by_utf16_and_escapes_as_json_stringify() -> None:
    [sorting, escapes, numbers] = json.loads(VECTORS.read_text(encoding="utf-8"))["jcs"]
    assert sorting["canonical"] == '{"a":[true,false,null],"b":1,"é":"x","€":"€","😀":"1","ﬁ":"2"}'
    assert escapes["canonical"] == '{"s":"\\u0000\\b\\t\\n\\f\\r\\"\\\\/\x7f\u2028é"}'
    assert numbers["canonical"] == '{"n":[0,-1,9007199254740991,-9007199254740991],"o":{}}'


@pytest.mark.parametrize("bad", [1.5, 2**53, "\ud800"])
def test_jcs_refuses_what_has_no_canonical_form(bad: object) -> None:
    with pytest.raises(ValueError):
        canonical({"x": bad})


# --- a verifier from SECURITY.md alone -------------------------------------------------------


def independent_verify(lines: list[str], public_key: bytes) -> str:
    prev, hashes, expected, head = bytes(32), {}, 1, None
    for text in lines:
        line = json.loads(text)
        if "head" in line:
            head = line["head"]
            continue
        if "checkpoint" in line:
            c = line["checkpoint"]
            message = (
                b"vault:audit-checkpoint:v1\x00"
                + struct.pack(">Q", c["seq"])
                + bytes.fromhex(c["head_hash"])
                + c["at"].encode()
            )
            Ed25519PublicKey.from_public_bytes(public_key).verify(
                bytes.fromhex(c["signature"]), message
            )
            if c["seq"] >= expected:
                return f"event {expected}: truncated"
            assert hashes[c["seq"]] == bytes.fromhex(c["head_hash"])
            continue
        body = line["body"].encode()
        record = json.loads(body)
        assert record["v"] in (1, 2) and len(record) == 13
        assert line["seq"] == expected == record["seq"]
        assert bytes.fromhex(line["prev_hash"]) == prev
        prev = hashlib.sha256(b"vault:audit:v1\x00" + prev + body).digest()
        assert prev.hex() == line["hash"] and line["hash"] == line["hash"].lower()
        hashes[expected], expected = prev, expected + 1
    if head is None or head["seq"] > expected - 1:
        return f"event {expected}: truncated"
    assert head == {"seq": expected - 1, "hash": prev.hex()}
    return "ok"


def test_an_independent_verifier_agrees_with_the_vectors_and_the_code() -> None:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    public = bytes.fromhex(vectors["public_key"])
    mac_key = hmac.new(
        bytes.fromhex(vectors["signing_seed"]), b"vault:audit-event-mac-key:v1", hashlib.sha256
    ).digest()
    assert mac_key.hex() == vectors["mac_key"]
    for event in vectors["events"]:
        expected = hmac.new(mac_key, bytes.fromhex(event["hash"]), hashlib.sha256).hexdigest()
        assert event["mac"] == expected
    assert independent_verify(vectors["export"], public) == "ok"
    assert verify_export(vectors["export"], [public]).ok
    truncated = vectors["truncated_export"]
    assert independent_verify(truncated["lines"], public) == truncated["verdict"]
    assert str(verify_export(truncated["lines"], [public]).problems[0]).startswith(
        truncated["verdict"]
    )


def _feed(verifier: ChainVerifier, bodies: list[bytes]) -> bool:
    prev = GENESIS_HASH
    for seq, body in enumerate(bodies, start=1):
        digest = event_hash(prev, body)
        rec = json.loads(body)
        columns = tuple(
            rec[k] for k in ("actor", "action", "purpose", "outcome", "at", "request_id")
        )
        ids = rec["customers"].get("ids", [])
        if not verifier.feed(seq, columns, body, prev, digest, len(ids), ids):
            return False
        prev = digest
    return True


def test_v1_events_keep_verifying_and_may_not_follow_v2() -> None:
    v1 = json.loads((VECTORS.parent / "audit-chain-v1.json").read_text())["events"][0]["body"]
    first = json.loads(v1)
    second = {**record(2, "read", [CUSTOMER], {})}
    assert _feed(ChainVerifier(), [v1.encode(), canonical(second)])
    back = {**first, "seq": 2}
    verifier = ChainVerifier()
    assert not _feed(
        verifier, [canonical({**second, "seq": 1, "at": first["at"]}), canonical(back)]
    )
    assert verifier.problem is not None and "a v1 record after a v2 one" in str(verifier.problem)


def test_new_events_are_v2(admin: Any) -> None:
    admin.add_customer({"name": "张三"}, source="t")
    from vault.audit import AuditQuery

    assert {e["v"] for e in admin.audit_query(AuditQuery())} == {2}


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=("Cs",)), max_size=4), children, max_size=4
        )
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), max_size=4), _json))
def test_the_fast_path_writes_what_jcs_writes(value: dict[str, Any]) -> None:
    out: list[str] = []
    try:
        _jcs(value, out)
    except ValueError:
        return
    assert canonical(value) == "".join(out).encode("utf-8")
