"""The Pinduoduo connector and its sandbox over real HTTP: signing, tokens, windows, paging,
envelopes mapped to error kinds, masked and encrypted receiver fields, batch decrypt."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.pinduoduo.client import PddClient, Token, sign
from connectors.pinduoduo.plugin import (
    LAG,
    MAX_WINDOW,
    PinduoduoConnector,
    fen,
    parse_handle,
)
from connectors.pinduoduo.sandbox import PinduoduoSandbox
from vault.errors import (
    PlatformAuthFailed,
    PlatformProtocolError,
    PlatformQuotaExhausted,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from vault.plugins import connector_classes
from vault.sync import ExternalOrder

VECTOR_SECRET = "3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e"
VECTOR_COMMON = {
    "client_id": "4b6f8a1e2c3d4e5f",
    "access_token": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "timestamp": "1763776800",
    "data_type": "JSON",
}
INCREMENT = "pdd.order.number.list.increment.get"


def walk(connector: PinduoduoConnector, cursor: Any = None) -> tuple[list[ExternalOrder], Any]:
    """Fetch pages until the stream is caught up, as the sync engine does."""
    records: list[ExternalOrder] = []
    while True:
        page = connector.fetch("orders", cursor)
        records.extend(r for r in page.records if isinstance(r, ExternalOrder))
        cursor = page.cursor
        if not page.more:
            return records, cursor


def connector_for(sandbox: PinduoduoSandbox, **settings: str) -> PinduoduoConnector:
    return PinduoduoConnector(
        {**sandbox.credentials(), "base_url": sandbox.url, "history_days": "3", **settings}
    )


def raw_call(sandbox: PinduoduoSandbox, params: dict[str, str], secret: str | None = None) -> Any:
    """A hand-made router call, signed with ``secret`` (the sandbox's by default)."""
    full = {
        "client_id": sandbox.client_id,
        "access_token": sandbox.credentials()["access_token"],
        "timestamp": str(int(time.time())),
        "data_type": "JSON",
        **params,
    }
    full["sign"] = sign(full, secret or sandbox.client_secret)
    answer = httpx.post(f"{sandbox.url}/api/router", data=full)
    assert answer.status_code == 200, "the platform answers HTTP 200, errors in the body"
    return answer.json()


@pytest.fixture(scope="module")
def shop() -> Iterator[PinduoduoSandbox]:
    """A read-only shop: 1,500 orders over two days."""
    with PinduoduoSandbox(seed=11, records=1500, span_days=2) as sandbox:
        assert isinstance(sandbox, PinduoduoSandbox)
        yield sandbox


@pytest.fixture(scope="module")
def walked(shop: PinduoduoSandbox) -> list[ExternalOrder]:
    """Every order of ``shop``, walked once from the beginning."""
    return walk(connector_for(shop))[0]


@pytest.fixture
def fresh() -> Iterator[PinduoduoSandbox]:
    with PinduoduoSandbox(seed=12, records=400, span_days=1, decrypt_interval=0.3) as sandbox:
        assert isinstance(sandbox, PinduoduoSandbox)
        yield sandbox


# --- signature ---------------------------------------------------------------------------------


def test_signature_matches_the_platforms_vectors() -> None:
    increment = {
        **VECTOR_COMMON,
        "type": INCREMENT,
        "start_updated_at": "1763773200",
        "end_updated_at": "1763775000",
        "page": "1",
        "page_size": "100",
        "order_status": "5",
        "refund_status": "5",
        "is_lucky_flag": "0",
        "use_has_next": "true",
    }
    assert sign(increment, VECTOR_SECRET) == "694B14B1CDF62371E948049C2DD4117F"
    decrypt = {
        **VECTOR_COMMON,
        "type": "pdd.open.decrypt.batch",
        "data_list": '[{"data_tag":"240318-422796379670125","encrypted_data":'
        '"~AgAAAAKj5K0FdThr3gCXEjX7VukfDJ4VXsxKOdZIGJk=~e3T2WeW7~0~~"}]',
    }
    assert sign(decrypt, VECTOR_SECRET) == "54ED8B596E043282D5D75E4C996C00C9"


def test_signature_leaves_out_empty_parameters_and_the_sign_itself() -> None:
    params = {**VECTOR_COMMON, "type": INCREMENT}
    assert sign({**params, "remark": "", "sign": "X"}, "s") == sign(params, "s")
    assert sign(params, "s") != sign({**params, "page": "2"}, "s")


def test_client_sends_lists_as_the_compact_json_it_signs(fresh: PinduoduoSandbox) -> None:
    client = PddClient(
        base_url=fresh.url,
        client_id=fresh.client_id,
        client_secret=fresh.client_secret,
        token=Token(fresh.credentials()["access_token"], None, None),
    )
    params = client.signed_params("pdd.open.decrypt.batch", {"data_list": [{"data_tag": "x"}]})
    assert params["data_list"] == '[{"data_tag":"x"}]'
    assert params["sign"] == sign(params, fresh.client_secret)
    assert {"type", "client_id", "access_token", "timestamp", "data_type"} <= set(params)


# --- refusals exactly as the platform makes them -----------------------------------------------


def test_wrong_signature_is_refused_with_the_platforms_error(shop: PinduoduoSandbox) -> None:
    answer = raw_call(shop, {"type": INCREMENT}, secret="not-the-secret")
    assert answer["error_response"]["error_code"] == shop.sign_error_code
    assert "order_sn_increment_get_response" not in answer


def test_connector_with_a_wrong_secret_fails_authentication_without_retrying(
    shop: PinduoduoSandbox,
) -> None:
    connector = connector_for(shop, client_secret="0" * 40)
    before = len(shop.api_log)
    with pytest.raises(PlatformAuthFailed, match="signature"):
        connector.fetch("orders", None)
    assert len(shop.api_log) == before + 1


def test_sandbox_merges_query_and_body_and_defaults_data_type_to_json(
    shop: PinduoduoSandbox,
) -> None:
    now = int(time.time())
    params = {
        "type": INCREMENT,
        "client_id": shop.client_id,
        "access_token": shop.credentials()["access_token"],
        "timestamp": str(now),
        "start_updated_at": str(now - 3600),
        "end_updated_at": str(now - 1800),
    }
    params["sign"] = sign(params, shop.client_secret)
    system = {k: params[k] for k in ("type", "client_id", "access_token", "timestamp", "sign")}
    business = {k: v for k, v in params.items() if k not in system}
    answer = httpx.post(f"{shop.url}/api/router", params=system, data=business).json()
    assert "order_sn_increment_get_response" in answer


def test_the_request_an_off_the_shelf_sdk_sends_is_served(shop: PinduoduoSandbox) -> None:
    """PyPI ``pddsdk`` 0.1.15 (``Client(client_id, client_secret, url=...)``) posts form data
    with ``client_id``, a millisecond ``timestamp``, ``type`` and the business parameters, no
    ``data_type``, signed md5 upper over every parameter; this is that request, made by hand."""
    now = time.time()
    params = {
        "client_id": shop.client_id,
        "timestamp": str(int(now * 1000)),
        "type": INCREMENT,
        "access_token": shop.credentials()["access_token"],
        "start_updated_at": str(int(now) - 3600),
        "end_updated_at": str(int(now) - 1800),
    }
    params["sign"] = sign(params, shop.client_secret)
    answer = httpx.post(f"{shop.url}/api/router", data=params)
    assert answer.status_code == 200
    assert "total_count" in answer.json()["order_sn_increment_get_response"]


def test_stale_timestamp_is_refused(shop: PinduoduoSandbox) -> None:
    answer = raw_call(shop, {"type": INCREMENT, "timestamp": str(int(time.time()) - 601)})
    assert answer["error_response"]["error_code"] == 10000


def test_window_longer_than_30_minutes_is_refused(shop: PinduoduoSandbox) -> None:
    now = int(time.time())
    too_long = {"start_updated_at": str(now - 4000), "end_updated_at": str(now - 4000 + 1801)}
    answer = raw_call(shop, {"type": INCREMENT, **too_long})
    assert answer["error_response"]["error_code"] == 10000
    exact = {"start_updated_at": str(now - 4000), "end_updated_at": str(now - 4000 + 1800)}
    assert "order_sn_increment_get_response" in raw_call(shop, {"type": INCREMENT, **exact})


def test_page_size_over_100_is_refused(shop: PinduoduoSandbox) -> None:
    now = int(time.time())
    window = {"start_updated_at": str(now - 3000), "end_updated_at": str(now - 1500)}
    answer = raw_call(shop, {"type": INCREMENT, **window, "page_size": "101"})
    assert answer["error_response"]["error_code"] == 10000


def test_connector_never_sends_a_window_longer_than_allowed_nor_too_recent(
    shop: PinduoduoSandbox,
) -> None:
    before, refused = len(shop.api_log), len(shop.refused)
    started = int(time.time())
    records, _ = walk(connector_for(shop))
    sent = [p for p in shop.api_log[before:] if p["type"] == INCREMENT]
    assert len(sent) > 2 * 24 * 2  # two days walked in 30-minute windows
    for params in sent:
        span = int(params["end_updated_at"]) - int(params["start_updated_at"])
        assert 0 < span <= MAX_WINDOW
        assert int(params["end_updated_at"]) <= int(time.time()) - LAG
        assert int(params["page_size"]) <= 100
    assert shop.refused[refused:] == []
    assert int(sent[-1]["end_updated_at"]) >= started - LAG - 5
    assert {r.order.order_id for r in records} == set(shop.orders)


def test_expired_access_token_is_refused_with_10019(fresh: PinduoduoSandbox) -> None:
    fresh.expire_tokens()
    answer = raw_call(fresh, {"type": INCREMENT})
    assert answer["error_response"]["error_code"] == 10019


def test_connector_refreshes_an_expired_token_once_and_goes_on(fresh: PinduoduoSandbox) -> None:
    connector = connector_for(fresh)
    page = connector.fetch("orders", None)
    fresh.faults.inject("token_expired")
    records, _ = walk(connector, page.cursor)
    assert connector.client.refreshes == 1
    assert connector.client.token.access_token != fresh.credentials()["access_token"]
    assert ("pdd.order.number.list.increment.get", 10019) in fresh.refused
    assert records


def test_connector_refreshes_before_expiry_when_the_platform_named_it() -> None:
    with PinduoduoSandbox(seed=13, records=50, span_days=1, access_ttl=30) as sandbox:
        assert isinstance(sandbox, PinduoduoSandbox)
        connector = connector_for(sandbox)
        connector.client.refresh()
        walk(connector)
        assert connector.client.refreshes >= 2  # 30 s of life is inside the 60 s margin
        assert not [r for r in sandbox.refused if r[1] == 10019]


def test_refused_refresh_is_an_authentication_failure(fresh: PinduoduoSandbox) -> None:
    connector = connector_for(fresh, refresh_token="unknown")
    fresh.expire_tokens()
    with pytest.raises(PlatformAuthFailed):
        connector.fetch("orders", None)
    without = connector_for(fresh, refresh_token="")
    with pytest.raises(PlatformAuthFailed, match="no refresh token"):
        without.fetch("orders", None)


def test_token_create_through_the_gateway(fresh: PinduoduoSandbox) -> None:
    client = PddClient(
        base_url=fresh.url,
        client_id=fresh.client_id,
        client_secret=fresh.client_secret,
        token=Token("", None, None),
    )
    token = client.create_token(fresh.credentials()["auth_code"])
    assert token.access_token and token.refresh_token and token.expires_at
    params = client.signed_params("pdd.pop.auth.token.create", {"code": "x"})
    assert "access_token" not in params
    with pytest.raises(PlatformRejected):
        client.create_token("not-a-code")


# --- error mapping -------------------------------------------------------------------------------


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
    fresh: PinduoduoSandbox, fault: str, error: type[Exception]
) -> None:
    connector = connector_for(fresh)
    fresh.faults.inject(fault)
    with pytest.raises(error):
        connector.fetch("orders", None)
    assert connector.fetch("orders", None).records is not None  # the next call goes through


