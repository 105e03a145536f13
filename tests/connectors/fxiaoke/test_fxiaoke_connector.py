"""The Fenxiang connector over real HTTP: paging past the 10,000 offset limit, incremental
pulls, push without upsert, query-before-retry, erasure (void then delete)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.fxiaoke import FxiaokeConnector
from connectors.fxiaoke.sandbox import FxiaokeSandbox
from vault.errors import ConfigError, PlatformRateLimited, PlatformUnavailable
from vault.plugins import connector_classes
from vault.sync import (
    Cursor,
    ExternalCustomer,
    ExternalDeletion,
    OutboundCustomer,
    Record,
)


def connector_for(sandbox: FxiaokeSandbox, **settings: str) -> FxiaokeConnector:
    return FxiaokeConnector({**sandbox.credentials(), **sandbox.urls(), **settings})


def pull(connector: FxiaokeConnector, cursor: Cursor | None = None) -> tuple[list[Record], Cursor]:
    """Every page from ``cursor`` until caught up, as the engine would call fetch."""
    records: list[Record] = []
    while True:
        page = connector.fetch("customers", cursor)
        records += page.records
        cursor = json.loads(json.dumps(page.cursor))  # the engine stores it as JSON
        if not page.more:
            assert cursor is not None
            return records, cursor


def queries(sandbox: FxiaokeSandbox) -> int:
    return sum(1 for _, path in sandbox.request_log if path.endswith("/data/query"))


@pytest.fixture
def connector(sandbox: FxiaokeSandbox) -> Iterator[FxiaokeConnector]:
    made = connector_for(sandbox)
    yield made
    made.close()


def test_connector_is_registered_through_the_entry_point_with_its_sandbox() -> None:
    cls, plugin = connector_classes()["fxiaoke"]
    assert cls is FxiaokeConnector and plugin == "fxiaoke"
    assert cls.sandbox == "connectors.fxiaoke.sandbox:FxiaokeSandbox"
    assert cls.info.pulls == {"customers"} and cls.info.pushes == {"customers", "deletions"}


def test_full_pull_of_12000_crosses_the_offset_limit_complete_without_duplicates() -> None:
    with FxiaokeSandbox(seed=11, records=12_000, endpoint_limit=None) as sandbox:
        connector = connector_for(sandbox, calls_per_20s="0")
        records, cursor = pull(connector)
        ids = [r.external_id for r in records]
        assert len(ids) == 12_000 and len(set(ids)) == 12_000
        assert set(ids) == {r["_id"] for r in sandbox.live()}
        assert all(isinstance(r, ExternalCustomer) for r in records)
        # a look at the newest change, offsets 0..10,000 (101 pages), then the _id cursor
        # (20 queries, the last one empty); never an offset the sandbox would refuse
        assert queries(sandbox) == 1 + 101 + 20
        assert cursor["phase"] == "changes"

        changed = [r["_id"] for r in sandbox.live()[::2000]]
        for record_id in changed:
            sandbox.edit(record_id, job_title="店长")
        again, _ = pull(connector, cursor)
        assert sorted(r.external_id for r in again) == sorted(changed)


def test_incremental_pull_with_nothing_changed_pulls_nothing(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    _, cursor = pull(connector)
    records, after = pull(connector, cursor)
    assert records == [] and after == cursor


def test_records_changed_or_created_during_a_full_pull_come_with_the_next_incremental(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    first = connector.fetch("customers", None)
    already_read = first.records[0].external_id
    sandbox.edit(already_read, job_title="总经理")  # an edit behind the pull's position
    [created] = connector.push_customers([outbound("c-new", name="新客户")])
    records, cursor = pull(connector, first.cursor)
    assert len({r.external_id for r in [*first.records, *records]}) == 301
    changes, _ = pull(connector, cursor)
    assert {r.external_id for r in changes} == {already_read, created.external_id}


def test_many_records_changed_in_one_millisecond_are_each_pulled_once(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    _, cursor = pull(connector)
    moment = int(cursor["t"]) + 5000
    tied = [r["_id"] for r in sandbox.live()[:250]]
    for record_id in tied:
        sandbox.edit(record_id, at=moment, job_title="采购经理")
    later = sandbox.live()[260]["_id"]
    sandbox.edit(later, at=moment + 1, job_title="财务")
    records, after = pull(connector, cursor)
    ids = [r.external_id for r in records]
    assert len(ids) == len(set(ids)) == 251
    assert set(ids) == {*tied, later}
    assert (after["t"], after["id"]) == (moment + 1, later)


def test_fields_are_mapped_to_the_catalogue_and_dates_converted(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    records, _ = pull(connector)
    by_id = {r.external_id: r for r in records if isinstance(r, ExternalCustomer)}
    raw = next(r for r in sandbox.live() if r["date_of_birth"] and r["email"] and r["mobile1"])
    pulled = by_id[raw["_id"]]
    assert pulled.fields["name"] == raw["name"]
    assert pulled.fields["phone"] == raw["mobile1"]
    assert pulled.fields["email"] == raw["email"]
    assert pulled.fields["address"] == raw["add"]
    assert len(pulled.fields["birthday"]) == 10 and pulled.fields["birthday"][4] == "-"
    assert pulled.observed_at.timestamp() * 1000 == pytest.approx(raw["last_modified_time"])
    assert any(" " in r.fields["name"] for r in by_id.values())  # Latin names too
    assert any("@" not in json.dumps(r.fields) for r in by_id.values())  # some have no email


def test_a_voided_record_arrives_as_a_deletion_and_a_deleted_one_not_at_all(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    _, cursor = pull(connector)
    voided, deleted = sandbox.live()[3]["_id"], sandbox.live()[4]["_id"]
    sandbox.edit(voided, life_status="invalid")
    sandbox.remove(deleted)
    records, _ = pull(connector, cursor)
    assert [(type(r), r.external_id) for r in records] == [(ExternalDeletion, voided)]
    everything, _ = pull(connector_for(sandbox))
    assert deleted not in {r.external_id for r in everything}


def test_a_cursor_this_connector_did_not_write_is_a_config_error(
    connector: FxiaokeConnector,
) -> None:
    with pytest.raises(ConfigError, match="full sync"):
        connector.fetch("customers", {"page_token": "x"})


def test_a_mapping_naming_a_missing_field_is_a_config_error(sandbox: FxiaokeSandbox) -> None:
    connector = connector_for(sandbox, field_map="name=name,phone=cell_phone")
    with pytest.raises(ConfigError, match="cell_phone"):
        connector.fetch("customers", None)
    no_key = connector_for(sandbox, vault_key_field="vault_id__c")
    with pytest.raises(ConfigError, match="vault_id__c"):
        no_key.fetch("customers", None)


def test_the_cloud_setting_decides_the_region(sandbox: FxiaokeSandbox) -> None:
    assert connector_for(sandbox).region == "mainland"
    assert connector_for(sandbox, cloud="华为云").region == "mainland"
    assert connector_for(sandbox, cloud="frankfurt").region == "abroad"
    assert connector_for(sandbox, cloud="open-na.sharecrm.com").region == "abroad"
    with pytest.raises(ConfigError, match="cloud"):
        connector_for(sandbox, cloud="mars")


# --- push --------------------------------------------------------------------------------------


def outbound(customer_id: str, external_id: str | None = None, **fields: str) -> OutboundCustomer:
    return OutboundCustomer(customer_id=customer_id, external_id=external_id, fields=fields)


def with_key(sandbox: FxiaokeSandbox, customer_id: str) -> list[dict[str, Any]]:
    return [r for r in sandbox.live() if r["vault_customer_id__c"] == customer_id]


def test_push_then_update_leaves_one_record_updated(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    first = connector.push_customers(
        [outbound("c-1", name="林小雨", phone="13912345678", birthday="1992-03-04")]
    )
    assert [(o.ok, o.action) for o in first] == [(True, "created")]
    record_id = first[0].external_id
    assert record_id is not None
    again = connector.push_customers(
        [outbound("c-1", record_id, name="林小雨", phone="13912345678")]
    )
    assert [(o.action, o.external_id) for o in again] == [("unchanged", record_id)]
    changed = connector.push_customers(
        [outbound("c-1", record_id, name="林小雨", phone="13700000001")]
    )
    assert [(o.action, o.external_id) for o in changed] == [("updated", record_id)]
    [stored] = with_key(sandbox, "c-1")
    assert stored["_id"] == record_id and stored["mobile1"] == "13700000001"
    assert stored["date_of_birth"] is not None
    assert stored["life_status"] == "normal" and sandbox.workflow_runs == 0


def test_push_without_a_known_id_finds_the_record_by_the_vault_key(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    [created] = connector.push_customers([outbound("c-2", name="Grace Chan")])
    [found] = connector.push_customers(
        [outbound("c-2", name="Grace Chan", email="g.chan@gmail.com")]
    )
    assert (found.action, found.external_id) == ("updated", created.external_id)
    assert len(with_key(sandbox, "c-2")) == 1


def test_a_record_deleted_in_fenxiang_is_created_again(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    [created] = connector.push_customers([outbound("c-3", name="何志明")])
    assert created.external_id is not None
    sandbox.remove(created.external_id)
    [again] = connector.push_customers([outbound("c-3", created.external_id, name="何志明")])
    assert again.action == "created" and again.external_id != created.external_id
    assert len(with_key(sandbox, "c-3")) == 1


def test_a_create_whose_answer_is_lost_is_looked_up_before_retrying(
    sandbox: FxiaokeSandbox,
) -> None:
    connector = connector_for(sandbox, timeout_seconds="0.5")
    sandbox.hold_answers(match="/data/create", seconds=1.5)
    [outcome] = connector.push_customers([outbound("c-4", name="郑雪")])
    assert outcome.ok and outcome.action == "created"
    [stored] = with_key(sandbox, "c-4")
    assert stored["_id"] == outcome.external_id
    creates = [p for _, p in sandbox.request_log if p.endswith("/data/create")]
    assert len(creates) == 1


def test_a_create_that_failed_before_landing_is_retried_once(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    sandbox.faults.inject("server_error", match="/data/create")
    [outcome] = connector.push_customers([outbound("c-5", name="冯涛")])
    assert outcome.action == "created"
    assert len(with_key(sandbox, "c-5")) == 1
    sandbox.faults.inject("drop", match="/data/create", times=2)
    with pytest.raises(PlatformUnavailable):
        connector.push_customers([outbound("c-6", name="陈静")])
    assert with_key(sandbox, "c-6") == []


def test_a_rate_limit_mid_batch_is_raised_and_the_batch_repeated_makes_no_duplicate(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    batch = [outbound(f"c-b{i}", name=f"客户{i}") for i in range(5)]
    sandbox.fail_with(30004, match="/data/create", after=2)
    with pytest.raises(PlatformRateLimited):
        connector.push_customers(batch)
    outcomes = connector.push_customers(batch)  # the engine's retry of the whole batch
    assert [o.action for o in outcomes] == [
        "unchanged",
        "unchanged",
        "created",
        "created",
        "created",
    ]
    assert all(len(with_key(sandbox, r.customer_id)) == 1 for r in batch)


def test_a_record_fenxiang_refuses_is_a_failed_outcome_without_its_value(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    outcomes = connector.push_customers(
        [outbound("c-7", name="黄磊", email="not-an-email"), outbound("c-8", name="黄蕾")]
    )
    assert [(o.ok, o.action) for o in outcomes] == [(False, "failed"), (True, "created")]
    assert outcomes[0].error is not None and "15002" in outcomes[0].error
    assert "not-an-email" not in outcomes[0].error


def test_masked_values_are_never_sent(sandbox: FxiaokeSandbox, connector: FxiaokeConnector) -> None:
    [outcome] = connector.push_customers(
        [outbound("c-9", name="张伟", phone="138****8000", birthday="1990-**-**")]
    )
    assert outcome.ok
    [stored] = with_key(sandbox, "c-9")
    assert (stored["mobile1"], stored["date_of_birth"]) == (None, None)
    sandbox.edit(stored["_id"], mobile1="13800138000")
    [again] = connector.push_customers(
        [outbound("c-9", stored["_id"], name="张*", phone="138****8000")]
    )
    assert again.action == "unchanged"
    assert (sandbox.record(stored["_id"]) or {})["mobile1"] == "13800138000"


def test_a_mainland_mobile_in_e164_is_sent_as_fenxiang_keeps_it(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    [created] = connector.push_customers(
        [outbound("c-11", name="许晴", phone="+8613912345678", email="xq@163.com")]
    )
    [stored] = with_key(sandbox, "c-11")
    assert stored["mobile1"] == "13912345678"
    [again] = connector.push_customers(
        [outbound("c-11", created.external_id, name="许晴", phone="+8613912345678")]
    )
    assert again.action == "unchanged"
    connector.push_customers([outbound("c-12", name="Lukas Weber", phone="+4915112345678")])
    assert with_key(sandbox, "c-12")[0]["mobile1"] == "+4915112345678"


# --- delete ------------------------------------------------------------------------------------


def test_delete_voids_then_deletes_and_the_record_is_gone(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    [created] = connector.push_customers([outbound("c-10", name="罗敏")])
    assert created.external_id is not None
    seeded = sandbox.live()[0]["_id"]
    gone = "0" * 24
    outcomes = connector.delete([created.external_id, seeded, gone])
    assert [(o.external_id, o.ok, o.action) for o in outcomes] == [
        (created.external_id, True, "deleted"),
        (seeded, True, "deleted"),
        (gone, True, "deleted"),
    ]
    assert sandbox.record(created.external_id) is None and sandbox.record(seeded) is None
    paths = [p.rsplit("/", 1)[-1] for _, p in sandbox.request_log]
    assert paths[-4:] == ["query", "invalid", "invalid", "delete"]


def test_delete_of_a_locked_record_fails_for_that_record_only(
    sandbox: FxiaokeSandbox, connector: FxiaokeConnector
) -> None:
    locked, free = sandbox.live()[1]["_id"], sandbox.live()[2]["_id"]
    sandbox.edit(locked, lock_status="1")
    outcomes = connector.delete([locked, free])
    assert [(o.ok, o.action) for o in outcomes] == [(False, "failed"), (True, "deleted")]
    assert sandbox.record(locked) is not None and sandbox.record(free) is None
