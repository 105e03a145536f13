"""The Fenxiang sandbox refuses what Fenxiang refuses, the way Fenxiang does (Part D, one rule
per test), over real HTTP."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from fxiaoke_http import HTTP, Call, legacy_token, query

from connectors.fxiaoke.sandbox import FxiaokeSandbox

# --- D1: tokens --------------------------------------------------------------------------------


def test_legacy_token_answer_has_token_corp_id_and_a_7200_second_lifetime(
    sandbox: FxiaokeSandbox,
) -> None:
    answer = legacy_token(sandbox)
    assert answer["corpId"] == sandbox.corp_id
    assert answer["expiresIn"] == 7200 and answer["corpAccessToken"]


def test_oauth_token_needs_grant_type_app_secret_and_answers_ea(sandbox: FxiaokeSandbox) -> None:
    creds = {
        "appId": sandbox.app_id,
        "appSecret": sandbox.app_secret,
        "permanentCode": sandbox.permanent_code,
    }
    missing = HTTP.post(f"{sandbox.url}/oauth2.0/token", json=creds).json()
    assert missing["errorCode"] == 10006
    answer = HTTP.post(
        f"{sandbox.url}/oauth2.0/token",
        params={"thirdTraceId": "x"},
        json={**creds, "grantType": "app_secret"},
    ).json()
    assert answer["errorCode"] == 0 and answer["ea"] == sandbox.ea and answer["accessToken"]


def test_the_same_token_is_returned_for_6600_seconds_then_a_new_one_and_both_stay_valid(
    sandbox: FxiaokeSandbox,
) -> None:
    now = [1_800_000_000.0]
    sandbox.clock = lambda: now[0]
    first = legacy_token(sandbox)
    now[0] += 6599
    again = legacy_token(sandbox)
    assert again["corpAccessToken"] == first["corpAccessToken"]
    assert again["expiresIn"] == 601  # what is left of the 7200 s
    now[0] += 2
    fresh = legacy_token(sandbox)
    assert fresh["corpAccessToken"] != first["corpAccessToken"]
    assert fresh["expiresIn"] == 7200
    assert _business(sandbox, first)["errorCode"] == 0  # the old one until its 7200 s are up
    now[0] += 600
    assert _business(sandbox, first)["errorCode"] == 20016
    assert _business(sandbox, fresh)["errorCode"] == 0


def test_bad_secret_is_10006_bad_permanent_code_20015_unknown_app_20006_all_http_200(
    sandbox: FxiaokeSandbox,
) -> None:
    good = {
        "appId": sandbox.app_id,
        "appSecret": sandbox.app_secret,
        "permanentCode": sandbox.permanent_code,
    }
    for change, code in (
        ({"appSecret": "wrong"}, 10006),
        ({"permanentCode": "wrong"}, 20015),
        ({"appId": "FSAID_other"}, 20006),
    ):
        answer = HTTP.post(f"{sandbox.url}/cgi/corpAccessToken/get/V2", json={**good, **change})
        assert answer.status_code == 200
        assert answer.json()["errorCode"] == code
    bad_secret = HTTP.post(
        f"{sandbox.url}/cgi/corpAccessToken/get/V2", json={**good, "appSecret": "x"}
    ).json()
    assert bad_secret["errorMessage"] == "the parameter appSecret is missing or illegal"
    assert bad_secret["errorDescription"] == "缺少参数或参数不合法"


def test_token_endpoint_allows_ten_calls_a_minute(sandbox: FxiaokeSandbox) -> None:
    for _ in range(10):
        legacy_token(sandbox)
    answer = HTTP.post(
        f"{sandbox.url}/cgi/corpAccessToken/get/V2",
        json={
            "appId": sandbox.app_id,
            "appSecret": sandbox.app_secret,
            "permanentCode": sandbox.permanent_code,
        },
    ).json()
    assert answer["errorCode"] == 30004


def test_token_endpoint_refuses_concurrent_calls() -> None:
    with FxiaokeSandbox(seed=1, records=1, token_delay=0.5) as sandbox:
        body = {
            "appId": sandbox.app_id,
            "appSecret": sandbox.app_secret,
            "permanentCode": sandbox.permanent_code,
        }
        codes: list[int] = []

        def fetch() -> None:
            answer = HTTP.post(f"{sandbox.url}/cgi/corpAccessToken/get/V2", json=body)
            codes.append(answer.json()["errorCode"])

        threads = [threading.Thread(target=fetch) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(codes) == [0, 30004]


# --- D2: business-call auth and envelope ---------------------------------------------------


def _business(sandbox: FxiaokeSandbox, token: dict[str, Any], **change: Any) -> dict[str, Any]:
    body = {
        "corpAccessToken": token["corpAccessToken"],
        "corpId": token["corpId"],
        "currentOpenUserId": sandbox.admin_open_user_id,
        "data": {"dataObjectApiName": "ContactObj", "search_query_info": {"limit": 1}},
        **change,
    }
    body = {k: v for k, v in body.items() if v is not None}
    answer = HTTP.post(f"{sandbox.url}/cgi/crm/v2/data/query", json=body)
    assert answer.status_code == 200
    parsed: dict[str, Any] = answer.json()
    assert parsed["traceId"]
    return parsed


def test_no_auth_is_20017(sandbox: FxiaokeSandbox) -> None:
    answer = HTTP.post(f"{sandbox.url}/cgi/crm/v2/data/query", json={"data": {}}).json()
    assert answer["errorCode"] == 20017
    assert answer["errorMessage"] == "corpAccessToken为必填项，不能为空"


def test_forged_expired_or_foreign_corp_token_is_20016(sandbox: FxiaokeSandbox) -> None:
    token = legacy_token(sandbox)
    assert _business(sandbox, token)["errorCode"] == 0
    forged = _business(sandbox, token, corpAccessToken="F" * 32)
    assert forged["errorCode"] == 20016
    assert forged["errorMessage"] == "the cropId,cropAccessToken or authorization is error"
    assert _business(sandbox, token, corpId="FSCID_OTHER")["errorCode"] == 20016
    sandbox.expire_tokens()
    assert _business(sandbox, token)["errorCode"] == 20016


def test_operator_current_open_user_id_is_required(sandbox: FxiaokeSandbox) -> None:
    token = legacy_token(sandbox)
    assert _business(sandbox, token, currentOpenUserId=None)["errorCode"] == 10006
    assert _business(sandbox, token, currentOpenUserId="FSUID_NOBODY")["errorCode"] == 10006


def test_header_auth_works_and_mixing_it_with_body_auth_is_refused(
    sandbox: FxiaokeSandbox,
) -> None:
    oauth = HTTP.post(
        f"{sandbox.url}/oauth2.0/token",
        json={
            "appId": sandbox.app_id,
            "appSecret": sandbox.app_secret,
            "permanentCode": sandbox.permanent_code,
            "grantType": "app_secret",
        },
    ).json()
    headers = {
        "authorization": f"Bearer {oauth['accessToken']}",
        "x-fs-ea": oauth["ea"],
        "x-fs-userid": "1000",
    }
    data = {"dataObjectApiName": "ContactObj", "search_query_info": {"limit": 1}}
    url = f"{sandbox.url}/cgi/crm/v2/data/query"
    assert HTTP.post(url, headers=headers, json={"data": data}).json()["errorCode"] == 0
    fsuid = {**headers, "x-fs-userid": sandbox.admin_open_user_id}
    assert HTTP.post(url, headers=fsuid, json={"data": data}).json()["errorCode"] == 10006
    converted = HTTP.post(url, headers=fsuid, json={"data": data, "convertUserId": True})
    assert converted.json()["errorCode"] == 0
    legacy = legacy_token(sandbox)
    mixed = HTTP.post(
        url, headers=headers, json={"data": data, "corpAccessToken": legacy["corpAccessToken"]}
    )
    assert mixed.json()["errorCode"] == 20016
    legacy_in_header = {**headers, "authorization": f"Bearer {legacy['corpAccessToken']}"}
    assert HTTP.post(url, headers=legacy_in_header, json={"data": data}).json()["errorCode"] == (
        20016
    )


def test_every_answer_is_http_200_with_error_code_and_trace_id(call: Call) -> None:
    ok = query(call)
    assert ok["errorCode"] == 0 and ok["errorMessage"] == "OK"
    refused = query(call, offset=20_000)
    assert refused["errorCode"] != 0 and refused["errorDescription"]


def test_only_post_with_json_is_served(sandbox: FxiaokeSandbox) -> None:
    url = f"{sandbox.url}/cgi/crm/v2/data/query"
    got = HTTP.get(url)
    assert got.status_code == 200 and got.json()["errorCode"] == 15002
    form = HTTP.post(url, data={"data": "x"})
    assert form.json()["errorCode"] == 15002
    assert HTTP.post(f"{sandbox.url}/cgi/crm/data/query", json={}).status_code == 404


# --- D3: query ---------------------------------------------------------------------------------


def test_limit_above_100_is_refused(call: Call) -> None:
    assert query(call, limit=101)["errorCode"] == 10013
    assert query(call, limit=100)["errorCode"] == 0


def test_offset_above_10000_is_refused_as_fenxiang_does(call: Call) -> None:
    answer = query(call, limit=20, offset=10_020)
    assert answer["errorCode"] == 10013
    assert answer["errorMessage"] == "offset out of range 10000"
    assert answer["errorDescription"] == "offset 不能超过10000"
    assert query(call, offset=10_000)["errorCode"] == 0


def test_offset_must_be_a_multiple_of_limit(call: Call) -> None:
    assert query(call, limit=100, offset=150)["errorCode"] == 10013
    assert query(call, limit=50, offset=150)["errorCode"] == 0


def test_filter_values_are_a_list_of_strings_under_snake_case_keys(call: Call) -> None:
    mark = {"field_name": "last_modified_time", "operator": "GT"}
    assert query(call, filters=[{**mark, "field_values": [0]}])["errorCode"] == 15002
    assert query(call, filters=[{**mark, "field_values": "0"}])["errorCode"] == 15002
    camel = {"fieldName": "last_modified_time", "fieldValues": ["0"], "operator": "GT"}
    assert query(call, filters=[camel])["errorCode"] == 15002
    assert query(call, filters=[{**mark, "field_values": ["0"]}])["errorCode"] == 0
    assert query(call, orders=[{"field_name": "_id", "is_asc": True}])["errorCode"] == 15002
    assert query(call, filters=[{**mark, "operator": "NE", "field_values": ["0"]}])[
        "errorCode"
    ] == (15002)
    data = {"dataObjectApiName": "ContactObj", "searchQueryInfo": {"limit": 10}}
    assert call("/cgi/crm/v2/data/query", data)["errorCode"] == 15002


def _ids(answer: dict[str, Any]) -> list[str]:
    assert answer["errorCode"] == 0, answer
    return [row["_id"] for row in answer["data"]["dataList"]]


def test_query_operators_select_what_they_say(sandbox: FxiaokeSandbox, call: Call) -> None:
    rows = sandbox.live()
    one = rows[5]
    some = [r["_id"] for r in rows[10:13]]

    def where(field: str, op: str, *values: str) -> list[str]:
        f = {"field_name": field, "operator": op, "field_values": list(values)}
        return sorted(
            _ids(query(call, filters=[f], orders=[{"fieldName": "_id", "isAsc": True}]))
            + _more(call, f)
        )

    all_ids = sorted(r["_id"] for r in rows)
    assert where("_id", "EQ", one["_id"]) == [one["_id"]]
    assert where("_id", "N", one["_id"]) == [i for i in all_ids if i != one["_id"]]
    assert where("_id", "IN", *some) == sorted(some)
    assert where("_id", "NIN", *some) == [i for i in all_ids if i not in some]
    t = str(one["last_modified_time"])
    by_time = {r["_id"]: r["last_modified_time"] for r in rows}
    assert where("last_modified_time", "GT", t) == sorted(
        i for i, v in by_time.items() if v > int(t)
    )
    assert where("last_modified_time", "GTE", t) == sorted(
        i for i, v in by_time.items() if v >= int(t)
    )
    assert where("last_modified_time", "LT", t) == sorted(
        i for i, v in by_time.items() if v < int(t)
    )
    assert where("last_modified_time", "LTE", t) == sorted(
        i for i, v in by_time.items() if v <= int(t)
    )
    no_email = sorted(r["_id"] for r in rows if r["email"] is None)
    assert no_email and where("email", "IS") == no_email
    assert where("email", "ISN") == [i for i in all_ids if i not in no_email]
    stem = one["name"][:1]
    assert where("name", "LIKE", stem) == sorted(r["_id"] for r in rows if stem in r["name"])
    assert where("intimacy__c", "BETWEEN", "10", "20") == sorted(
        r["_id"] for r in rows if r["intimacy__c"] is not None and 10 <= int(r["intimacy__c"]) <= 20
    )


def _more(call: Call, condition: dict[str, Any]) -> list[str]:
    """The rows of ``condition`` past the first page (the seeded tenant has 300 contacts)."""
    found: list[str] = []
    for offset in (100, 200, 300):
        found += _ids(
            query(
                call,
                offset=offset,
                filters=[condition],
                orders=[{"fieldName": "_id", "isAsc": True}],
            )
        )
    return found


def test_orders_sort_by_several_fields(sandbox: FxiaokeSandbox, call: Call) -> None:
    answer = query(
        call,
        orders=[
            {"fieldName": "last_modified_time", "isAsc": False},
            {"fieldName": "_id", "isAsc": True},
        ],
        fieldProjection=["_id", "last_modified_time"],
    )
    keys = [(-r["last_modified_time"], r["_id"]) for r in answer["data"]["dataList"]]
    assert keys == sorted(keys) and len(keys) == 100


def test_field_projection_and_null_fields_omitted_unless_include_null(call: Call) -> None:
    answer = query(call, fieldProjection=["name", "email"])
    rows = answer["data"]["dataList"]
    assert all(set(r) <= {"_id", "name", "email"} for r in rows)
    assert any("email" not in r for r in rows)  # nulls left out
    data = {
        "dataObjectApiName": "ContactObj",
        "includeNull": True,
        "search_query_info": {"limit": 100, "fieldProjection": ["name", "email"]},
    }
    with_null = call("/cgi/crm/v2/data/query", data)["data"]["dataList"]
    assert all(set(r) == {"_id", "name", "email"} for r in with_null)
    assert query(call, fieldProjection=["nickname"])["errorCode"] == 15002


def test_query_answer_is_data_list_offset_limit_total(call: Call) -> None:
    answer = query(call, limit=50, offset=100)
    assert set(answer["data"]) == {"dataList", "offset", "limit", "total"}
    assert (answer["data"]["offset"], answer["data"]["limit"], answer["data"]["total"]) == (
        100,
        50,
        300,
    )
    data = {
        "dataObjectApiName": "ContactObj",
        "find_explicit_total_num": False,
        "search_query_info": {"limit": 10},
    }
    assert call("/cgi/crm/v2/data/query", data)["data"]["total"] == 0


def test_times_are_epoch_milliseconds_and_numbers_strings(call: Call) -> None:
    rows = query(call, fieldProjection=["create_time", "last_modified_time", "intimacy__c"])
    for row in rows["data"]["dataList"]:
        assert isinstance(row["last_modified_time"], int) and row["last_modified_time"] > 10**12
        assert isinstance(row.get("intimacy__c", ""), str)


# --- D4: get / create / update / invalid / delete ----------------------------------------------


def _create(call: Call, **values: Any) -> dict[str, Any]:
    return call(
        "/cgi/crm/v2/data/create",
        {"object_data": {"dataObjectApiName": "ContactObj", "owner": ["1000"], **values}},
        triggerApprovalFlow=False,
        triggerWorkFlow=False,
    )


def test_create_answers_data_id_and_puts_the_object_name_inside_object_data(
    sandbox: FxiaokeSandbox, call: Call
) -> None:
    created = _create(call, name="张三", mobile1="13800138000", email="zhang.san@example.cn")
    assert created["errorCode"] == 0 and created["dataId"]
    record = sandbox.record(created["dataId"])
    assert record is not None and record["life_status"] == "normal"
    assert isinstance(record["create_time"], int)
    outside = call(
        "/cgi/crm/v2/data/create",
        {"dataObjectApiName": "ContactObj", "object_data": {"name": "李四", "owner": ["1000"]}},
    )
    assert outside["errorCode"] == 15002


def test_create_needs_the_required_fields(call: Call) -> None:
    assert _create(call, mobile1="13800138000")["errorCode"] == 15002  # no name
    no_owner = call(
        "/cgi/crm/v2/data/create",
        {"object_data": {"dataObjectApiName": "ContactObj", "name": "王五"}},
    )
    assert no_owner["errorCode"] == 15002


def test_fields_the_object_does_not_have_or_system_fields_are_refused(call: Call) -> None:
    assert _create(call, name="赵六", nickname="小赵")["errorCode"] == 15002
    assert _create(call, name="赵六", last_modified_time=1)["errorCode"] == 15002


def test_numbers_are_strings_and_dates_epoch_milliseconds(call: Call) -> None:
    assert _create(call, name="钱七", intimacy__c=5)["errorCode"] == 15002
    assert _create(call, name="钱七", intimacy__c="5")["errorCode"] == 0
    assert _create(call, name="钱七", date_of_birth="1990-01-01")["errorCode"] == 15002
    assert _create(call, name="钱七", date_of_birth=631123200000)["errorCode"] == 0
    assert _create(call, name="钱七", email="not an email")["errorCode"] == 15002
    assert _create(call, name="钱七", owner="1000")["errorCode"] == 15002  # a list, always


def test_flows_default_to_on_so_a_create_that_keeps_them_lands_under_review(
    sandbox: FxiaokeSandbox, call: Call
) -> None:
    kept = call(
        "/cgi/crm/v2/data/create",
        {"object_data": {"dataObjectApiName": "ContactObj", "name": "孙八", "owner": ["1000"]}},
    )
    record = sandbox.record(kept["dataId"])
    assert record is not None and record["life_status"] == "under_review"
    assert sandbox.workflow_runs == 1


def test_update_bumps_last_modified_time_and_refuses_owner(
    sandbox: FxiaokeSandbox, call: Call
) -> None:
    target = sandbox.live()[0]
    before = target["last_modified_time"]
    changed = call(
        "/cgi/crm/v2/data/update",
        {
            "object_data": {
                "dataObjectApiName": "ContactObj",
                "_id": target["_id"],
                "job_title": "店长",
            }
        },
    )
    assert changed["errorCode"] == 0
    after = sandbox.record(target["_id"])
    assert after is not None and after["job_title"] == "店长"
    assert after["last_modified_time"] > before
    owner = call(
        "/cgi/crm/v2/data/update",
        {
            "object_data": {
                "dataObjectApiName": "ContactObj",
                "_id": target["_id"],
                "owner": ["1001"],
            }
        },
    )
    assert owner["errorCode"] == 15002
    moved = call(
        "/cgi/crm/v2/data/changeOwner",
        {
            "dataObjectApiName": "ContactObj",
            "Data": [{"objectDataId": target["_id"], "ownerId": ["1001"]}],
        },
    )
    assert moved["errorCode"] == 0
    assert (sandbox.record(target["_id"]) or {})["owner"] == ["1001"]


def test_only_a_voided_record_can_be_deleted_and_then_it_is_gone(
    sandbox: FxiaokeSandbox, call: Call
) -> None:
    record_id = _create(call, name="周九")["dataId"]
    delete = {"dataObjectApiName": "ContactObj", "idList": [record_id]}
    assert call("/cgi/crm/v2/data/delete", delete)["errorCode"] == 15002
    as_list = {"dataObjectApiName": "ContactObj", "object_data_id": [record_id]}
    assert call("/cgi/crm/v2/data/invalid", as_list)["errorCode"] == 15002
    void = {"dataObjectApiName": "ContactObj", "object_data_id": record_id}
    assert call("/cgi/crm/v2/data/invalid", void)["errorCode"] == 0
    voided = call(
        "/cgi/crm/v2/data/get", {"dataObjectApiName": "ContactObj", "objectDataId": record_id}
    )
    assert voided["data"]["life_status"] == "invalid"
    assert call("/cgi/crm/v2/data/delete", delete)["errorCode"] == 0
    gone = call(
        "/cgi/crm/v2/data/get", {"dataObjectApiName": "ContactObj", "objectDataId": record_id}
    )
    assert gone["errorCode"] != 0
    condition = {"field_name": "_id", "operator": "EQ", "field_values": [record_id]}
    assert _ids(query(call, filters=[condition])) == []
    assert sandbox.record(record_id) is None


def test_a_voided_record_can_be_recovered_but_not_edited(
    sandbox: FxiaokeSandbox, call: Call
) -> None:
    record_id = _create(call, name="吴十")["dataId"]
    call(
        "/cgi/crm/v2/data/invalid", {"dataObjectApiName": "ContactObj", "object_data_id": record_id}
    )
    edit = {"object_data": {"dataObjectApiName": "ContactObj", "_id": record_id, "job_title": "x"}}
    assert call("/cgi/crm/v2/data/update", edit)["errorCode"] == 15002
    recover = {"dataObjectApiName": "ContactObj", "idList": [record_id]}
    assert call("/cgi/crm/v2/data/recover", recover)["errorCode"] == 0
    assert (sandbox.record(record_id) or {})["life_status"] == "normal"


def test_custom_objects_live_only_under_the_custom_path(call: Call) -> None:
    values = {
        "object_data": {"dataObjectApiName": "object_vnote__c", "name": "n", "owner": ["1000"]}
    }
    assert call("/cgi/crm/v2/data/create", values)["errorCode"] == 15002
    assert call("/cgi/crm/custom/v2/data/create", values)["errorCode"] == 0
    standard = {"dataObjectApiName": "ContactObj", "search_query_info": {"limit": 1}}
    assert call("/cgi/crm/custom/v2/data/query", standard)["errorCode"] == 15002


def test_object_list_and_describe(call: Call) -> None:
    listed = call("/cgi/crm/v2/object/list", {})
    names = {o["describeApiName"] for o in listed["data"]["objects"]}
    assert {"ContactObj", "AccountObj", "LeadsObj"} <= names
    described = call("/cgi/crm/v2/object/describe", {"apiName": "ContactObj"}, includeDetail=False)
    fields = described["data"]["describe"]["fields"]
    assert fields["mobile1"]["type"] == "phone_number"
    assert fields["last_modified_time"]["type"] == "date_time"
    assert fields["owner"]["is_required"] is True


# --- D5: limits and faults in Fenxiang's shape --------------------------------------------------


def test_the_101st_call_to_an_endpoint_within_20_seconds_is_30004(sandbox: FxiaokeSandbox) -> None:
    now = [1_800_000_000.0]
    sandbox.clock = lambda: now[0]
    token = legacy_token(sandbox)
    for _ in range(100):
        assert _business(sandbox, token)["errorCode"] == 0
    assert _business(sandbox, token)["errorCode"] == 30004
    describe = HTTP.post(
        f"{sandbox.url}/cgi/crm/v2/object/describe",
        json={
            "corpAccessToken": token["corpAccessToken"],
            "corpId": token["corpId"],
            "currentOpenUserId": sandbox.admin_open_user_id,
            "data": {"apiName": "ContactObj"},
        },
    ).json()
    assert describe["errorCode"] == 0  # the limit is per endpoint
    now[0] += 20.5
    assert _business(sandbox, token)["errorCode"] == 0


def test_daily_quota_used_up_is_30002_and_no_quota_bought_30003() -> None:
    with FxiaokeSandbox(seed=2, records=5, daily_quota=3) as sandbox:
        token = legacy_token(sandbox)
        codes = [_business(sandbox, token)["errorCode"] for _ in range(4)]
        assert codes == [0, 0, 0, 30002]
    with FxiaokeSandbox(seed=2, records=5, quota_purchased=False) as sandbox:
        assert _business(sandbox, legacy_token(sandbox))["errorCode"] == 30003


def test_kit_faults_render_in_fenxiang_shape(sandbox: FxiaokeSandbox) -> None:
    token = legacy_token(sandbox)
    sandbox.faults.inject("rate_limit", match="/data/query")
    assert _business(sandbox, token)["errorCode"] == 30004
    sandbox.faults.inject("server_error", match="/data/query")
    assert _business(sandbox, token)["errorCode"] == -1
    sandbox.fail_with(50009, match="/data/query")
    assert _business(sandbox, token)["errorCode"] == 50009
    sandbox.fail_with(http_status=502, match="/data/query")
    body = {"data": {}}
    assert HTTP.post(f"{sandbox.url}/cgi/crm/v2/data/query", json=body).status_code == 502
    assert _business(sandbox, token)["errorCode"] == 0


def test_sandbox_command_prints_one_json_line_with_url_and_credentials() -> None:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "vault.cli", "sandbox", "fxiaoke", "--records", "20", "--seed", "4"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        assert announced["sandbox"] == "fxiaoke"
        assert announced["credentials"]["app_id"].startswith("FSAID_")
        token = HTTP.post(
            f"{announced['base_url']}/cgi/corpAccessToken/get/V2",
            json={
                "appId": announced["credentials"]["app_id"],
                "appSecret": announced["credentials"]["app_secret"],
                "permanentCode": announced["credentials"]["permanent_code"],
            },
        ).json()
        assert token["errorCode"] == 0
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("records", [0, 1])
def test_an_empty_or_tiny_tenant_pages_to_an_empty_list(records: int) -> None:
    with FxiaokeSandbox(seed=3, records=records) as sandbox:
        token = legacy_token(sandbox)
        answer = _business(sandbox, token)
        assert answer["errorCode"] == 0 and len(answer["data"]["dataList"]) == min(records, 1)