def test_rate_limit_fault_is_the_platforms_error_response(fresh: PinduoduoSandbox) -> None:
    fresh.faults.inject("rate_limit")
    answer = raw_call(fresh, {"type": INCREMENT})
    assert answer["error_response"]["error_code"] == fresh.throttle_code


def test_per_api_limiter_answers_the_throttle_code() -> None:
    limits = {INCREMENT: (3, 60.0)}
    with PinduoduoSandbox(seed=14, records=50, span_days=1, rate_limits=limits) as sandbox:
        assert isinstance(sandbox, PinduoduoSandbox)
        connector = connector_for(sandbox)
        with pytest.raises(PlatformRateLimited) as caught:
            walk(connector)
        assert caught.value.code == str(sandbox.throttle_code)


def test_timeout_maps_to_unavailable(fresh: PinduoduoSandbox) -> None:
    client = PddClient(
        base_url=fresh.url,
        client_id=fresh.client_id,
        client_secret=fresh.client_secret,
        token=Token(fresh.credentials()["access_token"], None, None),
        timeout=0.3,
    )
    fresh.faults.inject("timeout", seconds=1.0)
    with pytest.raises(PlatformUnavailable, match="timed out"):
        client.call("pdd.order.information.get", {"order_sn": "x"})


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"error_response": {"error_code": 10000, "error_msg": "x"}}, PlatformRejected),
        ({"error_response": {"error_code": "10019"}}, PlatformProtocolError),
        ({"error_response": {"error_code": 70032, "error_msg": "cap"}}, PlatformQuotaExhausted),
        ({"something_else": {}}, PlatformProtocolError),
        ([1, 2], PlatformProtocolError),
    ],
)
def test_envelopes_map_to_error_kinds(body: Any, error: type[Exception]) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    client = PddClient(
        base_url="http://127.0.0.1:9",
        client_id="c",
        client_secret="s",
        token=Token("t", None, None),
        http=httpx.Client(transport=transport),
    )
    with pytest.raises(error):
        client.call(INCREMENT, {})


