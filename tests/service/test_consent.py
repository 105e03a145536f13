"""Consent over HTTP: grant, withdraw, state and ledger, bulk CSV import (held in memory only)."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from tests.service.conftest import World
from vault.audit import AuditQuery
from vault.service.models import ConsentSummaryOut


def test_grant_and_withdraw_land_in_the_ledger_and_the_state(world: World) -> None:
    headers = world.headers("admin")
    base = f"/v1/customers/{world.customer_id}/consent"
    granted = world.http.post(
        f"{base}/grant",
        json={"purpose": "marketing_sms", "source": "web-form", "evidence": "form-7"},
        headers=headers,
    )
    assert granted.status_code == 201, granted.text
    state = world.http.get(base, headers=headers).json()
    assert state["purposes"]["marketing_sms"]["state"] == "granted"
    assert state["purposes"]["marketing_sms"]["active"] is True
    withdrawn = world.http.post(
        f"{base}/withdraw", json={"purpose": "marketing_sms", "source": "sms-stop"}, headers=headers
    )
    assert withdrawn.status_code == 201
    assert withdrawn.json()["ledger_id"] > granted.json()["ledger_id"]
    state = world.http.get(base, headers=headers).json()
    assert state["purposes"]["marketing_sms"]["active"] is False
    assert [(r["state"], r["channel"]) for r in state["ledger"]] == [
        ("granted", "web-form"),
        ("withdrawn", "sms-stop"),
    ]
    library = asdict(world.session("admin").consent_of(world.customer_id))
    assert state == ConsentSummaryOut.model_validate(library).model_dump(mode="json")
    events = world.admin.audit_query(AuditQuery(action="consent", actor="p-admin"))
    assert [e["details"]["operation"] for e in events] == [
        "grant",
        "show",
        "withdraw",
        "show",
        "show",
    ]


def test_an_unknown_consent_purpose_is_refused_and_nothing_recorded(world: World) -> None:
    answer = world.http.post(
        f"/v1/customers/{world.customer_id}/consent/grant",
        json={"purpose": "telepathy", "source": "web-form"},
        headers=world.headers("admin"),
    )
    assert answer.status_code == 422, answer.text
    assert world.admin.consent_of(world.customer_id).ledger == []


def test_a_csv_import_records_grants_by_phone_and_reports_unmatched_lines(world: World) -> None:
    csv = (
        b"customer,purpose,state,at,source\n"
        b"phone:+86 138 0013 8000,marketing_email,granted,2026-01-05T10:00:00Z,shop-form\n"
        b"phone:13999999999,marketing_email,granted,2026-01-05T10:00:00Z,shop-form\n"
    )
    answer = world.http.post(
        "/v1/consent/import",
        content=csv,
        headers={**world.headers("admin"), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "rows": 2,
        "recorded": 1,
        "granted": 1,
        "withdrawn": 0,
        "unmatched": 1,
        "unmatched_lines": [3],
        "encoding": "utf-8",
    }
    assert world.admin.consent_of(world.customer_id).purposes["marketing_email"].active
    (event,) = world.admin.audit_query(AuditQuery(action="consent", actor="p-admin"))
    assert event["details"]["operation"] == "import"
    assert event["request_id"] == answer.headers["X-Request-Id"]
    assert "13800138000" not in str(event) and "138 0013" not in str(event)


def test_a_malformed_csv_import_is_422_naming_the_line_and_records_nothing(world: World) -> None:
    csv = (
        "customer,purpose,state,at,source\n"
        f"{world.customer_id},marketing_email,granted,2026-01-05T10:00:00Z,shop-form\n"
        f"{world.customer_id},marketing_email,maybe,2026-01-05T10:00:00Z,shop-form\n"
    ).encode()
    answer = world.http.post(
        "/v1/consent/import",
        content=csv,
        headers={**world.headers("admin"), "Content-Type": "text/csv; charset=utf-8"},
    )
    assert answer.status_code == 422, answer.text
    assert "line 3" in answer.json()["error"]["message"]
    assert world.admin.consent_of(world.customer_id).ledger == []


def test_a_consent_import_must_be_csv(world: World) -> None:
    answer = world.http.post(
        "/v1/consent/import", json={"rows": []}, headers=world.headers("admin")
    )
    assert answer.status_code == 415
    assert answer.json()["error"]["message"] == "the request body must be text/csv"


def test_support_may_not_touch_consent(world: World) -> None:
    answer = world.http.get(
        f"/v1/customers/{world.customer_id}/consent", headers=world.headers("support")
    )
    assert answer.status_code == 403
    (event,) = world.admin.audit_query(AuditQuery(outcome="denied"))
    assert event["action"] == "consent" and event["request_id"] == answer.headers["X-Request-Id"]


def test_a_consent_import_past_a_limit_is_a_one_line_422_and_records_nothing(
    world: World,
) -> None:
    """A cell past the csv limit was a raw ``_csv.Error`` and a 500 (issue 14, observation 7)."""
    from vault.textfile import MAX_CSV_CELL

    csv = (
        "customer,purpose,state,at,source,evidence\n"
        f'{world.customer_id},marketing_email,granted,2026-01-05T10:00:00Z,web,"'
        + "y" * (MAX_CSV_CELL + 1)
        + '"\n'
    ).encode()
    answer = world.http.post(
        "/v1/consent/import",
        content=csv,
        headers={**world.headers("admin"), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 422, answer.text
    message = answer.json()["error"]["message"]
    assert "line 2: a cell is longer than" in message and "\n" not in message
    assert world.admin.consent_of(world.customer_id).ledger == []


def test_a_consent_import_body_past_the_limit_is_refused_as_it_arrives(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vault.service.routes import consent

    monkeypatch.setattr(consent, "MAX_IMPORT_BYTES", 1024)
    answer = world.http.post(
        "/v1/consent/import",
        content=b"customer,purpose,state,at,source\n" + b"x" * 4096,
        headers={**world.headers("admin"), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 422, answer.text
    assert "the limit for one consent import" in answer.json()["error"]["message"]
