"""The connector against its sandbox, no vault: windows, back-to-front paging, detail, mapping."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from taobao_helpers import settings_for

from connectors.taobao.client import parse_time
from connectors.taobao.connector import TaobaoConnector, parse_handle
from connectors.taobao.sandbox import TaobaoSandbox
from vault.sync import Cursor, ExternalOrder


def pull(
    connector: TaobaoConnector, cursor: Cursor | None = None
) -> tuple[list[ExternalOrder], Cursor]:
    records: list[ExternalOrder] = []
    for _ in range(10_000):
        page = connector.fetch("orders", cursor)
        records += [r for r in page.records if isinstance(r, ExternalOrder)]
        cursor = page.cursor
        if not page.more:
            return records, cursor
    raise AssertionError("the stream never caught up")


def spans_sent(connector: TaobaoConnector) -> list[timedelta]:
    spans: list[timedelta] = []
    original = connector.client.call

    def recording(method: str, params: Any, *, session: str | None = None) -> dict[str, Any]:
        if method == "taobao.trades.sold.increment.get":
            spans.append(parse_time(params["end_modified"]) - parse_time(params["start_modified"]))
        return original(method, params, session=session)

    connector.client.call = recording  # type: ignore[method-assign]
    return spans


def test_full_pull_sees_every_order_of_both_shops_with_windows_of_at_most_a_day(
    taobao: TaobaoSandbox, connector: TaobaoConnector
) -> None:
    spans = spans_sent(connector)
    records, _ = pull(connector)
    assert {r.order.order_id for r in records} == {str(t) for t in taobao.trades}
    assert {r.order.shop for r in records} == {s.nick for s in taobao.shops}
    assert spans and max(spans) <= timedelta(days=1)


def test_paging_from_the_last_page_misses_nothing_while_orders_change(
    taobao: TaobaoSandbox,
) -> None:
    taobao.mutate_between_pages = True  # after each page served, an order of the window moves on
    connector = TaobaoConnector(settings_for(taobao, page_size="7"))
    records, cursor = pull(connector)
    seen = {r.order.order_id for r in records}
    # Every order last modified inside the windows read is there; those moved on while we paged
    # now lie after them, and the next run brings them.
    high_water = min(datetime.fromisoformat(hw) for hw in cursor["hw"].values())
    settled = {str(tid) for tid, t in taobao.trades.items() if t.modified <= high_water}
    assert settled <= seen and len(settled) > len(taobao.trades) // 2
    taobao.mutate_between_pages = False
    later, _ = pull(connector, cursor)
    connector.close()
    assert {str(t) for t in taobao.trades} <= seen | {r.order.order_id for r in later}


class Clock:
    """A clock the sandbox and a connector share; the connector's waits move it on."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def connector(self, settings: dict[str, str]) -> TaobaoConnector:
        clock = self

        class Clocked(TaobaoConnector):
            def now(self) -> datetime:
                return clock.at

            def sleep(self, seconds: float) -> None:
                clock.at += timedelta(seconds=seconds)

        return Clocked(settings)


def test_a_change_in_the_second_a_killed_run_read_up_to_is_not_missed_on_resume() -> None:
    # modified is whole seconds: a change made after a window was read, in the second the
    # window ends, carries that second. A run killed once the first shop is read, then resumed
    # within that second, must still bring the change.
    clock = Clock(datetime.now(UTC).replace(microsecond=100_000))
    with TaobaoSandbox(seed=11, records=600, clock=clock) as taobao:
        assert isinstance(taobao, TaobaoSandbox)
        settings = settings_for(taobao, page_size="1", backfill_days="3")
        first, cursor = clock.connector(settings), None
        while taobao.shops[0].nick in (cursor or {}).get("todo", [taobao.shops[0].nick]):
            page = first.fetch("orders", cursor)
            assert page.more, "the kill comes while the second shop is still to read"
            cursor = page.cursor
        first.close()  # killed: only its cursor is left
        clock.at += timedelta(milliseconds=500)  # the same second
        open_trades = [
            tid
            for tid, t in taobao.trades.items()
            if t.shop == 0 and t.status in ("WAIT_BUYER_PAY", "WAIT_SELLER_SEND_GOODS")
        ]
        changed = taobao.advance(changes=len(open_trades))
        changed = [tid for tid in changed if taobao.trades[tid].shop == 0]
        assert changed
        clock.at += timedelta(milliseconds=100)  # still the same second
        resumed = clock.connector(settings)
        records, _ = pull(resumed, json.loads(json.dumps(cursor)))
        resumed.close()
        by_id = {r.order.order_id: r.order for r in records}
        assert {str(tid) for tid in changed} <= set(by_id)
        for tid in changed:
            assert by_id[str(tid)].updated_at == taobao.trades[tid].modified