def test_http_429_carries_retry_after() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(429, headers={"Retry-After": "7"}, text="")
    )
    client = PddClient(
        base_url="http://127.0.0.1:9",
        client_id="c",
        client_secret="s",
        token=Token("t", None, None),
        http=httpx.Client(transport=transport),
    )
    with pytest.raises(PlatformRateLimited) as caught:
        client.call(INCREMENT, {})
    assert caught.value.retry_after == 7.0


# --- paging and the walk -------------------------------------------------------------------------


def test_pages_of_a_window_are_fetched_from_the_last_to_the_first() -> None:
    with PinduoduoSandbox(seed=15, records=900, span_days=0.05) as sandbox:
        assert isinstance(sandbox, PinduoduoSandbox)
        records, _ = walk(connector_for(sandbox, history_days="0.06"))
        sent = [p for p in sandbox.api_log if p["type"] == INCREMENT]
        windows: dict[tuple[str, str], list[int]] = {}
        for params in sent:
            key = (params["start_updated_at"], params["end_updated_at"])
            windows.setdefault(key, []).append(int(params["page"]))
        multi = [pages for pages in windows.values() if len(pages) > 1]
        assert multi, "some window holds more than one page"
        for pages in multi:
            last = max(pages)
            assert pages == [1, *range(last, 0, -1)]
        assert sorted(r.order.order_id for r in records) == sorted(sandbox.orders)


