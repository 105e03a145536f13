"""Every failure outside ``VaultError`` is mapped at the door to one, and audited as failed.

Observation 3 of issue 14: a tampered row (a value stored as TEXT) or a database refusal
printed a raw traceback instead of one line, and the failed read was not audited. Here a read
fails in the database (the table it reads is gone) or on a tampered row: the library raises a
``VaultError`` with a one-line message, the CLI prints one line and exits 1 (the traceback only
with ``--debug``), and the audit log holds the read with outcome ``failed``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from vault import AuditQuery, Session, StoreError, Vault, VaultError
from vault.cli import cli


def _break_reads(vault: Vault) -> None:
    """The tags table a customer read touches is gone: the database refuses the read."""
    with vault._engine.begin() as connection:
        connection.execute(text("DROP TABLE customer_tags"))


def _tamper_as_text(vault: Vault) -> None:
    """Every stored field value becomes TEXT, as a hand edit of the database would leave it."""
    with vault._engine.begin() as connection:
        if vault.backend == "sqlite":
            connection.execute(text("UPDATE customer_fields SET value = 'tampered'"))
        else:
            connection.execute(
                text("ALTER TABLE customer_fields ALTER COLUMN value TYPE text USING 'tampered'")
            )


def _failed_reads(admin: Session, customer_id: str) -> list[dict[str, object]]:
    events = admin.audit_query(AuditQuery(customer=customer_id, action="read"))
    return [e for e in events if e["outcome"] == "failed"]


@pytest.mark.parametrize("damage", [_break_reads, _tamper_as_text])
def test_a_read_failing_below_the_door_is_a_vault_error_and_audited(
    vault: Vault, admin: Session, damage: object
) -> None:
    cid = admin.add_customer({"name": "张三", "phone": "13800138000"}, source="import")
    damage(vault)  # type: ignore[operator]
    with pytest.raises(VaultError) as raised:
        admin.get_customer(cid)
    message = str(raised.value)
    assert "\n" not in message and "13800138000" not in message and "张三" not in message
    assert cid in message or "read" in message
    failed = _failed_reads(admin, cid)
    assert len(failed) == 1 and failed[0]["reason"] == type(raised.value).__name__


def test_a_database_error_is_a_store_error(vault: Vault, admin: Session) -> None:
    cid = admin.add_customer({"name": "张三"}, source="import")
    _break_reads(vault)
    with pytest.raises(StoreError) as raised:
        admin.get_customer(cid)
    assert raised.value.__cause__ is not None  # the driver's error is chained, not shown


def _cli(home: Path, token: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["--home", str(home), *args],
        env={"VAULT_TOKEN": token, "VAULT_PURPOSE": "administration"},
    )
    return result.exit_code, result.stderr


def test_cli_prints_one_line_for_a_database_failure(
    home: Path, initialised: tuple[Vault, str]
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    cid = admin.add_customer({"name": "张三", "phone": "13800138000"}, source="import")
    _break_reads(vault)
    code, stderr = _cli(home, token, "customer", "show", cid, "--json")
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: StoreError: "), stderr
    assert "Traceback" not in stderr and "13800138000" not in stderr
    code, stderr = _cli(home, token, "--debug", "customer", "show", cid)
    assert code == 1 and "Traceback" in stderr
    assert len(_failed_reads(admin, cid)) == 2
    json.dumps(stderr)  # printable


def _audit_body_as_text(vault: Vault) -> None:
    """The first audit event's body becomes TEXT, as a hand edit of the database would leave it."""
    with vault._engine.begin() as connection:
        if vault.backend == "sqlite":
            connection.execute(text("UPDATE audit_events SET body = CAST(body AS TEXT)"))
        else:
            connection.execute(
                text(
                    "ALTER TABLE audit_events ALTER COLUMN body TYPE text "
                    "USING convert_from(body, 'UTF8')"
                )
            )


def test_verifying_a_tampered_audit_row_never_leaks_a_raw_exception(
    vault: Vault, admin: Session
) -> None:
    """``audit verify`` over a body stored as TEXT raised a bare ``TypeError``. Now it either
    reports the chain broken or fails as a ``VaultError``, audited as a failed verify."""
    admin.add_customer({"name": "张三"}, source="import")
    _audit_body_as_text(vault)
    try:
        report = admin.audit_verify()
    except VaultError as error:
        assert "\n" not in str(error)
        with vault._engine.connect() as connection:
            outcomes = connection.execute(
                text("SELECT outcome FROM audit_events WHERE action = 'audit'")
            ).scalars()
            assert "failed" in list(outcomes)
    else:
        assert not report.ok
