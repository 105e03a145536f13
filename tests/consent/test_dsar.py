"""Data-subject requests: the access document lists every access and recipient; correction keeps
provenance; retention erases what no purpose holds any more (dry run by default)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from vault import AccessDenied, AuditEvent, AuditQuery, NotFound, Order, Vault
from vault.cli import cli
from vault.session import Session
from vault.store.schema import customer_fields, customers

AT = datetime(2026, 2, 1, tzinfo=UTC)


def person(admin: Session) -> str:
    cid = admin.add_customer(
        {"name": "王小明", "phone": "13812345678", "email": "wxm@example.cn"},
        source="taobao",
        identities=[("taobao", "tb_buyer_7")],
    )
    admin.tag_customers([cid], "vip", source="segments")
    admin.record_interaction(
        cid, kind="consultation", channel="youzan", occurred_at=AT, text="问尺码", source="youzan"
    )
    admin.record_order(
        Order(
            platform="taobao",
            shop="s",
            order_id="T1",
            status="paid",
            currency="CNY",
            total_amount=9900,
            created_at=AT,
            updated_at=AT,
            customer_id=cid,
        ),
        source="taobao",
    )
    admin.grant_consent(cid, "marketing_email", source="web-form", evidence="f-1", at=AT)
    return cid


def test_the_dsar_export_lists_every_access_the_audit_log_holds(admin: Session) -> None:
    cid = person(admin)
    others = [admin.add_customer({"name": f"客{n}"}, source="t") for n in range(120)]
    for other in others:
        admin.grant_consent(other, "marketing_email", source="web-form")
    support = admin._vault.session(admin.add_principal("agent", ["support"]))
    support.get_customer(cid, purpose="customer_service")
    support.find_customers("phone", "+86 138 1234 5678", purpose="customer_service")
    with pytest.raises(AccessDenied):
        support.get_customer(cid, purpose="marketing_email")
    manifest = admin.export("marketing_email", io.BytesIO())  # 121 customers: ids not inline
    admin._record(  # what the sync engine records when it pushes a customer to a CRM
        AuditEvent(
            action="sync",
            purpose="crm_sharing",
            customer_ids=[cid],
            fields=["name", "phone"],
            details={"operation": "push", "connector": "zoho"},
        )
    )
    held = admin.audit_query(AuditQuery(customer=cid, limit=None))
    document = admin.dsar_export(cid)
    listed = [a["seq"] for a in document["accesses"]]
    assert listed[:-1] == [e["seq"] for e in held]
    assert document["accesses"][-1]["action"] == "audit"  # the audit query above names them too
    assert {(a["actor"], a["action"], a["outcome"]) for a in document["accesses"]} >= {
        ("agent", "read", "allowed"),
        ("agent", "search", "allowed"),
        ("agent", "read", "denied"),
        ("admin", "export", "allowed"),
    }
    recipients = document["recipients"]
    assert [(r["kind"], r.get("system")) for r in recipients] == [
        ("export", None),
        ("sync-push", "zoho"),
    ]
    assert recipients[0]["manifest_sha256"] == manifest.sha256
    fields = document["customer"]["fields"]
    assert fields["phone"] == {
        "value": "+8613812345678",
        "masked": False,
        "source": "taobao",
        "observed_at": fields["phone"]["observed_at"],
    }
    assert document["customer"]["identities"][0]["external_id"] == "tb_buyer_7"
    assert document["customer"]["tags"] == ["vip"]
    assert [o["order_id"] for o in document["orders"]] == ["T1"]
    assert document["interactions"][0]["text"] == "问尺码"
    assert document["consent"]["ledger"][0]["evidence"] == "f-1"
    assert document["consent"]["current"]["marketing_email"]["active"]
    json.dumps(document)  # machine-readable as it is
    (own,) = admin.audit_query(AuditQuery(customer=cid, limit=None))[-1:]
    assert own["details"]["operation"] == "dsar-export"  # the request itself is audited


def test_dsar_correct_records_provenance_dsar(admin: Session) -> None:
    cid = person(admin)
    assert admin.dsar_correct(cid, {"phone": "13900001111", "name": "王晓明"}) == ["phone", "name"]
    fields = admin.get_customer(cid).fields
    assert fields["phone"].value == "+8613900001111" and fields["phone"].source == "dsar"
    assert admin.find_customers("phone", "139 0000 1111") == [cid]
    (event,) = [
        e
        for e in admin.audit_query(AuditQuery(customer=cid, action="write"))
        if e["details"].get("operation") == "dsar-correct"
    ]
    assert event["fields"] == ["name", "phone"]


def test_cli_dsar_export_and_correct(home: Path, db_url: str, tmp_path: Path) -> None:
    vault, token = Vault.init(home, db_url=db_url)
    with vault:
        cid = person(vault.session(token, purpose="administration"))
    env = {"VAULT_TOKEN": token, "VAULT_PURPOSE": "compliance"}
    base = ["--home", str(home), "dsar"]
    corrected = CliRunner().invoke(
        cli, [*base, "correct", cid, "email=new@example.cn", "--json"], env=env
    )
    assert corrected.exit_code == 0, corrected.stderr
    assert json.loads(corrected.stdout)["changed"] == ["email"]
    target = tmp_path / "dsar.json"
    done = CliRunner().invoke(cli, [*base, "export", cid, "-o", str(target)], env=env)
    assert done.exit_code == 0, done.stderr
    document = json.loads(target.read_text())
    assert document["customer"]["fields"]["email"]["source"] == "dsar"
    assert document["format"] == "vault-dsar/v1"


def age(admin: Session, cid: str, days: int) -> None:
    """Test setup: make a customer's last change ``days`` old."""
    old = datetime.now(UTC) - timedelta(days=days)
    with admin._vault._transaction() as connection:
        connection.execute(update(customers).where(customers.c.id == cid).values(updated_at=old))
        connection.execute(
            update(customer_fields)
            .where(customer_fields.c.customer_id == cid)
            .values(observed_at=old, updated_at=old)
        )


