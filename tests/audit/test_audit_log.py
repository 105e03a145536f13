"""The audit log: every access is an event, denials and bad tokens too, and tampering shows."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from vault import AccessDenied, InvalidValue, Vault
from vault.audit import AuditQuery, Checkpoint
from vault.audit.chain import GENESIS_HASH, canonical, event_hash
from vault.audit.keys import AUDIT_MEMORY_FILE
from vault.cli import cli
from vault.session import Session
from vault.store.schema import (
    audit_checkpoints,
    audit_event_customers,
    audit_events,
    audit_head,
)


def fill(admin: Session, count: int = 12) -> list[str]:
    ids = [
        admin.add_customer({"name": f"客户{i}", "phone": f"1390000{i:04d}"}, source="t")
        for i in range(count)
    ]
    for customer_id in ids[:4]:
        admin.get_customer(customer_id)
    return ids


def verify(admin: Session, external: list[Checkpoint] | None = None) -> str:
    report = admin.audit_verify(external or [])
    return "ok" if report.ok else str(report.problems[0])


def test_clean_log_verifies_and_counts_every_event(admin: Session) -> None:
    fill(admin)
    report = admin.audit_verify()
    assert report.ok and report.events == 12 + 4
    assert admin.audit_verify().events == 12 + 4 + 1  # the first verify is an event too


def test_read_search_and_write_events_carry_who_what_why_and_no_value(admin: Session) -> None:
    customer_id = admin.add_customer({"name": "张三", "phone": "13800138000"}, source="t")
    admin.find_customers("phone", "138 0013 8000")
    admin.get_customer(customer_id)
    events = admin.audit_query(AuditQuery(customer=customer_id))
    assert [(e["action"], e["outcome"]) for e in events] == [
        ("write", "allowed"),
        ("search", "allowed"),
        ("read", "allowed"),
    ]
    search = events[1]
    assert search["fields"] == ["phone"] and search["actor"] == "admin"
    assert search["purpose"] == "administration" and search["customers"]["ids"] == [customer_id]
    logged = json.dumps(events, ensure_ascii=False)
    for value in ("13800138000", "+8613800138000", "138 0013 8000", "张三"):
        assert value not in logged
    read = events[2]
    assert set(read["fields"]) == {"name", "phone"} and read["request_id"]


def test_denied_attempt_is_audited(initialised: tuple[Vault, str]) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    customer_id = admin.add_customer({"name": "张三"}, source="t")
    analyst = vault.session(admin.add_principal("ana", ["analyst"]), purpose="analytics")
    with pytest.raises(AccessDenied):
        analyst.update_customer(customer_id, {"name": "李四"}, source="t")
    [event] = admin.audit_query(AuditQuery(actor="ana", outcome="denied"))
    assert event["action"] == "write" and event["customers"]["ids"] == [customer_id]
    assert "grants 'write'" in event["reason"]


@pytest.mark.parametrize("kind", ["unknown", "revoked", "expired", "garbage"])
def test_bad_token_is_denied_and_audited(initialised: tuple[Vault, str], kind: str) -> None:
    from datetime import UTC, datetime, timedelta

    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    bad = "vt_" + "A" * 43
    if kind == "revoked":
        bad = admin.add_principal("gone", ["support"])
        admin.revoke_principal("gone")
    elif kind == "expired":
        bad = admin.add_principal(
            "old", ["support"], expires_at=datetime.now(UTC) - timedelta(seconds=1)
        )
    elif kind == "garbage":
        bad = "' OR 1=1 --"
    with pytest.raises(AccessDenied, match="authenticate"):
        vault.session(bad)
    [event] = admin.audit_query(AuditQuery(action="authenticate"))
    assert event["outcome"] == "denied"
    assert bad not in json.dumps(event)
    assert len(event["details"]["token_fingerprint"]) == 12


def test_field_views_per_role_on_chinese_and_latin_data(initialised: tuple[Vault, str]) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    chinese = admin.add_customer(
        {
            "name": "欧阳娜娜",
            "phone": "13800138000",
            "email": "nana@qq.com",
            "id_number": "11010519491231002X",
            "note": "VIP 客户",
        },
        source="t",
        identities=[("youzan", "yz_open_abc123")],
    )
    latin = admin.add_customer({"name": "Zhang Wei", "email": "Wei.Zhang@Example.com"}, source="t")
    support = vault.session(admin.add_principal("sup", ["support"]), purpose="customer_service")
    seen = support.get_customer(chinese)
    assert {k: v.value for k, v in seen.fields.items()} == {
        "name": "欧阳娜娜",
        "phone": "138****8000",
        "email": "n***@qq.com",
    }
    assert seen.identities == []
    assert {k: v.value for k, v in support.get_customer(latin).fields.items()} == {
        "name": "Zhang Wei",
        "email": "w***@example.com",
    }
    analyst = vault.session(admin.add_principal("ana", ["analyst"]), purpose="analytics")
    assert analyst.get_customer(chinese).fields == {}
    assert admin.get_customer(chinese).get("id_number") == "11010519491231002X"
    [read] = admin.audit_query(AuditQuery(actor="sup", customer=chinese))
    assert set(read["fields"]) == {"name", "phone", "email"}


def test_audit_table_holds_no_customer_value(admin: Session) -> None:
    values = {
        "name": "上官婉儿",
        "phone": "13712345678",
        "email": "wan.er@163.com",
        "id_number": "11010519491231002X",
        "address": "陕西省西安市雁塔区小寨路1号",
    }
    customer_id = admin.add_customer(values, source="t")
    admin.find_customers("email", values["email"])
    admin.find_customers("phone", "+86 137-1234-5678")
    admin.update_customer(customer_id, {"note": "晚上联系"}, source="t")
    admin.get_customer(customer_id)
    with admin._vault._engine.connect() as connection:
        stored = b"".join(
            bytes(v) if isinstance(v, bytes) else str(v).encode()
            for row in connection.execute(select(audit_events))
            for v in row
        )
    for value in [*values.values(), "+8613712345678", "晚上联系", "上官"]:
        assert value.encode() not in stored


# --- tampering -------------------------------------------------------------------------------


def test_edited_column_of_one_event_is_named(admin: Session) -> None:
    fill(admin)
    with admin._vault._transaction() as connection:
        connection.execute(update(audit_events).where(audit_events.c.seq == 3).values(actor="eve"))
    assert verify(admin) == "event 3: modified: column 'actor' differs from the hashed record"


def test_edited_record_of_one_event_is_named(admin: Session) -> None:
    fill(admin)
    with admin._vault._transaction() as connection:
        body = connection.execute(
            select(audit_events.c.body).where(audit_events.c.seq == 5)
        ).scalar_one()
        connection.execute(
            update(audit_events)
            .where(audit_events.c.seq == 5)
            .values(body=bytes(body).replace(b'"allowed"', b'"denied"'))
        )
    assert verify(admin) == "event 5: modified: its record does not match its hash"


def test_edited_time_of_one_event_is_named(admin: Session) -> None:
    from datetime import UTC, datetime

    fill(admin)
    with admin._vault._transaction() as connection:
        connection.execute(
            update(audit_events)
            .where(audit_events.c.seq == 2)
            .values(at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    assert verify(admin) == "event 2: modified: column 'at' differs from the hashed record"


def test_deleted_customer_index_rows_are_named(admin: Session) -> None:
    fill(admin)
    with admin._vault._transaction() as connection:
        connection.execute(delete(audit_event_customers).where(audit_event_customers.c.seq == 8))
    assert (
        verify(admin) == "event 8: modified: its customer index rows differ from the hashed record"
    )


def test_checkpoint_signed_by_another_key_is_refused(admin: Session) -> None:
    fill(admin, 2)
    saved = admin.audit_checkpoint().to_json(bytes(32))  # as if from another vault's key
    assert "signed by another key" in verify(admin, [Checkpoint.from_json(saved)])


def test_deleted_event_is_named(admin: Session) -> None:
    fill(admin)
    with admin._vault._transaction() as connection:
        connection.execute(delete(audit_events).where(audit_events.c.seq == 4))
    assert verify(admin) == "event 4: missing: the log jumps from event 3 to 5"


def test_swapped_events_are_named(admin: Session) -> None:
    fill(admin)
    columns = [c for c in audit_events.c if c.name != "seq"]
    with admin._vault._transaction() as connection:
        six, seven = (
            connection.execute(select(*columns).where(audit_events.c.seq == n)).one()._asdict()
            for n in (6, 7)
        )
        connection.execute(update(audit_events).where(audit_events.c.seq == 6).values(**seven))
        connection.execute(update(audit_events).where(audit_events.c.seq == 7).values(**six))
    assert verify(admin) == "event 6: reordered: it holds the record of event 7"


def drop_tail(admin: Session, keep: int) -> None:
    """What an attacker does: drop events after ``keep`` and make the head agree."""
    with admin._vault._transaction() as connection:
        last = connection.execute(
            select(audit_events.c.hash).where(audit_events.c.seq == keep)
        ).scalar_one()
        connection.execute(delete(audit_events).where(audit_events.c.seq > keep))
        connection.execute(delete(audit_event_customers).where(audit_event_customers.c.seq > keep))
        connection.execute(update(audit_head).values(seq=keep, hash=last))


def test_tail_dropped_behind_a_stored_checkpoint_is_caught(admin: Session) -> None:
    fill(admin)
    checkpoint = admin.audit_checkpoint()
    drop_tail(admin, checkpoint.seq - 3)
    problem = verify(admin)
    assert problem.startswith(f"event {checkpoint.seq - 2}: truncated")


def test_tail_dropped_with_its_checkpoints_is_caught_by_the_auditors_copy(admin: Session) -> None:
    fill(admin)
    saved = Checkpoint.from_json(admin.audit_checkpoint().to_json(admin.audit_public_key()))
    drop_tail(admin, saved.seq - 3)
    with admin._vault._transaction() as connection:
        connection.execute(delete(audit_checkpoints))
    assert "remembered checkpoint" in verify(admin)  # the vault home's memory betrays it …
    (admin._vault.location / AUDIT_MEMORY_FILE).unlink()
    assert verify(admin) == "ok"  # … without it nothing in the database does …
    assert "truncated" in verify(admin, [saved])  # … but the auditor's checkpoint does


def rewrite_chain(admin: Session, *, forge_checkpoints: bool) -> None:
    """Rewrite every event (here: one actor renamed) with fresh, consistent hashes."""
    with admin._vault._transaction() as connection:
        rows = connection.execute(select(audit_events).order_by(audit_events.c.seq)).all()
        prev = GENESIS_HASH
        for row in rows:
            record = json.loads(row.body)
            record["actor"] = "someone-else" if record["seq"] == 2 else record["actor"]
            body = canonical(record)
            digest = event_hash(prev, body)
            connection.execute(
                update(audit_events)
                .where(audit_events.c.seq == row.seq)
                .values(body=body, prev_hash=prev, hash=digest, actor=record["actor"])
            )
            prev = digest
        connection.execute(update(audit_head).values(hash=prev))
        if forge_checkpoints:
            for row in connection.execute(select(audit_checkpoints)).all():
                forged = hashlib.sha256(b"fresh").digest()
                connection.execute(
                    update(audit_checkpoints)
                    .where(audit_checkpoints.c.seq == row.seq)
                    .values(head_hash=forged)
                )


def test_whole_chain_rewritten_is_caught_by_the_checkpoint(admin: Session) -> None:
    fill(admin)
    admin.audit_checkpoint()
    fill(admin, 2)
    rewrite_chain(admin, forge_checkpoints=False)
    # The first rewritten event after the checkpoint has a MAC that no longer matches its hash.
    assert "unauthenticated: its MAC does not verify" in verify(admin)
    with admin._vault._transaction() as connection:  # MACs gone too: the checkpoint still holds
        connection.execute(update(audit_events).values(mac=None))
    assert "the log was rewritten" in verify(admin)


def test_whole_chain_rewritten_with_forged_checkpoints_fails_the_signature(admin: Session) -> None:
    fill(admin)
    admin.audit_checkpoint()
    rewrite_chain(admin, forge_checkpoints=True)
    assert "bad-signature" in verify(admin)


def test_cli_verify_exit_codes_and_checkpoint_file(
    initialised: tuple[Vault, str], home: Path, tmp_path: Path
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    fill(admin, 3)
    env = {"VAULT_TOKEN": token}
    saved = tmp_path / "checkpoint.json"
    run = CliRunner().invoke
    assert (
        run(cli, ["--home", str(home), "audit", "checkpoint", "-o", str(saved)], env=env).exit_code
        == 0
    )
    ok = run(cli, ["--home", str(home), "audit", "verify", "--checkpoint", str(saved)], env=env)
    assert ok.exit_code == 0 and ok.stdout.startswith("OK:")
    with vault._transaction() as connection:
        connection.execute(delete(audit_events).where(audit_events.c.seq == 2))
    bad = run(cli, ["--home", str(home), "audit", "verify"], env=env)
    assert bad.exit_code == 1 and "event 2: missing" in bad.stderr
    key = run(cli, ["--home", str(home), "audit", "public-key"], env=env).stdout.strip()
    assert bytes.fromhex(key) == admin.audit_public_key()


def test_export_carries_the_checkpoints_and_verifies_on_its_own(
    admin: Session, tmp_path: Path
) -> None:
    """An auditor's verifier, from SECURITY.md alone, over the JSON Lines export."""
    fill(admin, 5)
    admin.audit_checkpoint()
    path = tmp_path / "audit.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        admin.audit_export(AuditQuery(limit=None), handle, "jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    events = [line for line in lines if "seq" in line]
    assert lines[-1] == {"head": {"seq": events[-1]["seq"], "hash": events[-1]["hash"]}}
    checkpoints = [line["checkpoint"] for line in lines if "checkpoint" in line]
    prev = bytes(32)
    for line in events:
        digest = hashlib.sha256(b"vault:audit:v1\x00" + prev + line["body"].encode()).digest()
        assert digest.hex() == line["hash"] and line["prev_hash"] == prev.hex()
        prev = digest
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    [checkpoint] = checkpoints
    message = (
        b"vault:audit-checkpoint:v1\x00"
        + checkpoint["seq"].to_bytes(8, "big")
        + bytes.fromhex(checkpoint["head_hash"])
        + checkpoint["at"].encode()
    )
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint["public_key"])).verify(
        bytes.fromhex(checkpoint["signature"]), message
    )
    assert events[checkpoint["seq"] - 1]["hash"] == checkpoint["head_hash"]


