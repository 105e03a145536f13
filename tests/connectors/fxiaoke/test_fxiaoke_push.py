"""End to end pushes to Fenxiang through ``admin.sync("fxiaoke")``: one record per customer
however often it is pushed, consent gating (crm_sharing; transfer_abroad for a host abroad),
and faults during a push; on SQLite and PostgreSQL, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.fxiaoke.sandbox import FxiaokeSandbox
from vault.errors import PlatformQuotaExhausted
from vault.session import Session
from vault.store.schema import customers
from vault.sync.retry import SyncPolicy
from vault.vault import Vault

FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=0.2)
SHARE, ABROAD = "crm_sharing", "transfer_abroad"


@pytest.fixture
def crm() -> Iterator[FxiaokeSandbox]:
    """A tenant with a few contacts of its own (nobody consented to anything about them)."""
    with FxiaokeSandbox(seed=5, records=20) as running:
        assert isinstance(running, FxiaokeSandbox)
        yield running


@pytest.fixture
def fast(vault: Vault) -> Vault:
    vault.sync_policy = FAST
    return vault


def configure(admin: Session, crm: FxiaokeSandbox, **extra: str) -> None:
    admin.configure_connector("fxiaoke", {**crm.credentials(), **crm.urls(), **extra})


def customer(admin: Session, name: str, phone: str, *consents: str, **fields: str) -> str:
    customer_id = admin.add_customer({"name": name, "phone": phone, **fields}, source="cli")
    for purpose in consents:
        admin.grant_consent(customer_id, purpose, source="web-form", evidence="form-1")
    return customer_id


def in_crm(crm: FxiaokeSandbox, customer_id: str) -> list[dict[str, Any]]:
    return [r for r in crm.live() if r["vault_customer_id__c"] == customer_id]


def test_push_change_push_leaves_one_record_updated_and_the_id_mapped(
    admin: Session, crm: FxiaokeSandbox
) -> None:
    configure(admin, crm)
    someone = customer(admin, "欧阳娜娜", "13812345678", SHARE, email="nana@qq.com")
    first = admin.sync("fxiaoke")
    assert first.pulled == 20 and first.pushed == 1
    assert first.skipped_push == {f"no consent: {SHARE}": 20}  # the CRM's own contacts
    [record] = in_crm(crm, someone)
    assert (record["name"], record["mobile1"], record["email"]) == (
        "欧阳娜娜",
        "13812345678",
        "nana@qq.com",
    )
    assert record["life_status"] == "normal"  # approval flow off
    assert admin.find_by_identity("fxiaoke", record["_id"]) == someone

    admin.update_customer(someone, {"email": "ouyang.nana@163.com"}, source="cli")
    second = admin.sync("fxiaoke")
    assert second.pushed == 1
    [updated] = in_crm(crm, someone)
    assert updated["_id"] == record["_id"] and updated["email"] == "ouyang.nana@163.com"
    assert updated["last_modified_time"] > record["last_modified_time"]

    quiet = admin.sync("fxiaoke")  # the pull sees our own write; nothing goes back and forth
    assert quiet.pushed == 0 and quiet.created == 0
    assert len(in_crm(crm, someone)) == 1


def test_consent_to_share_but_not_to_transfer_abroad_pushes_to_a_mainland_host_only(
    admin: Session, crm: FxiaokeSandbox
) -> None:
    local_only = customer(admin, "Kelvin Chan", "+85291234567", SHARE)
    anywhere = customer(admin, "Anna Becker", "+4915112345678", SHARE, ABROAD)
    configure(admin, crm, cloud="frankfurt")
    abroad = admin.sync("fxiaoke")
    assert abroad.pushed == 1
    assert abroad.skipped_push[f"no consent: {ABROAD}"] == 1
    assert in_crm(crm, local_only) == [] and len(in_crm(crm, anywhere)) == 1

    configure(admin, crm, cloud="fxiaoke")  # the same tenant moved to 纷享云 (mainland)
    mainland = admin.sync("fxiaoke")
    assert mainland.pushed == 1
    assert len(in_crm(crm, local_only)) == 1 and len(in_crm(crm, anywhere)) == 1


def test_withdrawn_consent_stops_later_pushes_and_removes_nothing_sent(
    admin: Session, crm: FxiaokeSandbox
) -> None:
    configure(admin, crm)
    someone = customer(admin, "谢婷", "13698765432", SHARE)
    admin.sync("fxiaoke")
    admin.withdraw_consent(someone, SHARE, source="web-form")
    admin.update_customer(someone, {"phone": "13600000000"}, source="cli")
    report = admin.sync("fxiaoke")
    assert report.pushed == 0 and report.skipped_push[f"no consent: {SHARE}"] >= 1
    [kept] = in_crm(crm, someone)
    assert kept["mobile1"] == "13698765432"  # what was sent stays; the change did not go


def test_a_customer_without_any_consent_is_never_sent(admin: Session, crm: FxiaokeSandbox) -> None:
    configure(admin, crm)
    nobody = customer(admin, "孔明", "13500001111")
    report = admin.sync("fxiaoke")
    assert report.pushed == 0 and in_crm(crm, nobody) == []


@pytest.mark.parametrize(
    "fault", ["30004", "server_error", "drop", "malformed", "lost_answer", "token_expired"]
)
def test_faults_during_a_push_end_with_one_record_per_customer(
    admin: Session, fast: Vault, crm: FxiaokeSandbox, fault: str
) -> None:
    configure(admin, crm, timeout_seconds="0.5")
    people = [customer(admin, f"顾客{i}", f"1391234{i:04d}", SHARE) for i in range(5)]
    create = "/data/create"
    if fault == "30004":
        crm.faults.inject("rate_limit", match=create, after=2, times=2)
    elif fault in ("server_error", "drop", "malformed"):
        crm.faults.inject(fault, match=create, after=1, times=2)
    elif fault == "lost_answer":
        crm.hold_answers(match=create, seconds=1.0, times=2)
    else:
        crm.faults.inject("token_expired", match=create, after=3)
    report = admin.sync("fxiaoke")
    assert report.pushed == 5
    assert all(len(in_crm(crm, p)) == 1 for p in people)
    assert {admin.find_by_identity("fxiaoke", in_crm(crm, p)[0]["_id"]) for p in people} == set(
        people
    )
    assert admin.sync("fxiaoke").pushed == 0


def test_quota_used_up_during_a_push_stops_clearly_and_the_next_run_finishes(
    admin: Session, fast: Vault, crm: FxiaokeSandbox
) -> None:
    configure(admin, crm)
    people = [customer(admin, f"会员{i}", f"1371234{i:04d}", SHARE) for i in range(4)]
    crm.fail_with(30002, match="/data/create", after=2)
    with pytest.raises(PlatformQuotaExhausted, match="daily OpenAPI quota"):
        admin.sync("fxiaoke")
    resumed = admin.sync("fxiaoke")
    assert resumed.pushed >= 2
    assert all(len(in_crm(crm, p)) == 1 for p in people)


# --- erasure reaching Fenxiang ----------------------------------------------------------------


def test_erasure_in_the_vault_deletes_the_record_in_fenxiang_and_no_pull_brings_it_back(
    admin: Session, vault: Vault, crm: FxiaokeSandbox
) -> None:
    configure(admin, crm)
    someone = customer(admin, "曹雪芹", "13787654321", SHARE, email="caoxq@163.com")
    admin.sync("fxiaoke")
    [record] = in_crm(crm, someone)
    before = live_customers(vault)
    admin.erase_customer(someone, reason="data subject request (test)")
    # A salesperson's own copy of the same person, typed in before the erasure and not yet
    # seen by the vault: it must not bring the person back either.
    crm.add_record(at=record["last_modified_time"] + 1, name="曹雪芹", mobile1="13787654321")

    report = admin.sync("fxiaoke")
    assert report.counts.deleted >= 1 and report.suppressed >= 1 and report.created == 0
    assert crm.record(record["_id"]) is None  # voided, then deleted: gone from the sandbox
    verbs = [path.rsplit("/", 1)[-1] for _, path in crm.request_log]
    assert verbs.index("invalid") < verbs.index("delete")
    assert admin.find_customers("phone", "13787654321", purpose="administration") == []

    again = admin.sync("fxiaoke", full=True)
    assert again.created == 0
    assert admin.find_customers("phone", "13787654321", purpose="administration") == []
    assert live_customers(vault) == before - 1


def live_customers(vault: Vault) -> int:
    with vault._engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(customers).where(customers.c.erased_at.is_(None))
            ).scalar_one()
        )