def test_status_changes_come_back_in_the_next_incremental_walk(fresh: PinduoduoSandbox) -> None:
    connector = connector_for(fresh)
    first, cursor = walk(connector)
    assert len({r.order.order_id for r in first}) == len(fresh.orders) == len(first)
    changed = fresh.change_statuses(25)
    second, cursor = walk(connector, cursor)
    by_id = {r.order.order_id: r.order for r in second}
    assert set(changed) <= set(by_id)
    for order_sn in changed:
        platform = fresh.orders[order_sn]
        assert by_id[order_sn].status == connector_status(
            platform.order_status, platform.refund_status
        )


def connector_status(order_status: int, refund_status: int) -> str:
    from connectors.pinduoduo.plugin import order_status as status

    return status(order_status, refund_status)


def test_a_killed_walk_resumes_from_its_saved_cursor(shop: PinduoduoSandbox) -> None:
    connector = connector_for(shop)
    cursor: Any = None
    seen: list[str] = []
    for _ in range(7):
        page = connector.fetch("orders", cursor)
        seen.extend(r.order.order_id for r in page.records if isinstance(r, ExternalOrder))
        cursor = page.cursor
    resumed = connector_for(shop)  # a new process: only the saved cursor survives
    rest, _ = walk(resumed, json.loads(json.dumps(cursor)))
    assert set(seen) | {r.order.order_id for r in rest} == set(shop.orders)