def test_orders_map_amounts_statuses_buyers_and_handles(
    taobao: TaobaoSandbox, connector: TaobaoConnector
) -> None:
    records, _ = pull(connector)
    by_id = {r.order.order_id: r for r in records}
    for tid, trade in taobao.trades.items():
        record = by_id[str(tid)]
        order, buyer = record.order, record.buyer
        assert order.total_amount == trade.total_fee + trade.post_fee
        assert [i.quantity * i.unit_price for i in order.items] == [
            line.price * line.num for line in trade.lines
        ]
        assert order.currency == "CNY" and order.updated_at == trade.modified
        assert buyer.external_id == taobao.buyers[trade.buyer].open_uid
        expected = {
            "WAIT_BUYER_PAY": "pending",
            "WAIT_SELLER_SEND_GOODS": "paid",
            "WAIT_BUYER_CONFIRM_GOODS": "shipped",
            "TRADE_CLOSED_BY_TAOBAO": "cancelled",
            "TRADE_CLOSED": "refunded",
        }.get(trade.status)
        if trade.status == "TRADE_FINISHED":
            refunded = any(line.refund_status == "SUCCESS" for line in trade.lines)
            expected = "partially_refunded" if refunded else "completed"
        assert order.status == expected
        assert (order.refunded_at is not None) == (expected in ("refunded", "partially_refunded"))
        person = taobao.buyers[trade.buyer].person
        assert buyer.fields["phone"] == person.phone[:3] + "****" + person.phone[-4:]
        assert "*" in buyer.fields["name"] and "*" in buyer.fields["nickname"]
        assert person.phone not in json.dumps(buyer.platform_ciphertexts, ensure_ascii=False)
        oaid = taobao.oaid_of(trade)
        assert buyer.identities == [("taobao_oaid", oaid)]
        assert parse_handle(buyer.platform_ciphertexts["phone"]) == ("mobile", str(tid), oaid)
    statuses = {r.order.status for r in records}
    assert {"refunded", "partially_refunded", "completed", "cancelled"} <= statuses


def test_incremental_pull_brings_status_changes_refunds_and_new_orders(
    taobao: TaobaoSandbox, connector: TaobaoConnector
) -> None:
    _, cursor = pull(connector)
    touched = taobao.advance(changes=6, refunds=3, new_orders=4)
    records, _ = pull(connector, cursor)
    by_id = {r.order.order_id: r.order for r in records}
    assert {str(t) for t in touched} <= set(by_id)
    assert len(records) < 100  # only the recent window, not the history again
    for tid in touched:
        assert by_id[str(tid)].updated_at == taobao.trades[tid].modified


def test_decrypt_turns_handles_into_the_receivers_values(
    taobao: TaobaoSandbox, connector: TaobaoConnector
) -> None:
    trade = next(t for t in taobao.trades.values() if not taobao.buyers[t.buyer].privacy_protection)
    oaid = taobao.oaid_of(trade)
    handles = {p: f"oaid:{p}:{trade.tid}:{oaid}" for p in ("name", "mobile", "address")}
    clear = connector.decrypt(list(handles.values()), scene="after_sales")
    person = taobao.buyers[trade.buyer].person
    assert clear == {
        handles["name"]: person.name,
        handles["mobile"]: person.phone,
        handles["address"]: person.address,
    }
    assert taobao.decrypt_calls == {"2001": 1}


def test_a_stale_oaid_decrypts_to_nothing(
    taobao: TaobaoSandbox, connector: TaobaoConnector
) -> None:
    trade = next(t for t in taobao.trades.values() if t.status == "WAIT_SELLER_SEND_GOODS")
    old = taobao.oaid_of(trade)
    taobao.trades[trade.tid].receiver_version += 1  # the buyer changed the receiver
    assert connector.decrypt([f"oaid:name:{trade.tid}:{old}"], scene="customer_service") == {}


def test_vault_sandbox_command_prints_one_json_line_with_url_and_credentials() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vault.cli",
            "sandbox",
            "taobao",
            "--port",
            "0",
            "--seed",
            "5",
            "--records",
            "50",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        announced = json.loads(line)
        assert announced["sandbox"] == "taobao" and announced["base_url"].startswith(
            "http://127.0.0.1:"
        )
        assert set(announced["credentials"]) == {"app_key", "app_secret", "session", "sign_method"}
        assert announced["orders"] == 50
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_same_seed_same_shops_buyers_and_orders() -> None:
    one, two = TaobaoSandbox(seed=4, records=30), TaobaoSandbox(seed=4, records=30)
    assert one.credentials() == two.credentials()
    assert [b.open_uid for b in one.buyers] == [b.open_uid for b in two.buyers]
    assert [(t.tid, t.status, t.total_fee) for t in one.trades.values()] == [
        (t.tid, t.status, t.total_fee) for t in two.trades.values()
    ]
    both = [b for b in one.buyers if len(b.shops) == 2]
    assert both  # some buyers buy in both shops
