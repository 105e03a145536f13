"""End to end over HTTP: a value Zoho returns that is only the echo of the vault's own push
carries no new information and changes nothing (no value, no provenance), however Zoho ranks;
a value a Zoho user actually changed still wins by rank."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from connectors.zoho.sandbox import ZohoSandbox
from vault.session import Session
from vault.store.schema import pushed_values
from vault.sync.retry import SyncPolicy
from vault.vault import Vault

FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=0.2)
X, Y, Z = "nana.x@example.cn", "nana.y@example.cn", "nana.z@example.cn"


@pytest.fixture
def crm(vault: Vault) -> Iterator[ZohoSandbox]:
    vault.sync_policy = FAST
    with ZohoSandbox(seed=31, records=0) as running:
        assert isinstance(running, ZohoSandbox)
        yield running


def shop_customer(admin: Session, crm: ZohoSandbox) -> str:
    """A customer a shop (youzan, rank 50) told the vault about, consenting to CRM sharing."""
    customer_id = admin.add_customer({"name": "欧阳娜娜", "email": X}, source="youzan")
    admin.grant_consent(customer_id, "crm_sharing", source="checkout", evidence="form-7")
    admin.configure_connector("zoho", crm.settings(data_centre="CN"))
    return customer_id


def email_of(admin: Session, customer_id: str) -> tuple[str, str]:
    value = admin.get_customer(customer_id).fields["email"]
    return value.value, value.source


def test_the_echo_of_a_push_does_not_override_a_newer_shop_value(
    admin: Session, crm: ZohoSandbox
) -> None:
    customer_id = shop_customer(admin, crm)
    assert admin.sync("zoho").pushed == 1  # X goes to Zoho
    (record,) = crm.stored()
    assert record["Email"] == X

    quiet = admin.sync("zoho")  # Zoho returns X (modified after the push): only our echo
    assert quiet.pulled == 1 and quiet.updated == 0 and quiet.pushed == 0
    assert email_of(admin, customer_id) == (X, "youzan")  # provenance unchanged

    admin.update_customer(customer_id, {"email": Y}, source="youzan")  # newer, same rank
    report = admin.sync("zoho")  # pulls X back again, then pushes Y
    assert email_of(admin, customer_id) == (Y, "youzan")
    assert report.pushed == 1
    (record,) = crm.stored()
    assert record["Email"] == Y

    admin.sync("zoho")  # and Y's own echo changes nothing either
    assert email_of(admin, customer_id) == (Y, "youzan")


def test_a_change_made_in_zoho_still_wins_by_rank(admin: Session, crm: ZohoSandbox) -> None:
    customer_id = shop_customer(admin, crm)
    admin.sync("zoho")
    (record,) = crm.stored()

    crm.advance(2)  # Zoho's times are whole seconds: the edit a second or more after the push
    crm.modify(record["id"], Email=Z)  # a salesperson corrects the email in Zoho
    report = admin.sync("zoho")
    assert report.updated == 1 and report.counts.echoes == 1  # the name is still our own
    assert email_of(admin, customer_id) == (Z, "zoho")
    assert admin.get_customer(customer_id).fields["name"].source == "youzan"

    quiet = admin.sync("zoho")  # the vault pushed Z back; its echo changes nothing
    assert quiet.updated == 0 and email_of(admin, customer_id) == (Z, "zoho")


def test_a_change_back_to_the_pushed_value_made_in_zoho_is_a_change(
    admin: Session, crm: ZohoSandbox
) -> None:
    """Without consent the vault pushes nothing more, so Zoho's change to Z is not pushed back;
    Zoho's later change back to X is no echo (Zoho stopped holding X when it took Z)."""
    customer_id = shop_customer(admin, crm)
    admin.sync("zoho")
    (record,) = crm.stored()
    admin.withdraw_consent(customer_id, "crm_sharing", source="app")

    crm.advance(2)
    crm.modify(record["id"], Email=Z)
    assert admin.sync("zoho").pushed == 0
    assert email_of(admin, customer_id) == (Z, "zoho")

    crm.advance(2)
    crm.modify(record["id"], Email=X)
    admin.sync("zoho")
    assert email_of(admin, customer_id) == (X, "zoho")


def test_erasure_removes_what_was_pushed_for_the_customer(
    admin: Session, vault: Vault, crm: ZohoSandbox
) -> None:
    customer_id = shop_customer(admin, crm)
    admin.sync("zoho")

    def records() -> int:
        with vault._reader.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).where(pushed_values.c.customer_id == customer_id)
                ).scalar_one()
            )

    assert records() == 2  # name and email
    admin.erase_customer(customer_id, reason="DSAR 2026-32")
    assert records() == 0
