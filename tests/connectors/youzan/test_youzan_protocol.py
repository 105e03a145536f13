"""The Youzan connector and its sandbox over real HTTP: the token endpoint and its refresh
semantics, gw_err_resp 4202/4203, the success envelope and its error codes, paging by update
time under the page_no and 3-month rules, customers by yz_open_id, batch decrypt."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import connectors.youzan.connector as plugin  # the connector moved from plugin.py
from connectors.youzan.client import YouzanClient
from connectors.youzan.plugin import YouzanConnector, fen, is_ciphertext, parse_handle
from connectors.youzan.sandbox import YouzanSandbox, add_months, china_time
from vault.errors import (
    PlatformAuthFailed,
    PlatformProtocolError,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from vault.plugins import connector_classes
from vault.sync import ExternalCustomer, ExternalOrder

TRADES = "/api/youzan.trades.sold.get/4.0.4"


def walk(connector: YouzanConnector, stream: str, cursor: Any = None) -> tuple[list[Any], Any]:
    records: list[Any] = []
    while True:
        page = connector.fetch(stream, cursor)
        records.extend(page.records)
        cursor = page.cursor
        if not page.more:
            return records, cursor


def connector_for(sandbox: YouzanSandbox, **settings: str) -> YouzanConnector:
    return YouzanConnector(
        {**sandbox.credentials(), "base_url": sandbox.url, "history_days": "3", **settings}
    )


def token(sandbox: YouzanSandbox, **body: Any) -> Any:
    base = {
        "authorize_type": "silent",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "grant_id": sandbox.credentials()["kdt_id"],
        "refresh": False,
    }
    answer = httpx.post(f"{sandbox.url}/auth/token", json={**base, **body})
    assert answer.status_code == 200
    return answer.json()


def api(sandbox: YouzanSandbox, path: str, access_token: str | None, body: Any) -> Any:
    params = {"access_token": access_token} if access_token else {}
    answer = httpx.post(f"{sandbox.url}{path}", params=params, json=body)
    assert answer.status_code == 200, "the platform answers HTTP 200, errors in the body"
    return answer.json()


@pytest.fixture(scope="module")
def shop() -> Iterator[YouzanSandbox]:
    with YouzanSandbox(seed=21, records=1200, span_days=2) as sandbox:
        assert isinstance(sandbox, YouzanSandbox)
        yield sandbox


@pytest.fixture(scope="module")
def walked(shop: YouzanSandbox) -> list[ExternalOrder]:
    return walk(connector_for(shop), "orders")[0]


@pytest.fixture
def fresh() -> Iterator[YouzanSandbox]:
    with YouzanSandbox(seed=22, records=300, span_days=1, shops=2) as sandbox:
        assert isinstance(sandbox, YouzanSandbox)
        yield sandbox


# --- the token endpoint ------------------------------------------------------------------------


def test_silent_token_refresh_semantics(fresh: YouzanSandbox) -> None:
    first = token(fresh)
    assert first["success"] is True and first["code"] == 200
    access = first["data"]["access_token"]
    assert first["data"]["expires"] > time.time() * 1000
    assert token(fresh)["data"]["access_token"] == access  # refresh=false: the same token
    renewed = token(fresh, refresh=True)["data"]["access_token"]
    assert renewed != access
    # the old token keeps working for an hour, the new one for the token's life
    assert api(fresh, TRADES, access, {})["success"] is True
    assert fresh._tokens[access].expires_at <= time.time() + 3600
    fresh.expire_tokens()
    replaced = token(fresh)["data"]["access_token"]  # expired: a new one either way
    assert replaced not in (access, renewed)


def test_authorization_code_then_refresh_token(fresh: YouzanSandbox) -> None:
    granted = token(fresh, authorize_type="authorization_code", code=fresh.shops[0].auth_code)
    refresh = granted["data"]["refresh_token"]
    again = token(fresh, authorize_type="refresh_token", refresh_token=refresh)
    assert (
        again["success"] is True
        and again["data"]["access_token"] != granted["data"]["access_token"]
    )
    refused = token(fresh, authorize_type="refresh_token", refresh_token="nope")
    assert refused["success"] is False


def test_tool_app_connector_uses_its_code_then_its_refresh_token(fresh: YouzanSandbox) -> None:
    connector = connector_for(
        fresh, authorize_type="authorization_code", auth_code=fresh.shops[0].auth_code
    )
    connector.fetch("orders", None)
    assert connector.client.refresh_token
    fresh.expire_tokens()
    connector.fetch("orders", None)
    assert connector.client.token_requests == 2


def test_wrong_credentials_fail_authentication(fresh: YouzanSandbox) -> None:
    assert token(fresh, client_secret="wrong")["success"] is False
    with pytest.raises(PlatformAuthFailed):
        connector_for(fresh, client_secret="wrong").fetch("orders", None)


def test_repeated_token_calls_are_throttled() -> None:
    with YouzanSandbox(seed=23, records=10, token_calls_per_minute=2) as sandbox:
        assert isinstance(sandbox, YouzanSandbox)
        token(sandbox)
        token(sandbox)
        assert token(sandbox)["code"] == 10429


def test_connector_caches_its_token(shop: YouzanSandbox) -> None:
    connector = connector_for(shop)
    walk(connector, "orders")
    assert connector.client.token_requests == 1


# --- the gateway -------------------------------------------------------------------------------


def test_missing_or_unknown_token_is_4203_and_expired_is_4202(fresh: YouzanSandbox) -> None:
    assert api(fresh, TRADES, None, {})["gw_err_resp"]["err_code"] == 4203
    assert api(fresh, TRADES, "unknown", {})["gw_err_resp"]["err_code"] == 4203
    access = token(fresh)["data"]["access_token"]
    fresh.expire_tokens()
    assert api(fresh, TRADES, access, {})["gw_err_resp"]["err_code"] == 4202


def test_connector_renews_an_expired_token_once_and_goes_on(fresh: YouzanSandbox) -> None:
    connector = connector_for(fresh)
    page = connector.fetch("orders", None)
    fresh.faults.inject("token_expired")
    records, _ = walk(connector, "orders", page.cursor)
    assert connector.client.token_requests == 2
    assert (TRADES, "gw_err_resp", 4202) in fresh.refused
    assert records


def test_a_token_refused_after_renewal_is_an_authentication_failure() -> None:
    with YouzanSandbox(seed=24, records=10, token_ttl=0) as sandbox:
        assert isinstance(sandbox, YouzanSandbox)
        connector = connector_for(sandbox)
        with pytest.raises(PlatformAuthFailed, match="even after renewing"):
            connector.fetch("orders", None)
        assert connector.client.token_requests == 2


def test_success_envelope_carries_code_200_data_and_trace_id(fresh: YouzanSandbox) -> None:
    answer = api(fresh, TRADES, token(fresh)["data"]["access_token"], {"page_size": 5})
    assert answer["success"] is True and answer["code"] == 200
    assert set(answer) >= {"message", "data", "trace_id"}
    assert {"total_results", "full_order_info_list"} <= set(answer["data"])


def test_rate_limiter_answers_a_gateway_error() -> None:
    with YouzanSandbox(seed=25, records=10, rate_limit=(2, 60.0)) as sandbox:
        assert isinstance(sandbox, YouzanSandbox)
        access = token(sandbox)["data"]["access_token"]
        api(sandbox, TRADES, access, {})
        api(sandbox, TRADES, access, {})
        assert api(sandbox, TRADES, access, {})["gw_err_resp"]["err_code"] == 4290
        with pytest.raises(PlatformRateLimited):
            connector_for(sandbox).fetch("orders", None)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("rate_limit", PlatformRateLimited),
        ("server_error", PlatformUnavailable),
        ("malformed", PlatformProtocolError),
        ("drop", PlatformUnavailable),
    ],
)
def test_faults_map_to_the_engines_error_kinds(
    fresh: YouzanSandbox, fault: str, error: type[Exception]
) -> None:
    connector = connector_for(fresh)
    connector.client.token()
    fresh.faults.inject(fault, match="/api/")
    with pytest.raises(error):
        connector.fetch("orders", None)
    assert connector.fetch("orders", None).cursor


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"success": True, "code": 201, "data": {}}, PlatformProtocolError),
        ({"success": True, "code": 200}, PlatformProtocolError),
        ({"success": False, "code": 10500, "message": "系统错误"}, PlatformUnavailable),
        ({"success": False, "code": 40010, "message": "参数错误"}, PlatformRejected),
        ({"success": False, "code": 10429, "message": "限流"}, PlatformRateLimited),
        ({"success": False, "message": "no code"}, PlatformProtocolError),
        ({"gw_err_resp": {"err_code": 5001, "err_msg": "x"}}, PlatformUnavailable),
        ({"gw_err_resp": {"err_msg": "x"}}, PlatformProtocolError),
        ({"response": {"trades": []}}, PlatformProtocolError),
    ],
)
def test_envelopes_map_to_error_kinds(body: Any, error: type[Exception]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(
                200, json={"success": True, "code": 200, "data": {"access_token": "t"}}
            )
        return httpx.Response(200, json=body)

    client = YouzanClient(
        base_url="http://127.0.0.1:9",
        client_id="c",
        client_secret="s",
        kdt_id="1",
        http=httpx.Client(transport=httpx.MockTransport(answer)),
    )
    with pytest.raises(error):
        client.call("youzan.trades.sold.get", "4.0.4", {})


# --- trades.sold.get rules -----------------------------------------------------------------------


def test_page_no_and_page_size_over_100_are_refused(fresh: YouzanSandbox) -> None:
    access = token(fresh)["data"]["access_token"]
    assert api(fresh, TRADES, access, {"page_no": 101})["success"] is False
    assert api(fresh, TRADES, access, {"page_size": 101})["success"] is False
    assert api(fresh, TRADES, access, {"page_no": 100, "page_size": 100})["success"] is True


def test_a_window_over_three_months_is_refused(fresh: YouzanSandbox) -> None:
    access = token(fresh)["data"]["access_token"]
    start = time.time() - 120 * 86400
    end = add_months(start, 3)
    ok = {"start_update": china_time(start), "end_update": china_time(end)}
    assert api(fresh, TRADES, access, ok)["success"] is True
    too_long = {"start_update": china_time(start), "end_update": china_time(end + 1)}
    refused = api(fresh, TRADES, access, too_long)
    assert refused["success"] is False and refused["code"] == 40010


def test_an_unpaired_start_or_end_is_ignored(fresh: YouzanSandbox) -> None:
    access = token(fresh)["data"]["access_token"]
    everything = api(fresh, TRADES, access, {})["data"]["total_results"]
    start_only = {"start_update": china_time(time.time() - 60)}
    assert api(fresh, TRADES, access, start_only)["data"]["total_results"] == everything


def test_sort_follows_the_filters(fresh: YouzanSandbox) -> None:
    access = token(fresh)["data"]["access_token"]
    span = {
        "start_created": china_time(time.time() - 86400 * 3),
        "end_created": china_time(time.time()),
    }
    by_created = api(fresh, TRADES, access, {**span, "page_size": 100})["data"]
    created = [
        e["full_order_info"]["order_info"]["created"] for e in by_created["full_order_info_list"]
    ]
    assert created == sorted(created, reverse=True)
    update = {"start_update": span["start_created"], "end_update": span["end_created"]}
    by_update = api(fresh, TRADES, access, {**span, **update, "page_size": 100})["data"]
    updated = [
        e["full_order_info"]["order_info"]["update_time"] for e in by_update["full_order_info_list"]
    ]
    assert updated == sorted(updated, reverse=True)


def test_index_lag_hides_the_latest_updates() -> None:
    with YouzanSandbox(seed=26, records=50, span_days=1, index_lag=30) as sandbox:
        assert isinstance(sandbox, YouzanSandbox)
        changed = sandbox.change_statuses(5, at=time.time() - 5)
        records, _ = walk(connector_for(sandbox), "orders")
        assert not set(changed) & {r.order.order_id for r in records}


def test_connector_never_breaks_the_paging_and_window_rules(
    shop: YouzanSandbox, walked: list[ExternalOrder]
) -> None:
    sent = [body for path, body in shop.api_log if path == TRADES]
    assert sent
    for body in sent:
        assert 1 <= body["page_no"] <= 100 and body["page_size"] <= 100
        start, end = (
            time.mktime(time.strptime(body[k], "%Y-%m-%d %H:%M:%S"))
            for k in ("start_update", "end_update")
        )
        assert 0 < end - start <= 86400
    assert not [r for r in shop.refused if r[0] == TRADES]


def test_full_walk_delivers_every_order_once(
    shop: YouzanSandbox, walked: list[ExternalOrder]
) -> None:
    ids = [r.order.order_id for r in walked]
    assert sorted(ids) == sorted(shop.trades)


def test_a_crowded_window_is_split_until_page_no_100_reaches_it(
    fresh: YouzanSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugin, "MAX_REACHABLE", 60)
    records, _ = walk(connector_for(fresh), "orders")
    assert sorted(r.order.order_id for r in records) == sorted(
        t for t, o in fresh.trades.items() if str(o.kdt_id) == fresh.credentials()["kdt_id"]
    )
    spans = {(b["start_update"], b["end_update"]) for p, b in fresh.api_log if p == TRADES}
    assert len(spans) > 3


@pytest.mark.parametrize("inside", [True, False], ids=["moved-inside", "moved-out"])
def test_orders_updated_while_a_window_is_paged_are_not_missed(
    fresh: YouzanSandbox, inside: bool
) -> None:
    connector = connector_for(fresh, history_days="1")
    first = connector.fetch("orders", None)
    assert first.more and "window" in first.cursor
    # inside: updated within the window being paged; out: updated after its end
    changed = fresh.change_statuses(40, at=time.time() - (90 if inside else 30))
    rest, _ = walk(connector, "orders", first.cursor)
    seen = {r.order.order_id for r in [*first.records, *rest]}
    mine = {t for t, o in fresh.trades.items() if str(o.kdt_id) == fresh.credentials()["kdt_id"]}
    # no order the changes shifted across a page boundary is lost; the changed ones come in
    # this window (inside) or in the window of their new update time (out)
    assert mine - set(changed) <= seen
    if inside:
        assert seen == mine
    pages = [b["page_no"] for p, b in fresh.api_log if p == TRADES]
    assert pages.count(1) >= 2


def test_status_changes_come_back_in_the_next_incremental_walk(fresh: YouzanSandbox) -> None:
    connector = connector_for(fresh)
    _, cursor = walk(connector, "orders")
    changed = fresh.change_statuses(30)
    again, _ = walk(connector, "orders", cursor)
    by_id = {r.order.order_id: r.order for r in again}
    mine = [t for t in changed if str(fresh.trades[t].kdt_id) == fresh.credentials()["kdt_id"]]
    assert mine and set(mine) <= set(by_id)
    for tid in mine:
        trade = fresh.trades[tid]
        assert by_id[tid].status == plugin.order_status(trade.status, trade.refund_state)


def test_orders_carry_amounts_items_and_only_ciphertexts_of_pii(
    shop: YouzanSandbox, walked: list[ExternalOrder]
) -> None:
    for record in walked[:300]:
        trade = shop.trades[record.order.order_id]
        person = shop.buyer_of(record.order.order_id)
        assert record.buyer.external_id == shop.yz_open_id(trade.buyer)
        assert record.buyer.fields == {}
        assert set(record.buyer.platform_ciphertexts) == {"name", "phone", "address"}
        assert all(
            parse_handle(h)[0] == record.order.shop
            for h in record.buyer.platform_ciphertexts.values()
        )
        assert person.phone not in repr(record) and person.name not in repr(record)
        goods = sum(int(p.replace(".", "")) * n for _, _, n, p in trade.items)
        assert record.order.total_amount == goods + int(trade.post_fee.replace(".", ""))
        assert [i.quantity for i in record.order.items] == [n for _, _, n, _ in trade.items]
    assert {"paid", "shipped", "completed"} <= {r.order.status for r in walked}


def test_amounts_become_integer_fen_exactly() -> None:
    assert fen("12.90", field="x") == 1290 and fen(0.07, field="x") == 7
    with pytest.raises(PlatformProtocolError):
        fen("1.005", field="x")


def test_ciphertext_grammar() -> None:
    assert is_ciphertext("$OaF/xZqb0f8==$3$")
    assert not is_ciphertext("13800138000") and not is_ciphertext("$abc$x$")


# --- customers ---------------------------------------------------------------------------------


def test_customers_arrive_by_yz_open_id_newest_first(shop: YouzanSandbox) -> None:
    records, cursor = walk(connector_for(shop), "customers")
    kdt = int(shop.credentials()["kdt_id"])
    assert sorted(r.external_id for r in records) == sorted(
        shop.yz_open_id(b) for b in shop.members[kdt]
    )
    assert all(
        isinstance(r, ExternalCustomer) and "phone" in r.platform_ciphertexts for r in records
    )
    created = [r.observed_at for r in records]
    assert created == sorted(created, reverse=True)
    assert cursor["since"] == int(max(shop.members[kdt].values()))


def test_incremental_customers_bring_the_new_ones(fresh: YouzanSandbox) -> None:
    connector = connector_for(fresh)
    _, cursor = walk(connector, "customers")
    kdt = int(fresh.credentials()["kdt_id"])
    newcomer = next(b for b in range(len(fresh.pool)) if b not in fresh.members[kdt])
    fresh.members[kdt][newcomer] = time.time() - 5
    again, _ = walk(connector, "customers", cursor)
    assert fresh.yz_open_id(newcomer) in {r.external_id for r in again}
    assert len(again) <= 3


def test_customers_past_page_100_move_the_upper_bound_down(
    shop: YouzanSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugin, "MAX_PAGE_NO", 2)
    records, _ = walk(connector_for(shop), "customers")
    kdt = int(shop.credentials()["kdt_id"])
    assert {r.external_id for r in records} == {shop.yz_open_id(b) for b in shop.members[kdt]}


def test_users_info_query_looks_up_by_priority(fresh: YouzanSandbox) -> None:
    access = token(fresh)["data"]["access_token"]
    kdt = int(fresh.credentials()["kdt_id"])
    buyer, other = list(fresh.members[kdt])[:2]
    path = "/api/youzan.users.info.query/1.0.1"
    both = {"yz_open_id": fresh.yz_open_id(buyer), "mobile": fresh.pool[other].phone}
    assert api(fresh, path, access, both)["data"]["user_list"][0]["yz_open_id"] == fresh.yz_open_id(
        buyer
    )
    by_mobile = {"mobile": f"+86-{fresh.pool[other].phone}"}
    assert api(fresh, path, access, by_mobile)["data"]["user_list"][0][
        "yz_open_id"
    ] == fresh.yz_open_id(other)


# --- decryption --------------------------------------------------------------------------------


def test_decrypt_batch_returns_clear_values_for_the_same_shop_only(fresh: YouzanSandbox) -> None:
    connector = connector_for(fresh)
    records, _ = walk(connector, "orders")
    record = records[0]
    handles = record.buyer.platform_ciphertexts
    clear = connector.decrypt(list(handles.values()), scene="customer_service")
    person = fresh.buyer_of(record.order.order_id)
    assert clear[handles["phone"]] == person.phone and clear[handles["name"]] == person.name
    _, ciphertext = parse_handle(handles["phone"])
    other_shop = token(fresh, grant_id=str(fresh.shops[1].kdt_id))["data"]["access_token"]
    path = "/api/youzan.cloud.secret.decrypt.batch/1.0.0"
    assert api(fresh, path, other_shop, {"sources": [ciphertext]})["success"] is False
    mine = token(fresh)["data"]["access_token"]
    empty = api(fresh, path, mine, {"sources": [ciphertext, ""]})
    assert empty["success"] is False and empty["code"] == 10500
    assert api(fresh, path, mine, {"sources": ["x"] * 10_001})["success"] is False
    with pytest.raises(ValueError, match="another shop"):
        connector.decrypt([f"{fresh.shops[1].kdt_id}:{ciphertext}"], scene="shipping")


# --- plugin and CLI ------------------------------------------------------------------------------


def test_registered_through_the_entry_point_with_its_sandbox() -> None:
    cls, name = connector_classes()["youzan"]
    assert cls is YouzanConnector and name == "youzan"
    assert cls.sandbox == "connectors.youzan.sandbox:YouzanSandbox"


def test_vault_sandbox_prints_one_json_line_with_url_and_credentials() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "vault.cli", "sandbox", "youzan", "--port", "0", "--seed", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        assert announced["sandbox"] == "youzan" and announced["base_url"].startswith(
            "http://127.0.0.1:"
        )
        connector = YouzanConnector(
            {**announced["credentials"], "base_url": announced["base_url"], "history_days": "1"}
        )
        assert connector.fetch("customers", None).records
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_errors_never_carry_a_token_a_secret_or_a_ciphertext(fresh: YouzanSandbox) -> None:
    connector = connector_for(fresh)
    record = walk(connector, "orders")[0][0]
    _, ciphertext = parse_handle(record.buyer.platform_ciphertexts["phone"])
    errors: list[Exception] = []
    with pytest.raises(PlatformAuthFailed) as refused:
        connector_for(fresh, client_secret="wrong").fetch("orders", None)
    errors.append(refused.value)
    fresh.expire_tokens()
    fresh.token_ttl = 0
    with pytest.raises(PlatformAuthFailed) as expired:
        connector.fetch("orders", None)
    errors.append(expired.value)
    for error in errors:
        text = f"{error} {error!r}"
        for secret in (fresh.client_secret, str(connector.client.access_token), ciphertext):
            assert secret not in text
        assert fresh.buyer_of(record.order.order_id).phone not in text
