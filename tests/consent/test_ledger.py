"""The consent ledger: append-only, the current state derived from it, renewal, bulk import."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from vault import AccessDenied, AuditQuery, InvalidValue, NotFound, Vault
from vault.cli import cli
from vault.consent import active_customers
from vault.session import Session
from vault.store.schema import consent_events

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def people(admin: Session, count: int) -> list[str]:
    return [
        admin.add_customer({"name": f"顾客{n}", "phone": f"1380013{n:04d}"}, source="test")
        for n in range(count)
    ]


def active(admin: Session, purpose: str, ids: list[str]) -> set[str]:
    with admin._vault._engine.connect() as connection:
        return active_customers(connection, admin._vault.policy, purpose, ids)


def test_grant_then_withdraw_derives_the_latest_state(admin: Session) -> None:
    a, b = people(admin, 2)
    admin.grant_consent(a, "marketing_sms", source="web-form", evidence="form-1", at=T0)
    admin.grant_consent(b, "marketing_sms", source="taobao", at=T0)
    assert active(admin, "marketing_sms", [a, b]) == {a, b}
    admin.withdraw_consent(a, "marketing_sms", source="phone", at=T0 + timedelta(days=1))
    assert active(admin, "marketing_sms", [a, b]) == {b}
    summary = admin.consent_of(a)
    assert summary.purposes["marketing_sms"].state == "withdrawn"
    assert not summary.purposes["marketing_sms"].active
    assert [(r.state, r.channel, r.evidence) for r in summary.ledger] == [
        ("granted", "web-form", "form-1"),
        ("withdrawn", "phone", None),
    ]


def test_a_back_dated_entry_is_kept_in_the_ledger_but_does_not_override_a_later_one(
    admin: Session,
) -> None:
    (a,) = people(admin, 1)
    admin.withdraw_consent(a, "marketing_email", source="web-form", at=T0 + timedelta(days=2))
    admin.grant_consent(a, "marketing_email", source="import", at=T0)
    assert active(admin, "marketing_email", [a]) == set()
    assert len(admin.consent_of(a).ledger) == 2


def test_purposes_with_another_legal_basis_need_no_grant(admin: Session) -> None:
    ids = people(admin, 3)
    assert active(admin, "customer_service", ids) == set(ids)
    assert active(admin, "no_such_purpose", ids) == set()
    assert admin.consent_of(ids[0]).purposes["customer_service"].active


def test_a_grant_under_an_older_policy_version_needs_renewal(admin: Session) -> None:
    (a,) = people(admin, 1)
    admin.grant_consent(a, "marketing_sms", source="web-form", at=T0)
    purposes = admin._vault.policy.purposes
    purposes["marketing_sms"] = replace(purposes["marketing_sms"], version=2)
    flagged = admin.consent_of(a).purposes["marketing_sms"]
    assert flagged.needs_renewal and flagged.policy_version == 1 and flagged.current_version == 2
    admin.grant_consent(a, "marketing_sms", source="web-form")
    assert not admin.consent_of(a).purposes["marketing_sms"].needs_renewal


def test_bad_entries_are_refused_and_nothing_is_written(admin: Session) -> None:
    (a,) = people(admin, 1)
    with pytest.raises(InvalidValue, match="purpose"):
        admin.grant_consent(a, "marketing_fax", source="web-form")
    with pytest.raises(InvalidValue, match="future"):
        admin.grant_consent(a, "marketing_sms", source="web-form", at=T0 + timedelta(days=3650))
    with pytest.raises(NotFound):
        admin.grant_consent("00000000-0000-7000-8000-000000000000", "marketing_sms", source="x")
    with admin._vault._engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(consent_events)).scalar() == 0


def test_a_role_without_the_consent_action_is_refused_and_audited(admin: Session) -> None:
    (a,) = people(admin, 1)
    support = admin._vault.session(
        admin.add_principal("agent", ["support"]), purpose="customer_service"
    )
    with pytest.raises(AccessDenied):
        support.grant_consent(a, "marketing_sms", source="phone")
    denied = admin.audit_query(AuditQuery(action="consent", outcome="denied"))
    assert [e["actor"] for e in denied] == ["agent"]


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(["customer,purpose,state,at,source,evidence", *rows]) + "\n")
    return path


def test_bulk_import_resolves_references_and_counts_unmatched(
    admin: Session, tmp_path: Path
) -> None:
    a, b, c = people(admin, 3)
    admin.add_identity(c, "youzan", "yz_open_abc", source="test")
    report = admin.import_consent(
        write_csv(
            tmp_path / "consent.csv",
            [
                f"{a},marketing_sms,granted,2026-02-01T10:00:00Z,web-form,ref-1",
                "phone:+86 138-0013-0001,marketing_sms,grant,2026-02-01T10:00:00,taobao,",
                "youzan:yz_open_abc,marketing_sms,granted,2026-02-01T10:00:00+08:00,youzan,",
                "youzan:yz_unknown,marketing_sms,granted,2026-02-01T10:00:00Z,youzan,",
                f"{a},marketing_sms,withdrawn,2026-02-02T10:00:00Z,phone,call-9",
            ],
        )
    )
    assert (report.recorded, report.granted, report.withdrawn) == (4, 3, 1)
    assert (report.unmatched, report.unmatched_lines) == (1, [5])
    assert active(admin, "marketing_sms", [a, b, c]) == {b, c}
    events = admin.audit_query(AuditQuery(action="consent"))
    assert events[-1]["details"]["operation"] == "import"
    assert events[-1]["customers"]["count"] == 3


def test_a_malformed_import_records_nothing_and_names_the_line(
    admin: Session, tmp_path: Path
) -> None:
    (a,) = people(admin, 1)
    path = write_csv(
        tmp_path / "bad.csv",
        [
            f"{a},marketing_sms,granted,2026-02-01T10:00:00Z,web-form,",
            f"{a},marketing_sms,maybe,2026-02-01T10:00:00Z,web-form,",
        ],
    )
    with pytest.raises(InvalidValue, match="line 3"):
        admin.import_consent(path)
    assert admin.consent_of(a).ledger == []


def test_cli_grant_show_withdraw(home: Path, db_url: str, tmp_path: Path) -> None:
    vault, token = Vault.init(home, db_url=db_url)
    with vault:
        admin = vault.session(token, purpose="administration")
        (a,) = people(admin, 1)
    env = {"VAULT_TOKEN": token, "VAULT_PURPOSE": "administration"}

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--home", str(home), *args], env=env)
        assert result.exit_code == 0, (result.output, result.stderr)
        return result.stdout

    run("consent", "grant", a, "marketing_email", "--source", "web-form", "--evidence", "f-7")
    shown = json.loads(run("consent", "show", a, "--json"))
    assert shown["purposes"]["marketing_email"]["state"] == "granted"
    assert shown["ledger"][0]["evidence"] == "f-7"
    run("consent", "withdraw", a, "marketing_email", "--source", "phone")
    imported = json.loads(
        run(
            "consent",
            "import",
            str(write_csv(tmp_path / "c.csv", [f"{a},marketing_sms,granted,2026-01-01,shop,"])),
            "--json",
        )
    )
    assert imported["recorded"] == 1
    with Vault.open(home) as reopened:
        summary = reopened.session(token, purpose="administration").consent_of(a)
    assert summary.purposes["marketing_email"].state == "withdrawn"
    assert summary.purposes["marketing_sms"].active
