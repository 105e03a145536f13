"""End to end over HTTP with Fenxiang: the CRM's echo of a push (its mobile written as 11 digits,
not as the shop gave it) changes nothing in the vault; a salesperson's edit still wins by rank."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.fxiaoke.sandbox import FxiaokeSandbox
from vault.session import Session
from vault.sync.retry import SyncPolicy
from vault.vault import Vault

FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=0.2)
X, Y, Z = "+86 138 1234 5678", "13900001111", "13700002222"  # as the shop and the CRM write
E164 = {X: "+8613812345678", Y: "+8613900001111", Z: "+8613700002222"}  # as the vault keeps


@pytest.fixture
def crm(vault: Vault) -> Iterator[FxiaokeSandbox]:
    vault.sync_policy = FAST
    with FxiaokeSandbox(seed=9, records=0) as running:
        assert isinstance(running, FxiaokeSandbox)
        yield running


def shop_customer(admin: Session, crm: FxiaokeSandbox) -> str:
    """A customer a shop (youzan, rank 50 to Fenxiang's 70) gave, consenting to CRM sharing."""
    customer_id = admin.add_customer({"name": "欧阳娜娜", "phone": X}, source="youzan")
    admin.grant_consent(customer_id, "crm_sharing", source="checkout", evidence="form-7")
    admin.configure_connector("fxiaoke", {**crm.credentials(), **crm.urls()})
    return customer_id


def the_record(crm: FxiaokeSandbox, customer_id: str) -> dict[str, Any]:
    (record,) = [r for r in crm.live() if r["vault_customer_id__c"] == customer_id]
    return record


def phone_of(admin: Session, customer_id: str) -> tuple[str, str]:
    value = admin.get_customer(customer_id).fields["phone"]
    return value.value, value.source


def test_the_echo_of_a_push_does_not_override_a_newer_shop_value(
    admin: Session, crm: FxiaokeSandbox
) -> None:
    customer_id = shop_customer(admin, crm)
    assert admin.sync("fxiaoke").pushed == 1
    assert the_record(crm, customer_id)["mobile1"] == "13812345678"  # Fenxiang's own writing

    quiet = admin.sync("fxiaoke")  # the pushed record comes back, newer than the push
    assert quiet.pulled == 1 and quiet.updated == 0 and quiet.counts.echoes == 2
    assert phone_of(admin, customer_id) == (E164[X], "youzan")

    admin.update_customer(customer_id, {"phone": Y}, source="youzan")  # newer, same rank
    report = admin.sync("fxiaoke")  # pulls X back, then pushes Y
    assert report.pushed == 1
    assert phone_of(admin, customer_id) == (E164[Y], "youzan")
    assert the_record(crm, customer_id)["mobile1"] == Y

    admin.sync("fxiaoke")
    assert phone_of(admin, customer_id) == (E164[Y], "youzan")


def test_a_change_made_in_fenxiang_still_wins_by_rank(admin: Session, crm: FxiaokeSandbox) -> None:
    customer_id = shop_customer(admin, crm)
    admin.sync("fxiaoke")
    record = the_record(crm, customer_id)

    crm.edit(record["_id"], at=record["last_modified_time"] + 1000, mobile1=Z)
    report = admin.sync("fxiaoke")
    assert report.updated == 1 and report.counts.echoes == 1  # the name is still our own
    assert phone_of(admin, customer_id) == (E164[Z], "fxiaoke")
    assert admin.get_customer(customer_id).fields["name"].source == "youzan"