def test_csv_export_has_a_row_per_event(admin: Session, tmp_path: Path) -> None:
    import csv

    fill(admin, 3)
    path = tmp_path / "audit.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        count = admin.audit_export(AuditQuery(limit=None), handle, "csv")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    # three adds, three reads, and the export's own event, committed before the first row
    assert len(rows) == count == 3 + 3 + 1
    assert rows[-1]["action"] == "audit"
    assert rows[0]["action"] == "write" and rows[0]["actor"] == "admin"


# --- concurrency -------------------------------------------------------------------------------

WORKER = """
import sys
from vault import Vault
session = Vault.open(sys.argv[1]).session(sys.argv[2], purpose="administration")
for _ in range(int(sys.argv[3])):
    session.find_customers("phone", "13800138000")
"""


def test_concurrent_processes_keep_one_chain(
    initialised: tuple[Vault, str], home: Path, db_url: str
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    admin.add_customer({"phone": "13800138000"}, source="t")
    processes, operations = (8, 500) if db_url.startswith("postgresql") else (4, 100)
    tokens = [admin.add_principal(f"worker-{n}", ["admin"]) for n in range(processes)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(home), t, str(operations)],
            env={**os.environ},
            stderr=subprocess.PIPE,
        )
        for t in tokens
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr.decode()[-2000:]
    report = admin.audit_verify()
    assert report.ok, report.problems
    from_workers = [
        e
        for e in admin.audit_query(AuditQuery(action="search", limit=None))
        if e["actor"].startswith("worker-")
    ]
    assert len(from_workers) == processes * operations
    assert len({e["seq"] for e in from_workers}) == processes * operations


@pytest.mark.parametrize(
    "filters", [{"customer": "0" * 37}, {"actor": "a\x00"}, {"action": "read\x00"}]
)
def test_an_audit_filter_no_event_could_match_is_named_not_a_database_error(
    admin: Session, filters: dict[str, str]
) -> None:
    with pytest.raises(InvalidValue, match=next(iter(filters))):
        admin.audit_query(AuditQuery(**filters))  # type: ignore[arg-type]
