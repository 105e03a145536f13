"""Erasure: crypto-shredding reaches every copy; suppression keeps the person out; connected
systems get erasure requests."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from vault import AccessDenied, AuditQuery, NewCustomer, NotFound, Order, OrderItem, Vault
from vault.cli import cli
from vault.consent import erasure
from vault.consent.suppression import erased_at
from vault.session import Session
from vault.store.schema import customer_fields, customer_identities, customers, metadata

PERSON = {
    "name": "欧阳娜娜",
    "phone": "139 1234 5678",
    "email": "Nana.Ouyang@example.cn",
    "id_number": "11010519491231002X",
    "address": "广东省深圳市南山区粤海街道科技园路18号",
    "nickname": "娜娜爱购物",
}
NOTE = "退货投诉：包裹破损 damaged parcel"
BEFORE = datetime(2026, 5, 1, tzinfo=UTC)


def raw_bytes(vault: Vault) -> bytes:
    """Everything the database holds, as bytes: the SQLite files, or every PostgreSQL row."""
    if vault._engine.dialect.name == "sqlite":
        path = Path(vault._engine.url.database or "")
        return b"".join(
            p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
        )
    chunks: list[bytes] = []
    with vault._engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                chunks += [v if isinstance(v, bytes) else str(v).encode() for v in row]
    return b"\x00".join(chunks)


def load_person(admin: Session) -> str:
    cid = admin.add_customer(
        PERSON,
        source="youzan",
        identities=[("youzan", "yz_open_id_42"), ("zoho", "zcrm_9001")],
        observed_at=BEFORE,
    )
    admin.record_interaction(
        cid, kind="complaint", channel="taobao", occurred_at=BEFORE, text=NOTE, source="test"
    )
    admin.tag_customers([cid], "vip", source="test")
    admin.grant_consent(cid, "marketing_sms", source="web-form", evidence="form-77")
    admin.record_order(order("E1", cid, BEFORE), source="youzan")
    return cid


def order(order_id: str, customer_id: str, at: datetime) -> Order:
    return Order(
        platform="youzan",
        shop="s1",
        order_id=order_id,
        status="completed",
        currency="CNY",
        total_amount=16_800,
        created_at=at,
        updated_at=at,
        items=[OrderItem(product_id="tea-1", product_name="龙井", quantity=1, unit_price=16_800)],
        customer_id=customer_id,
    )


def secrets_of(admin: Session, cid: str) -> list[bytes]:
    """The clear values, the data key, the wrapped data key, the blind-index entries and the
    ciphertexts that the customer's rows hold."""
    vault = admin._vault
    values = {v for v in PERSON.values()} | {NOTE, "yz_open_id_42", "zcrm_9001"}
    values |= {vault.catalogue[f].normalise(v).value for f, v in PERSON.items()}
    found = [v.encode() for v in values]
    with vault._engine.connect() as connection:
        head = connection.execute(select(customers).where(customers.c.id == cid)).one()
        found += [
            bytes(head.wrapped_dek),
            vault._keyring.unwrap_data_key(cid, head.wrapped_dek, head.dek_version),
        ]
        for row in connection.execute(
            select(customer_fields).where(customer_fields.c.customer_id == cid)
        ):
            found.append(bytes(row.value))
            if row.blind_index is not None:
                found.append(bytes(row.blind_index))
        for row in connection.execute(
            select(customer_identities).where(customer_identities.c.customer_id == cid)
        ):
            found += [bytes(row.external_id), bytes(row.external_index)]
    return found


