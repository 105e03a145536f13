"""Appends: one round trip per audited event on PostgreSQL once a process knows the head, and
a head moved by another process is found again (issue 15, obs. 6)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from tests.audit.test_audit_log import fill
from vault import Vault
from vault.audit import AuditEvent
from vault.session import Session


def audit_statements(admin: Session, action: Any) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "audit_" in statement:
            seen.append(statement)

    event.listen(admin._vault._engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(admin._vault._engine, "before_cursor_execute", record)
    return seen


def test_an_audited_find_on_postgresql_appends_in_one_statement(admin: Session) -> None:
    fill(admin, 2)
    statements = audit_statements(admin, lambda: admin.find_customers("phone", "13900000001"))
    if admin._vault._engine.dialect.name == "postgresql":
        assert len(statements) == 1 and statements[0].startswith("WITH head AS (UPDATE audit_head")
    else:  # in-process SQLite: head, event, index row, head (no network between them)
        assert len(statements) == 4


def test_a_head_moved_by_another_process_is_read_again_and_the_chain_stays_one(
    initialised: tuple[Vault, str], home: Any
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    fill(admin, 2)
    with Vault.open(home) as other:  # another process's vault, its own guess of the head
        other_admin = other.session(token, purpose="administration")
        for _ in range(3):
            admin.find_customers("phone", "13900000001")
            other_admin.find_customers("phone", "13900000001")
        assert other_admin.audit_verify().ok
    report = admin.audit_verify()
    assert report.ok, report.problems
    assert report.events == 4 + 2 * 3 + 1  # fill, the finds of both, the other's verify


def test_a_rolled_back_append_leaves_no_trace_and_the_next_one_chains(admin: Session) -> None:
    fill(admin, 1)
    with pytest.raises(RuntimeError), admin._vault._transaction() as connection:
        admin._append(connection, AuditEvent(action="read"))
        raise RuntimeError("the change failed")
    admin.find_customers("phone", "13900000001")
    assert admin.audit_verify().ok
