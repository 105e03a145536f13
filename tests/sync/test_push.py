"""Pushes go only to customers who consented, abroad only with the transfer consent too."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import event, insert
from sync_static import plugged, static_connector

from vault import AuditQuery
from vault.session import Session
from vault.store.schema import consent_state
from vault.vault import Vault


def grant(vault: Vault, customer_id: str, purpose: str) -> None:
    with vault._transaction() as connection:
        connection.execute(
            insert(consent_state).values(
                customer_id=customer_id,
                purpose=purpose,
                state="granted",
                at=datetime.now(UTC),
                policy_version=1,
                event_id=0,
            )
        )


def three_customers(admin: Session) -> list[str]:
    return [
        admin.add_customer(
            {"name": name, "phone": phone, "id_number": "11010519491231002X", "note": "vip"}
            if n == 0
            else {"name": name, "phone": phone},
            source="cli",
        )
        for n, (name, phone) in enumerate(
            [("赵一", "13500000001"), ("钱二", "13500000002"), ("孙三", "13500000003")]
        )
    ]


def test_push_sends_only_consented_customers_and_only_shareable_fields(
    admin: Session, vault: Vault
) -> None:
    ids = three_customers(admin)
    grant(vault, ids[0], "crm_sharing")
    grant(vault, ids[1], "crm_sharing")
    crm = static_connector("crm", [[]], pushes=frozenset({"customers"}))
    crm.pushed.clear()
    with plugged(crm):
        report = admin.sync("crm")
        assert report.pushed == 2
        assert report.skipped_push == {"no consent: crm_sharing": 1}
        assert {r.customer_id for r in crm.pushed} == {ids[0], ids[1]}
        sent = next(r for r in crm.pushed if r.customer_id == ids[0])
        assert set(sent.fields) == {"name", "phone"}  # no ID number, no note
        # the platform's new ids are now identities; nothing changed: nothing sent again
        assert admin.find_by_identity("crm", "crm-1") in ids
        again = admin.sync("crm")
        assert again.pushed == 0
        admin.update_customer(ids[0], {"name": "赵一"}, source="cli")  # touched, same content
        assert admin.sync("crm").skipped_push.get("unchanged") == 1
        admin.update_customer(ids[1], {"name": "钱贰"}, source="cli")
        third = admin.sync("crm")
        assert third.pushed == 1
        assert crm.pushed[-1].customer_id == ids[1] and crm.pushed[-1].external_id is not None


def test_a_system_abroad_also_needs_the_transfer_abroad_consent(
    admin: Session, vault: Vault
) -> None:
    ids = three_customers(admin)
    for customer_id in ids:
        grant(vault, customer_id, "crm_sharing")
    grant(vault, ids[2], "transfer_abroad")
    overseas = static_connector("overseas", [[]], region="abroad", pushes=frozenset({"customers"}))
    overseas.pushed.clear()
    with plugged(overseas):
        report = admin.sync("overseas")
    assert report.pushed == 1 and [r.customer_id for r in overseas.pushed] == [ids[2]]
    assert report.skipped_push == {"no consent: transfer_abroad": 2}


def test_a_dry_run_push_counts_but_sends_nothing(admin: Session, vault: Vault) -> None:
    ids = three_customers(admin)
    grant(vault, ids[0], "crm_sharing")
    crm = static_connector("crm", [[]], pushes=frozenset({"customers"}))
    crm.pushed.clear()
    with plugged(crm):
        report = admin.sync("crm", dry_run=True)
    assert report.pushed == 1 and crm.pushed == []


def test_consent_signals_from_the_platform_reach_the_ledger_once_and_gate_the_push(
    admin: Session, vault: Vault
) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select

    from vault.store.schema import consent_events
    from vault.sync import ConsentSignal, ExternalCustomer

    at = datetime.now(UTC) - timedelta(days=1)
    record = ExternalCustomer(
        external_id="c-1",
        observed_at=at,
        fields={"name": "郑九", "phone": "13512345678"},
        consent=[ConsentSignal(purpose="crm_sharing", granted=True, at=at, evidence="form-7")],
    )
    crm = static_connector("crm", [[record]], pushes=frozenset({"customers"}))
    crm.pushed.clear()
    with plugged(crm):
        first = admin.sync("crm")
        again = admin.sync("crm", full=True)
    assert first.counts.consent == 1 and again.counts.consent == 0
    customer_id = admin.find_by_identity("crm", "c-1")
    assert customer_id is not None
    with vault._engine.connect() as connection:
        entries = connection.execute(select(func.count()).select_from(consent_events)).scalar_one()
    assert entries == 1
    assert [r.customer_id for r in crm.pushed] == [customer_id]


def consenting_customers(admin: Session, vault: Vault, count: int, start: int = 0) -> list[str]:
    ids = []
    for n in range(start, start + count):
        customer_id = admin.add_customer(
            {"name": f"客户{n}", "phone": f"1350001{n:04d}"}, source="cli"
        )
        grant(vault, customer_id, "crm_sharing")
        ids.append(customer_id)
    return ids


def push_statements(admin: Session, vault: Vault, name: str) -> tuple[int, Counter[str], int]:
    """A sync of connector ``name`` (nothing to pull): statements issued, by verb, and pushed."""
    verbs: Counter[str] = Counter()

    def count(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        if "audit_checkpoints" not in sql:  # signed every so many events, whatever the sync
            verbs[sql.split()[0].upper()] += 1

    event.listen(vault._engine, "before_cursor_execute", count)
    try:
        report = admin.sync(name)
    finally:
        event.remove(vault._engine, "before_cursor_execute", count)
    return sum(verbs.values()), verbs, report.pushed


def test_a_push_costs_a_few_statements_per_batch_not_a_few_per_customer(
    admin: Session, vault: Vault
) -> None:
    first = static_connector("crm", [[]], pushes=frozenset({"customers"}))
    second = static_connector("crm2", [[]], pushes=frozenset({"customers"}))
    first.pushed.clear()  # type: ignore[attr-defined]
    second.pushed.clear()  # type: ignore[attr-defined]
    ids = consenting_customers(admin, vault, 50)
    with plugged(first, second):
        fifty, _, pushed = push_statements(admin, vault, "crm")
        assert pushed == 50
        ids += consenting_customers(admin, vault, 50, start=50)
        hundred, verbs, pushed = push_statements(admin, vault, "crm2")
        assert pushed == 100
        assert hundred == fifty  # one batch either way: the count does not grow with it
        assert hundred < 50, verbs
        # every customer changed: pushed again, the push state updated in the same few
        for customer_id in ids:
            admin.update_customer(customer_id, {"note": "回访"}, source="cli")
        for customer_id in ids:
            admin.update_customer(customer_id, {"name": f"新{customer_id[-4:]}"}, source="cli")
        again, _, pushed = push_statements(admin, vault, "crm2")
        assert pushed == 100 and again <= hundred
    # the platform's new ids are the customers' identities, and one audit event names them all
    assert admin.find_by_identity("crm2", "crm2-100") in ids
    pushes = [
        e
        for e in admin.audit_query(AuditQuery(action="sync", limit=None))
        if e["details"].get("operation") == "push" and e["details"]["connector"] == "crm2"
    ]
    assert [e["customers"]["count"] for e in pushes] == [100, 100]
    assert all(e["fields"] == ["name", "phone"] for e in pushes)
    assert all(e["purpose"] == "crm_sharing" and e["details"]["pushed"] == 100 for e in pushes)
    for customer_id in (ids[0], ids[-1]):
        named = admin.audit_query(AuditQuery(customer=customer_id, action="sync"))
        assert sum(e["details"].get("connector") == "crm2" for e in named) == 2