def test_after_erasure_no_api_cli_export_or_raw_read_yields_the_customers_values(
    admin: Session, home: Path
) -> None:
    other = admin.add_customer({"name": "李雷", "phone": "13700001111"}, source="test")
    cid = load_person(admin)
    secrets = secrets_of(admin, cid)
    assert all(s in raw_bytes(admin._vault) for s in secrets[-4:])  # the scan does see them

    report = admin.erase_customer(cid, reason="DSAR-2026-114")
    assert report.erasure_requests == ["youzan", "zoho"]
    assert report.suppression_entries == 5  # phone, email, id_number, two identities

    with pytest.raises(NotFound):
        admin.get_customer(cid)
    assert admin.find_customers("phone", PERSON["phone"]) == []
    assert admin.find_customers("id_number", PERSON["id_number"]) == []
    assert admin.find_by_identity("youzan", "yz_open_id_42") is None
    assert admin.list_customers().customer_ids == [other]
    with pytest.raises(NotFound):
        admin.interactions_of(cid)
    assert admin.orders_of(cid) == []
    out = io.BytesIO()
    admin.export("customer_service", out, fmt="jsonl")
    assert cid.encode() not in out.getvalue() and b"\xe6\xac\xa7" not in out.getvalue()
    token = admin.add_principal("ops", ["admin"])
    shown = CliRunner().invoke(
        cli,
        ["--home", str(home), "customer", "show", cid, "--purpose", "administration"],
        env={"VAULT_TOKEN": token},
    )
    assert shown.exit_code == 1 and "no customer" in shown.stderr

    stored = raw_bytes(admin._vault)
    leaked = [s for s in secrets if s in stored]
    assert leaked == []  # no value, ciphertext, index entry, data key or wrapped data key
    assert cid.encode() in stored  # the tombstone id stays
    assert admin.audit_verify().ok
    events = admin.audit_query(AuditQuery(customer=cid))
    (erase,) = [e for e in events if e["action"] == "erase"]
    assert erase["details"]["reason"] == "DSAR-2026-114"
    assert not [v for v in PERSON.values() if v in json.dumps(events, ensure_ascii=False)]


def test_erasure_requests_are_pending_per_platform_until_completed(admin: Session) -> None:
    cid = load_person(admin)
    admin.erase_customer(cid, reason="ticket-1")
    vault = admin._vault
    with vault._transaction() as connection:
        (request,) = erasure.pending(connection, vault, "zoho")
        assert request[1] == "zcrm_9001"
        assert [r[1] for r in erasure.pending(connection, vault, "youzan")] == ["yz_open_id_42"]
        erasure.complete(connection, request[0], ok=True, detail="deleted")
        assert erasure.pending(connection, vault, "zoho") == []
        with pytest.raises(NotFound):
            erasure.complete(connection, 999_999, ok=False, detail=None)
    assert b"zcrm_9001" not in raw_bytes(vault)  # sealed under the erasure key


def test_reimport_keeps_the_person_out_but_a_later_purchase_makes_a_new_unlinked_customer(
    admin: Session,
) -> None:
    cid = load_person(admin)
    report = admin.erase_customer(cid, reason="ticket-2")
    old_file = [
        NewCustomer(fields=PERSON, identities=[("youzan", "yz_open_id_42")], observed_at=BEFORE),
        NewCustomer(fields={"phone": "+86 139-1234-5678"}),  # no time: treated as old
        NewCustomer(fields={"name": "韩梅梅", "phone": "13600002222"}, observed_at=BEFORE),
    ]
    added = admin.add_customers(old_file, source="import")
    assert len(added) == 1  # only the unrelated person
    assert admin.find_customers("phone", PERSON["phone"]) == []
    (event,) = admin.audit_query(AuditQuery(action="import"))[-1:]
    assert event["details"]["suppressed"] == 2
    with pytest.raises(NotFound):  # an old order re-sent for the tombstone is refused
        admin.record_order(order("E1", cid, BEFORE), source="youzan")

    later = report.erased_at + timedelta(days=3)
    (new,) = admin.add_customers(
        [NewCustomer(fields={"phone": PERSON["phone"]}, observed_at=later)], source="youzan"
    )
    admin.record_order(order("E2", new, later), source="youzan")
    assert new != cid
    assert admin.find_customers("phone", PERSON["phone"]) == [new]
    fresh = admin.get_customer(new)
    assert set(fresh.fields) == {"phone"} and not fresh.identities and not fresh.tags
    assert [o.order_id for o in admin.orders_of(new)] == ["E2"]
    assert not admin.consent_of(new).purposes["marketing_sms"].active


def test_erased_at_matches_any_writing_of_an_identifier(admin: Session) -> None:
    cid = load_person(admin)
    report = admin.erase_customer(cid, reason="ticket-3")
    with admin._vault._engine.connect() as connection:

        def when(*identifiers: tuple[str, str]) -> datetime | None:
            return erased_at(connection, admin._vault, list(identifiers))

        assert when(("phone", "+86 13912345678")) == report.erased_at
        assert when(("email", " NANA.OUYANG@example.cn ")) == report.erased_at
        assert when(("identity:YouZan", "yz_open_id_42")) == report.erased_at
        assert when(("identity:zoho", "zcrm_9001"), ("phone", "13700009999")) == report.erased_at
        assert when(("phone", "139****5678"), ("phone", "not a phone")) is None
        assert when(("phone", "13700009999"), ("identity:youzan", "yz_other")) is None


