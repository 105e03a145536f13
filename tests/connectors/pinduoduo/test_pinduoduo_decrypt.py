"""Decrypting a Pinduoduo ciphertext is a purpose-bound, audited act through the one door."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from connectors.pinduoduo.sandbox import PinduoduoSandbox
from vault.audit.log import AuditQuery
from vault.errors import AccessDenied
from vault.session import Session
from vault.store.schema import customer_fields
from vault.sync.retry import SyncPolicy
from vault.vault import Vault

FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=0.2)


@pytest.fixture
def shop() -> Iterator[PinduoduoSandbox]:
    with PinduoduoSandbox(seed=41, records=300, span_days=1, decrypt_interval=0.2) as sandbox:
        assert isinstance(sandbox, PinduoduoSandbox)
        yield sandbox


def test_a_ciphertext_is_decrypted_only_for_a_purpose_allowing_the_scene(
    admin: Session, vault: Vault, shop: PinduoduoSandbox
) -> None:
    vault.sync_policy = FAST
    admin.configure_connector(
        "pinduoduo",
        {
            **shop.credentials(),
            "base_url": shop.url,
            "history_days": "2",
            "decrypt_interval": "0.2",
        },
    )
    admin.sync("pinduoduo")
    assert shop.decrypt_calls == []  # a sync never decrypts
    order = next(o for o in sorted(shop.orders.values(), key=lambda o: o.order_sn) if o.ciphertexts)
    person = shop.pool[order.buyer]
    customer_id = admin.find_by_identity("pinduoduo", f"order:{order.order_sn}")
    assert customer_id is not None
    before = admin.get_customer(customer_id, purpose="customer_service")
    assert "*" in (before.get("phone") or "")

    with pytest.raises(AccessDenied, match="scene"):
        admin.decrypt_platform_field(
            customer_id, "phone", connector="pinduoduo", scene="shipping", purpose="marketing_sms"
        )
    assert shop.decrypt_calls == []  # refused before the platform was asked
    denied = admin.audit_query(AuditQuery(action="decrypt", outcome="denied"))
    assert len(denied) == 1 and denied[0]["purpose"] == "marketing_sms"

    value = admin.decrypt_platform_field(
        customer_id, "phone", connector="pinduoduo", scene="shipping", purpose="customer_service"
    )
    assert value == f"+86{person.phone}"
    assert len(shop.decrypt_calls) == 1
    after = admin.get_customer(customer_id, purpose="customer_service")
    phone = after.fields["phone"]
    assert phone.value == f"+86{person.phone}" and not phone.masked
    assert phone.source == "pinduoduo-decrypt"
    allowed = admin.audit_query(AuditQuery(action="decrypt", outcome="allowed"))
    assert any(e["purpose"] == "customer_service" for e in allowed)
    for event in admin.audit_query(AuditQuery(action="decrypt")):
        assert person.phone not in str(event)
    with vault._engine.connect() as connection:
        sealed = connection.execute(
            select(customer_fields.c.value).where(
                customer_fields.c.customer_id == customer_id, customer_fields.c.field == "phone"
            )
        ).scalar_one()
    assert person.phone.encode() not in bytes(sealed)  # stored encrypted

    # the masked phone the shop sends again never replaces the decrypted one
    admin.sync("pinduoduo", full=True)
    again = admin.get_customer(customer_id, purpose="customer_service")
    assert again.fields["phone"].value == f"+86{person.phone}"
    assert admin.audit_verify().ok