def test_list_entries_without_items_are_completed_with_order_detail() -> None:
    with PinduoduoSandbox(seed=16, records=60, span_days=1, slim_list=True) as sandbox:
        assert isinstance(sandbox, PinduoduoSandbox)
        records, _ = walk(connector_for(sandbox))
        details = [p for p in sandbox.api_log if p["type"] == "pdd.order.information.get"]
        assert len(details) == len(sandbox.orders) == len(records)
        assert all(r.order.items for r in records)


# --- the records: amounts, masks, ciphertexts ---------------------------------------------


def test_amounts_become_integer_fen_exactly() -> None:
    assert fen(12.9, field="x") == 1290
    assert fen(0.07, field="x") == 7
    assert fen(129, field="x") == 12900
    with pytest.raises(PlatformProtocolError):
        fen(1.005, field="x")
    with pytest.raises(PlatformProtocolError):
        fen(True, field="x")


def test_orders_carry_items_amounts_times_and_shop(
    shop: PinduoduoSandbox, walked: list[ExternalOrder]
) -> None:
    records = walked
    for record in records[:200]:
        order = record.order
        platform = shop.orders[order.order_id]
        goods = sum(count * price for _, _, count, price in platform.items)
        assert order.total_amount == goods - platform.discount + platform.postage
        assert order.shop == shop.credentials()["mall_id"] and order.currency == "CNY"
        assert [i.quantity for i in order.items] == [c for _, _, c, _ in platform.items]
        assert abs(order.updated_at.timestamp() - platform.updated) < 1
        assert order.created_at.utcoffset() is not None
    assert {"paid", "shipped", "completed", "refunded"} <= {r.order.status for r in records}


def test_receiver_ciphertexts_only_for_to_ship_orders_masks_always(
    shop: PinduoduoSandbox, walked: list[ExternalOrder]
) -> None:
    records = walked
    encrypted = 0
    for record in records:
        platform = shop.orders[record.order.order_id]
        person = shop.buyer_of(record.order.order_id)
        buyer = record.buyer
        assert set(buyer.fields) == {"name", "phone", "address"}
        assert all("*" in value for value in buyer.fields.values())
        assert person.phone not in repr(record) and person.name not in repr(record)
        if platform.order_status == 1 and not platform.risk:
            encrypted += 1
            assert set(buyer.platform_ciphertexts) == {"name", "phone", "address"}
            for value in buyer.platform_ciphertexts.values():
                order_sn, ciphertext = parse_handle(value)
                assert order_sn == record.order.order_id
                assert ciphertext in platform.ciphertexts.values()
            assert [p for p, _ in buyer.identities] == ["pinduoduo"]
        else:
            assert not buyer.platform_ciphertexts and not buyer.identities
        assert buyer.external_id == f"order:{record.order.order_id}"
    assert encrypted > 100


def test_ciphertexts_follow_the_platforms_grammar(shop: PinduoduoSandbox) -> None:
    order = next(o for o in shop.orders.values() if o.ciphertexts)
    phone = order.ciphertexts["phone"].split("$")
    assert phone[0] == "" and phone[3] == "0" and phone[4:] == ["", ""]
    name = order.ciphertexts["name"].split("~")
    assert name[0] == "" and len(name[2]) == 8 and name[3] == "0" and name[4:] == ["", ""]


