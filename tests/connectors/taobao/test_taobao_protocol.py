"""The TOP wire protocol, on both sides: the connector's signing and error map, and the sandbox
refusing what the platform refuses, with the platform's own envelopes (protocol note §3-§6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from taobao_helpers import settings_for

from connectors.taobao.client import (
    TopClient,
    format_time,
    map_error,
    parse_time,
    response_key,
    sign,
    sign_string,
    yuan_to_fen,
)
from connectors.taobao.connector import TaobaoConnector
from connectors.taobao.sandbox import TaobaoSandbox
from vault.errors import (
    PlatformAuthFailed,
    PlatformProtocolError,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)

VECTOR_PARAMS = {
    "method": "taobao.trades.sold.increment.get",
    "app_key": "12345678",
    "session": "6100e23657fb0b2d0c78568e55a3031134be9a3a5d4b3a365753805",
    "timestamp": "2026-11-22 10:00:00",
    "format": "json",
    "v": "2.0",
    "sign_method": "md5",
    "fields": "tid,status,modified,buyer_open_uid,oaid",
    "start_modified": "2026-11-22 09:00:00",
    "end_modified": "2026-11-22 09:30:00",
    "page_no": "1",
    "page_size": "40",
    "use_has_next": "true",
}
VECTOR_SECRET = "0123456789abcdef0123456789abcdef"


# --- signature vectors (§3) -------------------------------------------------------------------


def test_sign_string_sorts_names_and_concatenates_without_separators() -> None:
    params = {"foo": "1", "bar": "2", "foo_bar": "3", "foobar": "4", "sign": "X", "empty": ""}
    assert sign_string(params) == "bar2foo1foo_bar3foobar4"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("md5", "4B4AC0F2D69BA521FFDE55A2BBEE3025"),
        ("hmac", "26C775E5D0EB124C248184BFA79CA514"),
        ("hmac-sha256", "1C52CEB1EDD0E67254A35412A976973A383608B65620DDEB0D2469F8370F3ADE"),
    ],
)
def test_simple_vector_signs_as_the_platform(method: str, expected: str) -> None:
    assert (
        sign({"foo": "1", "bar": "2", "foo_bar": "3", "foobar": "4"}, "secret", method) == expected
    )


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("md5", "408E301ACCDA15D2EFEA83B5D3615FFB"),
        ("hmac", "C72938DFF9F762F568E092994C37D734"),
        ("hmac-sha256", "7AA7AB4E28BB8F39C1B4C00D048C4793073A739CC281D5BD9BAEAAD589FF1B0B"),
    ],
)
def test_increment_get_vector_signs_as_the_platform(method: str, expected: str) -> None:
    assert sign({**VECTOR_PARAMS, "sign_method": method}, VECTOR_SECRET, method) == expected


def test_client_signs_with_china_time_and_the_system_parameters() -> None:
    moment = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    client = TopClient(
        base_url="http://127.0.0.1:9",
        app_key="12345678",
        secret=VECTOR_SECRET,
        sign_method="md5",
        clock=lambda: moment,
    )
    business = {k: VECTOR_PARAMS[k] for k in ("fields", "start_modified", "end_modified")}
    business |= {"page_no": "1", "page_size": "40", "use_has_next": "true"}
    signed = client.signed(
        "taobao.trades.sold.increment.get", business, session=VECTOR_PARAMS["session"]
    )
    client.close()
    assert signed["timestamp"] == "2026-11-22 10:00:00"
    assert signed["sign"] == "408E301ACCDA15D2EFEA83B5D3615FFB"


def test_times_and_money_convert_as_the_platform_writes_them() -> None:
    assert format_time(datetime(2026, 12, 31, 16, 30, tzinfo=UTC)) == "2027-01-01 00:30:00"
    assert parse_time("2027-01-01 00:30:00") == datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
    assert [yuan_to_fen(v) for v in ("200.07", "0.5", "12", "", None)] == [20007, 50, 1200, 0, 0]
    with pytest.raises(ValueError):
        yuan_to_fen("1.234")
    assert response_key("taobao.trade.fullinfo.get") == "trade_fullinfo_get_response"


# --- the sandbox refuses what the platform refuses --------------------------------------------


def raw_call(
    sandbox: TaobaoSandbox,
    method: str,
    params: dict[str, str] | None = None,
    *,
    session: str | None = None,
    sign_method: str = "hmac-sha256",
    tamper: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    when: datetime | None = None,
) -> dict[str, Any]:
    client = TopClient(
        base_url=sandbox.url,
        app_key=sandbox.app_key,
        secret=sandbox.secret,
        sign_method=sign_method,
        clock=(lambda: when) if when else None,
    )
    form = client.signed(method, params or {}, session=session or sandbox.shops[0].session)
    client.close()
    form.update(tamper or {})
    for name in drop:
        form.pop(name, None)
    answer = httpx.post(f"{sandbox.url}/router/rest", data=form)
    assert answer.status_code == 200  # TOP answers 200, error or not
    body = answer.json()
    assert isinstance(body, dict)
    return body


def error_of(body: dict[str, Any]) -> tuple[int, str | None]:
    error = body["error_response"]
    assert isinstance(error["request_id"], str) and error["request_id"]
    return error["code"], error.get("sub_code")


@pytest.mark.parametrize("sign_method", ["md5", "hmac", "hmac-sha256"])
def test_sandbox_verifies_every_sign_method(taobao: TaobaoSandbox, sign_method: str) -> None:
    body = raw_call(taobao, "taobao.user.seller.get", {"fields": "nick"}, sign_method=sign_method)
    assert body["user_seller_get_response"]["user"]["nick"] == taobao.shops[0].nick


def test_wrong_signature_is_refused_with_code_25(taobao: TaobaoSandbox) -> None:
    body = raw_call(taobao, "taobao.user.seller.get", {"fields": "nick"}, tamper={"fields": "x"})
    assert error_of(body) == (25, None)
    assert body["error_response"]["msg"] == "Invalid Signature"
    assert error_of(raw_call(taobao, "taobao.time.get", drop=("sign",))) == (24, None)


def test_query_and_body_are_merged_before_the_signature_is_checked(taobao: TaobaoSandbox) -> None:
    client = TopClient(base_url=taobao.url, app_key=taobao.app_key, secret=taobao.secret)
    form = client.signed(
        "taobao.user.seller.get", {"fields": "nick"}, session=taobao.shops[1].session
    )
    client.close()
    system = {
        k: form.pop(k)
        for k in ("method", "app_key", "timestamp", "sign", "v", "format", "sign_method", "session")
    }
    answer = httpx.post(f"{taobao.url}/router/rest", params=system, data=form).json()
    assert answer["user_seller_get_response"]["user"]["nick"] == taobao.shops[1].nick


def test_epoch_millisecond_timestamps_pass_and_skew_over_ten_minutes_is_code_31(
    taobao: TaobaoSandbox,
) -> None:
    millis = str(int(datetime.now(UTC).timestamp() * 1000))
    client = TopClient(base_url=taobao.url, app_key=taobao.app_key, secret=taobao.secret)
    form = client.signed("taobao.time.get", {}, session=None)
    form["timestamp"] = millis
    form["sign"] = sign(form, taobao.secret, "hmac-sha256")
    client.close()
    assert "time_get_response" in httpx.post(f"{taobao.url}/router/rest", data=form).json()
    late = datetime.now(UTC) - timedelta(minutes=11)
    assert error_of(raw_call(taobao, "taobao.time.get", when=late))[0] == 31


@pytest.mark.parametrize(
    ("tamper", "drop", "code"),
    [
        ({}, ("method",), 21),
        ({"method": "taobao.no.such.api"}, (), 22),
        ({"format": "yaml"}, (), 23),
        ({}, ("app_key",), 28),
        ({"app_key": "99999999"}, (), 29),
        ({}, ("timestamp",), 30),
        ({"timestamp": "yesterday"}, (), 31),
        ({}, ("v",), 32),
        ({"v": "3.0"}, (), 33),
        ({"v": "1.0"}, (), 34),
        ({}, ("session",), 26),
        ({"session": "6100deadbeef"}, (), 27),
    ],
)
def test_each_validation_error_has_the_platforms_code(
    taobao: TaobaoSandbox, tamper: dict[str, str], drop: tuple[str, ...], code: int
) -> None:
    client = TopClient(base_url=taobao.url, app_key=taobao.app_key, secret=taobao.secret)
    form = client.signed(
        "taobao.user.seller.get", {"fields": "nick"}, session=taobao.shops[0].session
    )
    client.close()
    form.update(tamper)
    for name in drop:
        form.pop(name)
    form["sign"] = sign(form, taobao.secret, form.get("sign_method", "md5"))  # re-signed: valid
    body = httpx.post(f"{taobao.url}/router/rest", data=form).json()
    assert error_of(body)[0] == code


def test_expired_session_is_refused_with_code_27_and_maps_to_auth_failed(
    taobao: TaobaoSandbox, connector: TaobaoConnector
) -> None:
    taobao.expire_tokens()
    assert error_of(raw_call(taobao, "taobao.user.seller.get", {"fields": "nick"})) == (
        27,
        "session-expired",
    )
    with pytest.raises(PlatformAuthFailed) as caught:
        connector.fetch("orders", None)
    assert caught.value.code == "27/session-expired"


def test_a_window_longer_than_one_day_is_refused(taobao: TaobaoSandbox) -> None:
    end = datetime.now(UTC)
    params = {
        "fields": "tid",
        "start_modified": format_time(end - timedelta(days=1, seconds=1)),
        "end_modified": format_time(end),
    }
    body = raw_call(taobao, "taobao.trades.sold.increment.get", params)
    assert error_of(body) == (41, "isv.invalid-parameter:start_modified")
    params["start_modified"] = format_time(end - timedelta(days=1))
    assert "trades_sold_increment_get_response" in raw_call(
        taobao, "taobao.trades.sold.increment.get", params
    )


def test_page_size_over_100_and_missing_fields_are_refused(taobao: TaobaoSandbox) -> None:
    end = datetime.now(UTC)
    window = {
        "start_modified": format_time(end - timedelta(hours=1)),
        "end_modified": format_time(end),
    }
    body = raw_call(
        taobao, "taobao.trades.sold.increment.get", {"fields": "tid", "page_size": "101", **window}
    )
    assert error_of(body) == (41, "isv.invalid-parameter:page_size")
    body = raw_call(taobao, "taobao.trades.sold.increment.get", window)
    assert error_of(body) == (40, "isv.missing-parameter:fields")


def test_default_format_is_xml(taobao: TaobaoSandbox) -> None:
    client = TopClient(base_url=taobao.url, app_key=taobao.app_key, secret=taobao.secret)
    form = client.signed("taobao.time.get", {}, session=None)
    client.close()
    del form["format"]
    form["sign"] = sign(form, taobao.secret, "hmac-sha256")
    answer = httpx.post(f"{taobao.url}/router/rest", data=form)
    assert answer.text.startswith(
        '<?xml version="1.0" encoding="utf-8" ?><time_get_response><time>'
    )


# --- paging, has_next, the list and the detail -----------------------------------------------


def test_increment_list_pages_newest_first_with_has_next(taobao: TaobaoSandbox) -> None:
    end = datetime.now(UTC)
    window = {
        "fields": "tid,modified,receiver_name,oaid",
        "start_modified": format_time(end - timedelta(days=1)),
        "end_modified": format_time(end),
        "page_size": "3",
    }
    body = raw_call(taobao, "taobao.trades.sold.increment.get", window)[
        "trades_sold_increment_get_response"
    ]
    total = body["total_results"]
    assert total > 3 and "has_next" not in body
    seen: list[dict[str, Any]] = []
    for page in range(1, (total + 2) // 3 + 1):
        answer = raw_call(
            taobao,
            "taobao.trades.sold.increment.get",
            {**window, "page_no": str(page), "use_has_next": "true"},
        )["trades_sold_increment_get_response"]
        assert "total_results" not in answer
        assert answer["has_next"] is (page * 3 < total)
        seen += answer["trades"]["trade"]
    assert len(seen) == total
    assert [t["modified"] for t in seen] == sorted((t["modified"] for t in seen), reverse=True)
    assert all(set(t) == {"tid", "modified"} for t in seen)  # the list lacks receiver and oaid


def test_fullinfo_gives_the_oaid_only_with_all_receiver_fields_and_masks_them(
    taobao: TaobaoSandbox,
) -> None:
    tid = str(next(iter(taobao.trades)))
    every = "tid,receiver_name,receiver_address,created,receiver_mobile,receiver_phone,oaid"
    trade = raw_call(taobao, "taobao.trade.fullinfo.get", {"fields": every, "tid": tid})
    detail = trade["trade_fullinfo_get_response"]["trade"]
    assert detail["oaid"] and "*" in detail["receiver_name"] and "****" in detail["receiver_mobile"]
    fewer = every.replace(",receiver_phone", "")
    detail = raw_call(taobao, "taobao.trade.fullinfo.get", {"fields": fewer, "tid": tid})
    assert "oaid" not in detail["trade_fullinfo_get_response"]["trade"]


def test_oaid_decrypt_limits_scenes_and_staleness(taobao: TaobaoSandbox) -> None:
    trade = next(iter(taobao.trades.values()))
    query = {"oaid": taobao.oaid_of(trade), "tid": str(trade.tid), "scene": "2002"}
    body = raw_call(taobao, "taobao.top.oaid.decrypt", {"query_list": json.dumps([query] * 21)})
    assert error_of(body) == (41, "isv.invalid-parameter:query_list")
    body = raw_call(
        taobao, "taobao.top.oaid.decrypt", {"query_list": json.dumps([{**query, "scene": "1002"}])}
    )
    assert error_of(body) == (11, "isv.scene-not-authorized")
    shop = taobao.shops[trade.shop].session
    stale = {**query, "oaid": "1" + "0" * 47}
    answer = raw_call(
        taobao, "taobao.top.oaid.decrypt", {"query_list": json.dumps([query, stale])}, session=shop
    )["top_oaid_decrypt_response"]["receiver_list"]
    assert (
        answer[0]["matched"] is True and answer[0]["name"] == taobao.buyers[trade.buyer].person.name
    )
    assert answer[1] == {"oaid": stale["oaid"], "tid": str(trade.tid), "matched": False}


def test_buyers_under_privacy_protection_get_a_virtual_number_the_connector_leaves_out(
    taobao: TaobaoSandbox, connector: TaobaoConnector
) -> None:
    trade = next(t for t in taobao.trades.values() if taobao.buyers[t.buyer].privacy_protection)
    oaid = taobao.oaid_of(trade)
    query = {"oaid": oaid, "tid": str(trade.tid), "scene": "2002"}
    answer = raw_call(
        taobao,
        "taobao.top.oaid.decrypt",
        {"query_list": json.dumps([query])},
        session=taobao.shops[trade.shop].session,
    )["top_oaid_decrypt_response"]["receiver_list"][0]
    assert answer["privacy_protection"] is True and "-" in answer["mobile"]
    handles = [f"oaid:mobile:{trade.tid}:{oaid}", f"oaid:name:{trade.tid}:{oaid}"]
    clear = connector.decrypt(handles, scene="customer_service")
    assert list(clear) == [handles[1]]


def test_crm_members_page_within_the_platforms_limits(taobao: TaobaoSandbox) -> None:
    body = raw_call(taobao, "taobao.crm.members.get", {"current_page": "1", "page_size": "5"})
    members = body["crm_members_get_response"]
    assert members["total_result"] > 5 and len(members["members"]["basic_member"]) == 5
    assert error_of(raw_call(taobao, "taobao.crm.members.get", {"current_page": "1001"}))[0] == 41
    assert error_of(raw_call(taobao, "taobao.crm.members.get", {}))[0] == 40


# --- the error map ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("envelope", "kind"),
    [
        ({"code": 7, "msg": "App Call Limited"}, PlatformRateLimited),
        ({"code": 15, "msg": "x", "sub_code": "isp.call-limited"}, PlatformRateLimited),
        ({"code": 7, "sub_code": "accesscontrol.limited-by-api-access-count"}, PlatformRateLimited),
        ({"code": 10, "msg": "Service Currently Unavailable"}, PlatformUnavailable),
        (
            {
                "code": 15,
                "msg": "Remote service error",
                "sub_code": "isp.top-remote-connection-timeout",
            },
            PlatformUnavailable,
        ),
        ({"code": 11, "msg": "Insufficient ISV Permissions"}, PlatformRejected),
        (
            {"code": 41, "msg": "Invalid Arguments", "sub_code": "isv.invalid-parameter"},
            PlatformRejected,
        ),
        (
            {"code": 15, "msg": "Remote service error", "sub_code": "isv.trade-not-exist"},
            PlatformRejected,
        ),
        *(({"code": c, "msg": "x"}, PlatformAuthFailed) for c in (24, 25, 26, 27, 28, 29)),
        *(
            ({"code": c, "msg": "x"}, PlatformRejected)
            for c in (9, 21, 22, 23, 30, 31, 32, 33, 34, 40, 43)
        ),
        ({"msg": "no code"}, PlatformProtocolError),
    ],
)
def test_every_documented_code_maps_to_an_error_kind(envelope: dict[str, Any], kind: type) -> None:
    assert type(map_error("taobao", envelope)) is kind


def test_flow_control_waits_the_seconds_the_platform_names() -> None:
    error = map_error(
        "taobao",
        {
            "code": 7,
            "msg": "App Call Limited",
            "sub_code": "accesscontrol.limited-by-app-api-access-count",
            "sub_msg": "This ban will last for 2 more seconds",
        },
    )
    assert isinstance(error, PlatformRateLimited) and error.retry_after == 2.0
    fallback = map_error("taobao", {"code": 7, "msg": "App Call Limited"})
    assert isinstance(fallback, PlatformRateLimited) and fallback.retry_after is None


def test_throttled_app_gets_the_exact_code_7_shape(
    taobao: TaobaoSandbox, connector: TaobaoConnector
) -> None:
    taobao.throttle(rate=0.0, burst=2, ban_seconds=12)
    raw_call(taobao, "taobao.time.get")
    raw_call(taobao, "taobao.time.get")
    error = raw_call(taobao, "taobao.time.get")["error_response"]
    assert {k: error[k] for k in ("code", "msg", "sub_code", "sub_msg")} == {
        "code": 7,
        "msg": "App Call Limited",
        "sub_code": "accesscontrol.limited-by-app-api-access-count",
        "sub_msg": "This ban will last for 12 more seconds",
    }
    # A ban longer than the connector waits by itself goes to the engine, with the wait named.
    with pytest.raises(PlatformRateLimited) as caught:
        connector.fetch("orders", None)
    assert caught.value.retry_after is not None and 10 <= caught.value.retry_after <= 12


def test_a_short_ban_is_waited_out_by_the_connector(
    taobao: TaobaoSandbox, connector: TaobaoConnector
) -> None:
    taobao.throttle(rate=200.0, burst=20, ban_seconds=1)
    page = connector.fetch("orders", None)
    assert page.records and taobao.bans_served >= 1


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("malformed", PlatformProtocolError),
        ("server_error", PlatformUnavailable),
        ("drop", PlatformUnavailable),
        ("rate_limit", PlatformRateLimited),
    ],
)
def test_transport_faults_map_to_error_kinds(
    taobao: TaobaoSandbox, connector: TaobaoConnector, fault: str, kind: type
) -> None:
    taobao.faults.inject(fault)
    with pytest.raises(kind):
        connector.fetch("orders", None)


def test_isp_fault_is_retryable_unavailable(
    taobao: TaobaoSandbox, connector: TaobaoConnector
) -> None:
    taobao.inject_isp_error(times=1)
    with pytest.raises(PlatformUnavailable) as caught:
        connector.fetch("orders", None)
    assert caught.value.retryable and caught.value.code == "15/isp.top-remote-connection-timeout"
    assert connector.fetch("orders", None).records  # the next try goes through


def test_errors_never_carry_a_session_or_secret(taobao: TaobaoSandbox) -> None:
    broken = TaobaoConnector(settings_for(taobao, app_secret="wrong-secret"))
    with pytest.raises(PlatformAuthFailed) as caught:
        broken.fetch("orders", None)
    broken.close()
    text = str(caught.value)
    assert "wrong-secret" not in text and taobao.shops[0].session not in text
