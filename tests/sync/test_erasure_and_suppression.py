"""Erasure reaches the connected system through `Connector.delete`; an erased person's old
records coming back from a sync or an import are dropped (suppressed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sync_static import plugged, static_connector

from vault.session import Session
from vault.store.schema import erasure_requests
from vault.sync import ExternalCustomer, PushOutcome
from vault.vault import Vault

BEFORE = datetime(2026, 1, 1, tzinfo=UTC)


def test_an_erasure_is_carried_out_on_the_platform_by_the_next_sync(
    admin: Session, vault: Vault
) -> None:
    crm = static_connector(
        "crm",
        [[ExternalCustomer(external_id="crm-7", observed_at=BEFORE, fields={"name": "周七"})]],
        pushes=frozenset({"deletions"}),
    )
    crm.deleted.clear()
    with plugged(crm):
        admin.sync("crm")
        customer_id = admin.find_by_identity("crm", "crm-7")
        assert customer_id is not None
        admin.erase_customer(customer_id, reason="data subject request")
        report = admin.sync("crm", streams=[])
    assert crm.deleted == ["crm-7"] and report.deleted == 1
    with vault._engine.connect() as connection:
        statuses = list(connection.execute(select(erasure_requests.c.status)).scalars())
    assert statuses == ["done"]


def test_an_erased_persons_old_record_is_suppressed_and_a_newer_one_is_a_new_customer(
    admin: Session, tmp_path: Path
) -> None:
    customer_id = admin.add_customer(
        {"name": "吴八", "phone": "13811112222"}, source="cli", identities=[("shop", "b-8")]
    )
    admin.erase_customer(customer_id, reason="data subject request")
    old = ExternalCustomer(external_id="b-8", observed_at=BEFORE, fields={"phone": "138 1111 2222"})
    later = datetime.now(UTC) + timedelta(days=1)
    new = ExternalCustomer(external_id="b-8", observed_at=later, fields={"name": "吴八"})
    shop = static_connector("shop", [[old]])
    with plugged(shop):
        report = admin.sync("shop")
    assert report.suppressed == 1 and report.created == 0
    assert admin.find_by_identity("shop", "b-8") is None
    path = tmp_path / "old.csv"
    path.write_text("手机号码,姓名\n13811112222,吴八\n", encoding="utf-8")
    import os

    os.utime(path, (BEFORE.timestamp(), BEFORE.timestamp()))
    assert admin.import_file(path).suppressed == 1
    again = static_connector("shop2", [[new]], platform="shop")
    with plugged(again):
        assert admin.sync("shop2").created == 1
    assert admin.find_by_identity("shop", "b-8") not in (None, customer_id)


def test_an_erasure_the_platform_refused_is_asked_again_by_each_sync_until_done(
    admin: Session, vault: Vault
) -> None:
    crm = static_connector(
        "crm",
        [[ExternalCustomer(external_id="crm-8", observed_at=BEFORE, fields={"name": "吴八"})]],
        pushes=frozenset({"deletions"}),
    )
    refusals = iter([True, True])  # the platform refuses twice, then deletes

    class Refusing(crm):  # type: ignore[misc, valid-type]
        def delete(self, external_ids: Sequence[str]) -> Sequence[PushOutcome]:
            if next(refusals, False):
                return [
                    PushOutcome(customer_id="", external_id=e, ok=False, error="record locked")
                    for e in external_ids
                ]
            return list(super().delete(external_ids))

    Refusing.deleted.clear()
    with plugged(Refusing):
        admin.sync("crm")
        customer_id = admin.find_by_identity("crm", "crm-8")
        assert customer_id is not None
        admin.erase_customer(customer_id, reason="data subject request")
        first = admin.sync("crm", streams=[])
        assert (first.deleted, first.counts.failed) == (0, 1)
        (refused,) = admin.erasure_status(customer_id)
        assert (refused["status"], refused["detail"]) == ("failed", "record locked")
        second = admin.sync("crm", streams=[])
        assert (second.deleted, second.counts.failed) == (0, 1)
        third = admin.sync("crm", streams=[])
        assert (third.deleted, third.counts.failed) == (1, 0)
        assert admin.sync("crm", streams=[]).deleted == 0  # done: never asked again
    assert Refusing.deleted == ["crm-8"]
    (done,) = admin.erasure_status(customer_id)
    assert done["status"] == "done" and done["done_at"] is not None