def test_one_persons_to_ship_orders_share_one_phone_identity(
    shop: PinduoduoSandbox, walked: list[ExternalOrder]
) -> None:
    records = walked
    by_identity: dict[str, set[str]] = {}
    for record in records:
        for _, identity in record.buyer.identities:
            phone = shop.buyer_of(record.order.order_id).phone
            by_identity.setdefault(identity, set()).add(phone)
    assert by_identity and all(len(phones) == 1 for phones in by_identity.values())


# --- decryption --------------------------------------------------------------------------------


def test_decrypt_batch_returns_the_clear_values_of_the_handles(fresh: PinduoduoSandbox) -> None:
    connector = connector_for(fresh, decrypt_interval="0.3")
    records, _ = walk(connector)
    record = next(r for r in records if r.buyer.platform_ciphertexts)
    handles = record.buyer.platform_ciphertexts
    clear = connector.decrypt(list(handles.values()), scene="shipping")
    person = fresh.buyer_of(record.order.order_id)
    assert clear[handles["phone"]] == person.phone
    assert clear[handles["name"]] == person.name
    assert clear[handles["address"]] == person.address
    # a second call straight away waits for the out-of-cloud limiter instead of being refused
    connector.decrypt([handles["phone"]], scene="after_sales")
    assert not [r for r in fresh.refused if r[0] == "pdd.open.decrypt.batch"]
    with pytest.raises(ValueError, match="scene"):
        connector.decrypt([handles["phone"]], scene="marketing")


def test_decrypt_limiter_daily_cap_and_data_tag_are_enforced(fresh: PinduoduoSandbox) -> None:
    order = next(o for o in fresh.orders.values() if o.ciphertexts)
    other = next(o for o in fresh.orders.values() if o.ciphertexts and o is not order)
    item = {"data_tag": order.order_sn, "encrypted_data": order.ciphertexts["phone"]}
    first = raw_call(fresh, {"type": "pdd.open.decrypt.batch", "data_list": json.dumps([item])})
    assert first["open_decrypt_batch_response"]["data_decrypt_list"][0]["data_type"] == 6
    again = raw_call(fresh, {"type": "pdd.open.decrypt.batch", "data_list": json.dumps([item])})
    assert again["error_response"]["error_code"] == fresh.throttle_code
    time.sleep(0.35)
    wrong = {**item, "data_tag": other.order_sn}
    refused = raw_call(fresh, {"type": "pdd.open.decrypt.batch", "data_list": json.dumps([wrong])})
    assert refused["error_response"]["error_code"] == 10000
    too_many = json.dumps([item] * 101)
    assert "error_response" in raw_call(
        fresh, {"type": "pdd.open.decrypt.batch", "data_list": too_many}
    )
    fresh.decrypt_daily_cap = len(fresh.decrypt_calls)
    time.sleep(0.35)
    connector = connector_for(fresh, decrypt_interval="0.3")
    with pytest.raises(PlatformQuotaExhausted):
        connector.decrypt([f"{order.order_sn}:{order.ciphertexts['phone']}"], scene="shipping")


def test_decrypt_mask_batch_answers_masked_values(fresh: PinduoduoSandbox) -> None:
    order = next(o for o in fresh.orders.values() if o.ciphertexts)
    item = {"data_tag": order.order_sn, "encrypted_data": order.ciphertexts["phone"]}
    answer = raw_call(
        fresh, {"type": "pdd.open.decrypt.mask.batch", "data_list": json.dumps([item])}
    )
    masked = answer["open_decrypt_mask_batch_response"]["data_decrypt_list"][0]["decrypted_data"]
    assert "*" in masked and masked != fresh.pool[order.buyer].phone


# --- plugin and CLI ------------------------------------------------------------------------------


def test_registered_through_the_entry_point_with_its_sandbox() -> None:
    cls, plugin = connector_classes()["pinduoduo"]
    assert cls is PinduoduoConnector and plugin == "pinduoduo"
    assert cls.sandbox == "connectors.pinduoduo.sandbox:PinduoduoSandbox"