def test_erasing_twice_or_without_the_erase_action_is_refused(admin: Session) -> None:
    cid = load_person(admin)
    support = admin._vault.session(admin.add_principal("agent", ["support"]))
    with pytest.raises(AccessDenied):
        support.erase_customer(cid, reason="ticket-4")
    assert admin.get_customer(cid).get("name") == PERSON["name"]
    admin.erase_customer(cid, reason="ticket-4")
    with pytest.raises(NotFound):
        admin.erase_customer(cid, reason="ticket-4")
    outcomes = [e["outcome"] for e in admin.audit_query(AuditQuery(action="erase"))]
    assert outcomes == ["denied", "allowed", "failed"]


def test_cli_dsar_erase(home: Path, db_url: str) -> None:
    vault, token = Vault.init(home, db_url=db_url)
    with vault:
        cid = load_person(vault.session(token, purpose="administration"))
    result = CliRunner().invoke(
        cli,
        ["--home", str(home), "dsar", "erase", cid, "--reason", "DSAR-9", "--yes", "--json"],
        env={"VAULT_TOKEN": token},
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["erasure_requests"] == ["youzan", "zoho"]
    with Vault.open(home) as reopened, reopened._engine.connect() as connection:
        row = connection.execute(select(customers).where(customers.c.id == cid)).one()
    assert row.wrapped_dek is None and row.erased_at is not None


def test_erasure_status_follows_each_system_from_pending_to_done_for_an_auditor(
    admin: Session,
) -> None:
    cid = load_person(admin)
    assert admin.erasure_status(cid) == []  # never erased: nothing asked of anyone
    admin.erase_customer(cid, reason="ticket-7")
    auditor = admin._vault.session(admin.add_principal("dpo", ["auditor"]), purpose="compliance")
    status = auditor.erasure_status(cid)
    assert [(r["system"], r["status"], r["done_at"]) for r in status] == [
        ("youzan", "pending", None),
        ("zoho", "pending", None),
    ]
    vault = admin._vault
    with vault._transaction() as connection:
        (request,) = erasure.pending(connection, vault, "zoho")
        erasure.complete(connection, request[0], ok=True, detail="deleted")
    after = {r["system"]: r for r in auditor.erasure_status(cid)}
    assert after["zoho"]["status"] == "done" and after["zoho"]["detail"] == "deleted"
    assert after["zoho"]["done_at"] is not None and after["youzan"]["status"] == "pending"
    assert all(r["requested_at"].tzinfo is not None for r in after.values())  # UTC, also on SQLite
    assert after["zoho"]["done_at"].tzinfo is not None
    (event,) = admin.audit_query(AuditQuery(actor="dpo", customer=cid))[-1:]
    assert event["details"] == {"operation": "erasure_status"}


def test_erasure_status_of_an_unknown_id_or_without_the_audit_action_is_refused(
    admin: Session,
) -> None:
    cid = load_person(admin)
    with pytest.raises(NotFound):
        admin.erasure_status("0190aaaa-0000-7000-8000-000000000000")
    support = admin._vault.session(admin.add_principal("agent2", ["support"]))
    with pytest.raises(AccessDenied):
        support.erasure_status(cid)
    (denied,) = admin.audit_query(AuditQuery(actor="agent2", outcome="denied"))
    assert denied["customers"]["ids"] == [cid]


def test_cli_dsar_erasure_status(home: Path, db_url: str) -> None:
    vault, token = Vault.init(home, db_url=db_url)
    with vault:
        admin = vault.session(token, purpose="administration")
        cid = load_person(admin)
        admin.erase_customer(cid, reason="DSAR-10")
    run = CliRunner().invoke(
        cli, ["--home", str(home), "dsar", "erasure-status", cid], env={"VAULT_TOKEN": token}
    )
    assert run.exit_code == 0, run.stderr
    assert run.stdout.split() == ["youzan", "pending", "zoho", "pending"]
    as_json = CliRunner().invoke(
        cli,
        ["--home", str(home), "dsar", "erasure-status", cid, "--json"],
        env={"VAULT_TOKEN": token},
    )
    assert [r["status"] for r in json.loads(as_json.stdout)] == ["pending", "pending"]