def test_retention_dry_run_reports_and_apply_erases_what_no_purpose_holds(
    admin: Session,
) -> None:
    stale, consented, recent = (
        admin.add_customer({"name": n, "phone": p}, source="t")
        for n, p in (("甲", "13700000001"), ("乙", "13700000002"), ("丙", "13700000003"))
    )
    age(admin, stale, 4 * 365)  # past customer_service's 1095 days, no consent
    age(admin, consented, 4 * 365)
    admin.grant_consent(consented, "crm_sharing", source="web-form", evidence="sep-1")
    catalogue = admin._vault.catalogue
    catalogue._fields["name"] = replace(catalogue["name"], retention_days=1000)  # type: ignore[attr-defined]

    report = admin.run_retention()
    assert report.dry_run and report.expired == [stale] and report.erased == 0
    assert report.fields == {"name": 2}  # the two aged names (the stale one's included)
    assert admin.get_customer(stale).get("name") == "甲"  # nothing changed

    applied = admin.run_retention(dry_run=False)
    assert applied.erased == 1 and applied.fields_removed == 1
    with pytest.raises(NotFound):
        admin.get_customer(stale)
    assert admin.get_customer(consented).get("name") is None  # past the field's retention
    assert admin.get_customer(consented).get("phone") == "+8613700000002"
    assert admin.get_customer(recent).get("name") == "丙"
    erase_events = admin.audit_query(AuditQuery(action="erase"))
    assert [e["details"]["operation"] for e in erase_events] == ["retention", "erase", "retention"]
    assert erase_events[1]["details"]["reason"] == "retention"
    assert admin.audit_verify().ok


def test_bulk_erasure_skips_unknown_ids_and_audits_each_batch(admin: Session) -> None:
    ids = [admin.add_customer({"phone": f"1360000{n:04d}"}, source="t") for n in range(7)]
    reports = admin.erase_customers(
        [*ids, ids[0], "00000000-0000-7000-8000-000000000000"], reason="bulk-1", batch_size=3
    )
    assert [r.customer_id for r in reports] == ids
    assert all(r.suppression_entries == 1 for r in reports)
    events = admin.audit_query(AuditQuery(action="erase"))
    assert [e["customers"]["count"] for e in events] == [3, 3, 1]
    assert admin.list_customers().customer_ids == []