def test_vault_sandbox_prints_one_json_line_with_url_and_credentials() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "vault.cli", "sandbox", "pinduoduo", "--port", "0", "--seed", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        assert announced["sandbox"] == "pinduoduo"
        assert announced["base_url"].startswith("http://127.0.0.1:")
        credentials = announced["credentials"]
        assert {"client_id", "client_secret", "access_token", "mall_id"} <= set(credentials)
        connector = PinduoduoConnector(
            {**credentials, "base_url": announced["base_url"], "history_days": "1"}
        )
        assert connector.fetch("orders", None).cursor
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_errors_never_carry_a_token_a_secret_or_a_receiver_value(fresh: PinduoduoSandbox) -> None:
    credentials = fresh.credentials()
    order = next(o for o in fresh.orders.values() if o.ciphertexts)
    person = fresh.pool[order.buyer]
    errors: list[Exception] = []
    for settings in ({"client_secret": "f" * 40}, {"refresh_token": "", "access_token": "x"}):
        with pytest.raises(PlatformAuthFailed) as caught:
            connector_for(fresh, **settings).fetch("orders", None)
        errors.append(caught.value)
    other = next(sn for sn in fresh.orders if sn != order.order_sn)
    wrong_tag = f"{other}:{order.ciphertexts['phone']}"
    with pytest.raises(PlatformRejected) as rejected:
        connector_for(fresh, decrypt_interval="0.3").decrypt([wrong_tag], scene="shipping")
    errors.append(rejected.value)
    for error in errors:
        text = f"{error} {error!r}"
        for secret in (
            credentials["client_secret"],
            credentials["access_token"],
            credentials["refresh_token"],
            order.ciphertexts["phone"],
            person.phone,
            person.name,
        ):
            assert secret not in text


def test_status_filters_and_has_next(shop: PinduoduoSandbox) -> None:
    now = int(time.time())
    order = max(shop.orders.values(), key=lambda o: o.updated if o.updated < now - 600 else 0)
    window = {
        "start_updated_at": str(int(order.updated) - 1700),
        "end_updated_at": str(int(order.updated) + 100),
    }
    every = raw_call(shop, {"type": INCREMENT, **window, "page_size": "5", "use_has_next": "true"})
    answer = every["order_sn_increment_get_response"]
    assert answer["total_count"] >= 1 and answer["has_next"] == (answer["total_count"] > 5)
    to_ship = raw_call(shop, {"type": INCREMENT, **window, "order_status": "1"})
    listed = to_ship["order_sn_increment_get_response"]["order_sn_list"]
    assert all(entry["order_status"] == 1 for entry in listed)


def test_order_list_by_deal_time_allows_24_hours(shop: PinduoduoSandbox) -> None:
    now = int(time.time())
    day = {"start_confirm_at": str(now - 86400), "end_confirm_at": str(now)}
    answer = raw_call(shop, {"type": "pdd.order.list.get", **day})["order_list_get_response"]
    confirms = [entry["confirm_time"] for entry in answer["order_list"]]
    assert answer["total_count"] > 0 and confirms == sorted(confirms)
    longer = {"start_confirm_at": str(now - 86401), "end_confirm_at": str(now)}
    refused = raw_call(shop, {"type": "pdd.order.list.get", **longer})
    assert refused["error_response"]["error_code"] == 10000


def test_orders_updated_in_the_last_three_minutes_are_hidden(fresh: PinduoduoSandbox) -> None:
    changed = fresh.change_statuses(3, at=time.time() - 60)
    now = int(time.time())
    window = {"start_updated_at": str(now - 1800), "end_updated_at": str(now)}

    def listed() -> set[str]:
        answer = raw_call(fresh, {"type": INCREMENT, **window})
        return {e["order_sn"] for e in answer["order_sn_increment_get_response"]["order_sn_list"]}

    assert not set(changed) & listed()
    fresh.hide_recent = False
    assert set(changed) <= listed()
