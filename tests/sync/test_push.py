"""Pushes go only to customers who consented, abroad only with the transfer consent too."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert
from sync_static import plugged, static_connector

from vault.session import Session
from vault.store.schema import consent_state
from vault.vault import Vault


def grant(vault: Vault, customer_id: str, purpose: str) -> None:
    with vault.transaction() as connection:
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
    with vault.engine.connect() as connection:
        entries = connection.execute(select(func.count()).select_from(consent_events)).scalar_one()
    assert entries == 1
    assert [r.customer_id for r in crm.pushed] == [customer_id]
