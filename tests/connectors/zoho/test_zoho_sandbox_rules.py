"""The Zoho sandbox refuses what Zoho refuses, with Zoho's answer: one test per Part D rule
(``shared/protocols/crm-zoho-fxiaoke.md``), over real HTTP."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.zoho.sandbox import ZohoSandbox

FIELDS = "First_Name,Last_Name,Email,Mobile,Modified_Time"


def error_of(answer: httpx.Response) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"code", "details", "message", "status"} and body["status"] == "error"
    assert answer.headers["Content-Type"].startswith("application/json")
    return dict(body)


def refresh_form(sandbox: ZohoSandbox, **changes: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "refresh_token": sandbox.refresh_token,
        **changes,
    }


# --- D1/D2: the accounts server ----------------------------------------------------------------


def test_token_refresh_accepts_a_form_body_and_answers_without_a_refresh_token(
    sandbox: ZohoSandbox,
) -> None:
    body = httpx.post(f"{sandbox.url}/oauth/v2/token", data=refresh_form(sandbox)).json()
    assert set(body) == {"access_token", "scope", "api_domain", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["api_domain"] == sandbox.url  # its own URL, never a real Zoho host


def test_token_refresh_accepts_the_query_string_too(sandbox: ZohoSandbox) -> None:
    answer = httpx.post(f"{sandbox.url}/oauth/v2/token", params=refresh_form(sandbox))
    assert "access_token" in answer.json()


def test_code_grant_returns_a_refresh_token_once(sandbox: ZohoSandbox) -> None:
    form = {
        "grant_type": "authorization_code",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "redirect_uri": "http://127.0.0.1/callback",
        "code": sandbox.credentials()["grant_code"],
    }
    first = httpx.post(f"{sandbox.url}/oauth/v2/token", data=form).json()
    assert first["refresh_token"].startswith("1000.") and first["access_token"]
    assert httpx.post(f"{sandbox.url}/oauth/v2/token", data=form).json() == {
        "error": "invalid_code"
    }


def test_unknown_refresh_token_is_http_200_invalid_code(sandbox: ZohoSandbox) -> None:
    answer = httpx.post(
        f"{sandbox.url}/oauth/v2/token", data=refresh_form(sandbox, refresh_token="1000.x.y")
    )
    assert answer.status_code == 200 and answer.json() == {"error": "invalid_code"}


def test_wrong_client_secret_is_http_200_invalid_client(sandbox: ZohoSandbox) -> None:
    answer = httpx.post(
        f"{sandbox.url}/oauth/v2/token", data=refresh_form(sandbox, client_secret="nope")
    )
    assert answer.status_code == 200 and answer.json() == {"error": "invalid_client"}


def test_eleventh_access_token_in_ten_minutes_is_access_denied(sandbox: ZohoSandbox) -> None:
    for _ in range(10):
        body = httpx.post(f"{sandbox.url}/oauth/v2/token", data=refresh_form(sandbox)).json()
        assert "access_token" in body
    answer = httpx.post(f"{sandbox.url}/oauth/v2/token", data=refresh_form(sandbox))
    assert answer.status_code == 400 and answer.json()["error"] == "Access Denied"
    sandbox.advance(601)
    assert (
        "access_token"
        in httpx.post(f"{sandbox.url}/oauth/v2/token", data=refresh_form(sandbox)).json()
    )


def test_at_most_30_access_tokens_live_per_refresh_token(sandbox: ZohoSandbox) -> None:
    tokens = []
    for number in range(31):
        if number and number % 10 == 0:
            sandbox.advance(601)  # past the 10-per-10-minutes throttle
        body = httpx.post(f"{sandbox.url}/oauth/v2/token", data=refresh_form(sandbox)).json()
        tokens.append(body["access_token"])
    url = f"{sandbox.url}/crm/v8/org"
    oldest = httpx.get(url, headers={"Authorization": f"Zoho-oauthtoken {tokens[0]}"})
    newest = httpx.get(url, headers={"Authorization": f"Zoho-oauthtoken {tokens[-1]}"})
    assert oldest.status_code == 401 and error_of(oldest)["code"] == "INVALID_TOKEN"
    assert newest.status_code == 200


def test_revoked_refresh_token_no_longer_refreshes(sandbox: ZohoSandbox) -> None:
    answer = httpx.post(
        f"{sandbox.url}/oauth/v2/token/revoke", data={"token": sandbox.refresh_token}
    )
    assert answer.json() == {"status": "success"}
    assert httpx.post(f"{sandbox.url}/oauth/v2/token", data=refresh_form(sandbox)).json() == {
        "error": "invalid_code"
    }


# --- D3: the Authorization header --------------------------------------------------------------


def test_missing_authorization_is_authentication_failure(sandbox: ZohoSandbox) -> None:
    answer = httpx.get(f"{sandbox.url}/crm/v8/Contacts", params={"fields": FIELDS})
    assert answer.status_code == 401
    assert error_of(answer)["code"] == "AUTHENTICATION_FAILURE"


def test_a_bearer_header_is_refused_even_with_a_live_token(
    sandbox: ZohoSandbox, token: str
) -> None:
    answer = httpx.get(
        f"{sandbox.url}/crm/v8/Contacts",
        params={"fields": FIELDS},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 401
    assert error_of(answer)["code"] == "AUTHENTICATION_FAILURE"


def test_unknown_token_is_invalid_token(sandbox: ZohoSandbox) -> None:
    answer = httpx.get(
        f"{sandbox.url}/crm/v8/Contacts",
        params={"fields": FIELDS},
        headers={"Authorization": "Zoho-oauthtoken 1000.forged.token"},
    )
    assert answer.status_code == 401
    assert error_of(answer) == {
        "code": "INVALID_TOKEN",
        "details": {},
        "message": "invalid oauth token",
        "status": "error",
    }


def test_token_expires_after_expires_in(sandbox: ZohoSandbox, api: httpx.Client) -> None:
    assert api.get("/Contacts", params={"fields": FIELDS}).status_code == 200
    sandbox.advance(3601)
    answer = api.get("/Contacts", params={"fields": FIELDS})
    assert answer.status_code == 401 and error_of(answer)["code"] == "INVALID_TOKEN"


def test_the_sdk_header_is_accepted_and_ignored(api: httpx.Client) -> None:
    answer = api.get("/org", headers={"X-ZOHO-SDK": "Linux/5.15/python-8.0/3.11.7:7.0.0"})
    assert answer.status_code == 200


# --- D4: list records --------------------------------------------------------------------------


def test_list_without_fields_is_required_param_missing(api: httpx.Client) -> None:
    answer = api.get("/Contacts")
    assert answer.status_code == 400
    body = error_of(answer)
    assert body["code"] == "REQUIRED_PARAM_MISSING" and body["details"] == {"param_name": "fields"}


def test_more_than_fifty_fields_is_limit_exceeded(api: httpx.Client) -> None:
    answer = api.get("/Contacts", params={"fields": ",".join(["Email"] * 51)})
    assert answer.status_code == 400 and error_of(answer)["code"] == "LIMIT_EXCEEDED"


def test_an_unknown_field_name_is_invalid_data(api: httpx.Client) -> None:
    answer = api.get("/Contacts", params={"fields": "Email,Emial"})
    assert answer.status_code == 400
    assert error_of(answer)["details"]["api_name"] == "Emial"


def test_per_page_500_is_refused(api: httpx.Client) -> None:
    answer = api.get("/Contacts", params={"fields": FIELDS, "per_page": "500"})
    assert answer.status_code == 400
    body = error_of(answer)
    assert body["code"] == "INVALID_DATA" and body["details"]["param_name"] == "per_page"


def test_sort_by_other_than_id_created_modified_is_refused(api: httpx.Client) -> None:
    answer = api.get("/Contacts", params={"fields": FIELDS, "sort_by": "Email"})
    assert answer.status_code == 400 and error_of(answer)["details"]["param_name"] == "sort_by"


def test_default_order_is_id_descending_and_info_is_zohos(api: httpx.Client) -> None:
    body = api.get("/Contacts", params={"fields": FIELDS, "per_page": "10"}).json()
    ids = [int(r["id"]) for r in body["data"]]
    assert ids == sorted(ids, reverse=True)
    assert all(re.fullmatch(r"\d{19}", r["id"]) for r in body["data"])
    assert set(body["info"]) == {
        "call", "per_page", "next_page_token", "count", "sort_by", "page",
        "previous_page_token", "page_token_expiry", "sort_order", "email", "more_records",
    }  # fmt: skip
    assert body["info"]["sort_order"] == "desc" and body["info"]["more_records"] is True


def test_pages_beyond_the_first_2000_records_are_refused(api: httpx.Client) -> None:
    ok = api.get("/Contacts", params={"fields": FIELDS, "page": "10", "per_page": "200"})
    assert ok.status_code == 204  # page 10 is allowed; the sandbox holds only 60 records
    answer = api.get("/Contacts", params={"fields": FIELDS, "page": "11", "per_page": "200"})
    assert answer.status_code == 400
    assert error_of(answer)["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"
    answer = api.get("/Contacts", params={"fields": FIELDS, "page": "21", "per_page": "100"})
    assert error_of(answer)["details"] == {"limit": 2000}


def test_page_with_page_token_is_ambiguity(api: httpx.Client) -> None:
    first = api.get("/Contacts", params={"fields": FIELDS, "per_page": "10"}).json()
    token = first["info"]["next_page_token"]
    answer = api.get(
        "/Contacts", params={"fields": FIELDS, "per_page": "10", "page": "2", "page_token": token}
    )
    assert answer.status_code == 400 and error_of(answer)["code"] == "AMBIGUITY_DURING_PROCESSING"


def test_page_token_is_bound_to_the_other_parameters(api: httpx.Client) -> None:
    first = api.get("/Contacts", params={"fields": FIELDS, "per_page": "10"}).json()
    token = first["info"]["next_page_token"]
    same = api.get("/Contacts", params={"fields": FIELDS, "per_page": "10", "page_token": token})
    assert same.status_code == 200
    assert same.json()["data"][0]["id"] != first["data"][0]["id"]
    other = api.get("/Contacts", params={"fields": "Email", "per_page": "10", "page_token": token})
    assert other.status_code == 400 and error_of(other)["code"] == "TOKEN_BOUND_DATA_MISMATCH"


def test_page_token_expires_after_24_hours(sandbox: ZohoSandbox, api: httpx.Client) -> None:
    first = api.get("/Contacts", params={"fields": FIELDS, "per_page": "10"}).json()
    token = first["info"]["next_page_token"]
    sandbox.advance(24 * 3600 + 1)
    api.headers["Authorization"] = f"Zoho-oauthtoken {fresh(sandbox)}"
    answer = api.get("/Contacts", params={"fields": FIELDS, "per_page": "10", "page_token": token})
    assert answer.status_code == 400 and error_of(answer)["code"] == "EXPIRED_VALUE"


def test_unknown_page_token_is_invalid_data(api: httpx.Client) -> None:
    answer = api.get("/Contacts", params={"fields": FIELDS, "page_token": "deadbeef"})
    assert answer.status_code == 400
    assert error_of(answer)["details"] == {"param_name": "page_token"}


def test_if_modified_since_filters_and_answers_304_with_no_body(
    sandbox: ZohoSandbox, api: httpx.Client
) -> None:
    since = datetime.now().astimezone().replace(microsecond=0) - timedelta(seconds=5)
    header = {"If-Modified-Since": since.isoformat()}
    answer = api.get("/Contacts", params={"fields": FIELDS}, headers=header)
    assert answer.status_code == 304 and answer.content == b""
    changed = sandbox.stored()[3]["id"]
    sandbox.modify(changed, Mobile="+86 139 0000 0001")
    body = api.get("/Contacts", params={"fields": FIELDS}, headers=header).json()
    assert [r["id"] for r in body["data"]] == [changed]


def test_if_modified_since_must_be_a_time_with_an_offset(api: httpx.Client) -> None:
    answer = api.get(
        "/Contacts", params={"fields": FIELDS}, headers={"If-Modified-Since": "yesterday"}
    )
    assert answer.status_code == 400 and error_of(answer)["code"] == "INVALID_DATA"


def test_an_empty_module_answers_204_with_no_body(api: httpx.Client) -> None:
    answer = api.get("/Leads", params={"fields": "Last_Name"})
    assert answer.status_code == 204 and answer.content == b""


def test_times_are_iso_8601_in_the_users_offset(api: httpx.Client) -> None:
    record = api.get("/Contacts", params={"fields": FIELDS, "per_page": "1"}).json()["data"][0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", record["Modified_Time"])


def test_an_unknown_module_is_invalid_module(api: httpx.Client) -> None:
    answer = api.get("/Kontakte", params={"fields": FIELDS})
    assert answer.status_code == 400 and error_of(answer)["code"] == "INVALID_MODULE"


def test_an_unknown_path_is_invalid_url_pattern(sandbox: ZohoSandbox, token: str) -> None:
    answer = httpx.get(
        f"{sandbox.url}/crm/v2/Contacts", headers={"Authorization": f"Zoho-oauthtoken {token}"}
    )
    assert answer.status_code == 404 and error_of(answer)["code"] == "INVALID_URL_PATTERN"


# --- D5: writes --------------------------------------------------------------------------------


def upsert(api: httpx.Client, data: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    return api.post("/Contacts/upsert", json={"data": data, "trigger": [], **extra})


def test_more_than_100_records_is_limit_exceeded(api: httpx.Client) -> None:
    answer = upsert(api, [{"Last_Name": f"L{i}"} for i in range(101)])
    assert answer.status_code == 400 and error_of(answer)["code"] == "LIMIT_EXCEEDED"
    answer = api.delete("/Contacts", params={"ids": ",".join(str(10**18 + i) for i in range(101))})
    assert answer.status_code == 400 and error_of(answer)["code"] == "LIMIT_EXCEEDED"


def test_insert_without_last_name_is_mandatory_not_found_per_record(api: httpx.Client) -> None:
    answer = api.post("/Contacts", json={"data": [{"First_Name": "伟"}]})
    assert answer.status_code == 400  # every record failed
    assert answer.json()["data"] == [
        {
            "code": "MANDATORY_NOT_FOUND",
            "details": {"api_name": "Last_Name", "json_path": "$.data[0].Last_Name"},
            "message": "required field not found",
            "status": "error",
        }
    ]


def test_a_mixed_batch_is_207_with_one_result_per_record_in_order(api: httpx.Client) -> None:
    answer = upsert(
        api,
        [
            {"Last_Name": "王", "First_Name": "芳", "Email": "wang.fang@example.cn"},
            {"Last_Name": "Smith", "Email": "not-an-email"},
            {"Last_Name": "Müller", "Date_of_Birth": "1990-02-30"},
        ],
    )
    assert answer.status_code == 207
    data = answer.json()["data"]
    assert [d["status"] for d in data] == ["success", "error", "error"]
    assert data[0]["action"] == "insert" and re.fullmatch(r"\d{19}", data[0]["details"]["id"])
    assert data[1]["details"]["expected_data_type"] == "email"
    assert data[2]["details"] == {
        "api_name": "Date_of_Birth",
        "json_path": "$.data[2].Date_of_Birth",
        "expected_data_type": "date",
    }


def test_upsert_without_duplicate_check_fields_matches_on_email(api: httpx.Client) -> None:
    first = upsert(api, [{"Last_Name": "Li", "Email": "li.na@example.cn"}]).json()["data"][0]
    again = upsert(api, [{"Last_Name": "Li", "First_Name": "Na", "Email": "LI.NA@example.cn"}])
    result = again.json()["data"][0]
    assert again.status_code == 200
    assert result["action"] == "update" and result["duplicate_field"] == "Email"
    assert result["details"]["id"] == first["details"]["id"]


def test_upsert_ignores_the_system_field_when_not_listed(api: httpx.Client) -> None:
    first = upsert(api, [{"Last_Name": "Li", "Email": "li.lei@example.cn"}]).json()["data"][0]
    second = upsert(
        api,
        [{"Last_Name": "Li", "Email": "li.lei@example.cn", "Vault_Customer_ID": "c-9"}],
        duplicate_check_fields=["Vault_Customer_ID"],
    ).json()["data"][0]
    assert second["action"] == "insert" and second["details"]["id"] != first["details"]["id"]


def test_duplicate_check_fields_must_be_unique_or_system_fields(api: httpx.Client) -> None:
    answer = upsert(api, [{"Last_Name": "Li"}], duplicate_check_fields=["Mobile"])
    assert answer.status_code == 400 and error_of(answer)["code"] == "INVALID_DATA"


def test_a_unique_field_value_taken_by_another_record_is_duplicate_data(api: httpx.Client) -> None:
    one = upsert(api, [{"Last_Name": "A", "Email": "a@example.cn", "Vault_Customer_ID": "c-1"}])
    first_id = one.json()["data"][0]["details"]["id"]
    clash = upsert(
        api,
        [{"Last_Name": "B", "Email": "b@example.cn", "Vault_Customer_ID": "c-1"}],
        duplicate_check_fields=["Email"],
    ).json()["data"][0]
    assert clash["code"] == "DUPLICATE_DATA"
    assert clash["details"]["duplicate_record"]["id"] == first_id


def test_every_write_sets_modified_time_in_the_users_offset(
    sandbox: ZohoSandbox, api: httpx.Client
) -> None:
    record = sandbox.stored()[0]
    answer = api.put("/Contacts", json={"data": [{"id": record["id"], "Title": "经理"}]})
    details = answer.json()["data"][0]["details"]
    assert details["Modified_Time"].endswith("+08:00")
    assert details["Modified_Time"] > record["Modified_Time"]


def test_update_without_id_is_mandatory_not_found(api: httpx.Client) -> None:
    answer = api.put("/Contacts", json={"data": [{"Title": "x"}]})
    assert answer.json()["data"][0]["details"]["api_name"] == "id"


def test_a_read_only_or_unknown_field_in_a_write_is_invalid_data(api: httpx.Client) -> None:
    data = upsert(api, [{"Last_Name": "A", "Modified_Time": "2020-01-01T00:00:00+08:00"},
                        {"Last_Name": "B", "Vault_ID__c": "x"}]).json()["data"]  # fmt: skip
    assert [d["details"]["api_name"] for d in data] == ["Modified_Time", "Vault_ID__c"]


def test_a_body_that_is_not_json_is_refused(api: httpx.Client) -> None:
    answer = api.post("/Contacts/upsert", content=b"{not json")
    assert answer.status_code == 400 and error_of(answer)["code"] == "INVALID_DATA"


def test_trigger_must_list_known_automations(api: httpx.Client) -> None:
    answer = upsert(api, [{"Last_Name": "A"}], trigger=["everything"])
    assert answer.status_code == 400 and error_of(answer)["details"]["api_name"] == "trigger"


def test_delete_answers_per_id_and_an_unknown_id_is_invalid_data(
    sandbox: ZohoSandbox, api: httpx.Client
) -> None:
    known = sandbox.stored()[0]["id"]
    answer = api.delete("/Contacts", params={"ids": f"{known},1234567890123456789"})
    assert answer.status_code == 207
    assert answer.json()["data"] == [
        {"code": "SUCCESS", "details": {"id": known}, "message": "record deleted",
         "status": "success"},
        {"code": "INVALID_DATA", "details": {"id": "1234567890123456789"},
         "message": "the related id given seems to be invalid", "status": "error"},
    ]  # fmt: skip
    assert api.get("/Contacts", params={"ids": known, "fields": FIELDS}).status_code == 204


def test_delete_without_ids_is_required_param_missing(api: httpx.Client) -> None:
    answer = api.delete("/Contacts")
    assert error_of(answer)["details"] == {"param_name": "ids"}


# --- D6: deleted feed, search, COQL ------------------------------------------------------------


def test_the_deleted_feed_lists_deletions_and_answers_204_when_empty(
    sandbox: ZohoSandbox, api: httpx.Client
) -> None:
    assert api.get("/Contacts/deleted", params={"type": "all"}).status_code == 204
    gone = sandbox.stored()[5]["id"]
    sandbox.delete_in_crm(gone)
    body = api.get("/Contacts/deleted", params={"type": "all"}).json()
    assert [d["id"] for d in body["data"]] == [gone] and body["data"][0]["type"] == "recycle"
    assert body["info"] == {"per_page": 200, "count": 1, "page": 1, "more_records": False}
    later = datetime.now().astimezone() + timedelta(seconds=5)
    answer = api.get(
        "/Contacts/deleted", params={"type": "all"},
        headers={"If-Modified-Since": later.isoformat(timespec="seconds")},
    )  # fmt: skip
    assert answer.status_code == 304


def test_the_deleted_feed_type_is_all_recycle_or_permanent(api: httpx.Client) -> None:
    answer = api.get("/Contacts/deleted", params={"type": "trash"})
    assert answer.status_code == 400 and error_of(answer)["details"]["param_name"] == "type"


def test_search_equals_behaves_like_contains(sandbox: ZohoSandbox, api: httpx.Client) -> None:
    email = sandbox.stored()[2]["Email"]
    local = email.split("@")[0]
    body = api.get("/Contacts/search", params={"criteria": f"(Email:equals:{local})"}).json()
    assert email in [r["Email"] for r in body["data"]]
    assert "next_page_token" not in body["info"]


def test_search_needs_criteria_email_phone_or_word(api: httpx.Client) -> None:
    answer = api.get("/Contacts/search")
    assert answer.status_code == 400 and error_of(answer)["code"] == "REQUIRED_PARAM_MISSING"


def test_search_reaches_at_most_2000_results(api: httpx.Client) -> None:
    answer = api.get("/Contacts/search", params={"word": "a", "page": "11", "per_page": "200"})
    assert answer.status_code == 400 and error_of(answer)["code"] == "LIMIT_REACHED"


def test_coql_needs_a_where_clause(api: httpx.Client) -> None:
    answer = api.post("/coql", json={"select_query": "select Last_Name from Contacts limit 10"})
    assert answer.status_code == 400 and error_of(answer)["code"] == "SYNTAX_ERROR"
    query = (
        "select Last_Name, Modified_Time from Contacts "
        "where Modified_Time > '2000-01-01T00:00:00+00:00' order by Modified_Time asc limit 0, 5"
    )
    body = api.post("/coql", json={"select_query": query}).json()
    assert len(body["data"]) == 5 and body["info"] == {"count": 5, "more_records": True}
    too_many = api.post("/coql", json={"select_query": query.replace("0, 5", "0, 2001")})
    assert error_of(too_many)["code"] == "LIMIT_EXCEEDED"


# --- D7: what the official SDK calls -----------------------------------------------------------


def test_sdk_support_endpoints(api: httpx.Client) -> None:
    assert api.get("/users", params={"type": "CurrentUser"}).json()["users"][0]["email"]
    assert api.get("/org").json()["org"][0]["id"]
    fields = api.get("/settings/fields", params={"module": "Contacts"}).json()["fields"]
    email = next(f for f in fields if f["api_name"] == "Email")
    assert email["data_type"] == "email" and email["json_type"] == "string"
    assert next(f for f in fields if f["api_name"] == "Last_Name")["system_mandatory"] is True
    assert error_of(api.get("/settings/fields"))["details"] == {"param_name": "module"}
    modules = api.get("/settings/modules").json()["modules"]
    assert {"Contacts", "Leads"} <= {m["api_name"] for m in modules}


# --- D8: faults in Zoho's shape ----------------------------------------------------------------


def test_rate_limit_is_429_too_many_requests_without_retry_after(
    sandbox: ZohoSandbox, api: httpx.Client
) -> None:
    sandbox.faults.inject("rate_limit", match="/crm/v8/Contacts", retry_after=3)
    answer = api.get("/Contacts", params={"fields": FIELDS})
    assert answer.status_code == 429 and "Retry-After" not in answer.headers
    assert error_of(answer)["code"] == "TOO_MANY_REQUESTS"


def test_server_error_is_500_internal_error(sandbox: ZohoSandbox, api: httpx.Client) -> None:
    sandbox.faults.inject("server_error")
    answer = api.get("/Contacts", params={"fields": FIELDS})
    assert answer.status_code == 500 and error_of(answer)["code"] == "INTERNAL_ERROR"


def test_requests_above_the_concurrency_limit_are_429() -> None:
    with ZohoSandbox(seed=1, records=5, concurrency=2) as sandbox:
        sandbox.faults.inject("timeout", times=3, seconds=0.5)  # hold three requests in flight
        headers = {"Authorization": f"Zoho-oauthtoken {fresh(sandbox)}"}
        statuses: list[int] = []

        def call() -> None:
            answer = httpx.get(
                f"{sandbox.url}/crm/v8/Contacts", params={"fields": FIELDS}, headers=headers
            )
            statuses.append(answer.status_code)

        threads = [threading.Thread(target=call) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200, 200, 429]


def test_credits_are_counted_and_exhausted_credits_are_429() -> None:
    with ZohoSandbox(seed=1, records=5, daily_credits=3) as sandbox:
        headers = {"Authorization": f"Zoho-oauthtoken {fresh(sandbox)}"}
        url = f"{sandbox.url}/crm/v8/Contacts"
        big = {"data": [{"Last_Name": f"L{i}"} for i in range(20)], "trigger": []}
        assert httpx.post(url, json=big, headers=headers).status_code == 201  # 2 credits
        assert httpx.get(url, params={"fields": FIELDS}, headers=headers).status_code == 200
        assert sandbox.credits_used == 3
        assert httpx.get(url, params={"fields": FIELDS}, headers=headers).status_code == 429


def fresh(sandbox: ZohoSandbox) -> str:
    body = httpx.post(f"{sandbox.url}/oauth/v2/token", data=refresh_form(sandbox)).json()
    return str(body["access_token"])


@pytest.mark.parametrize("records", [0, 3])
def test_seeded_contacts_have_chinese_and_latin_names_and_real_formats(records: int) -> None:
    sandbox = ZohoSandbox(seed=11, records=records * 100)
    stored = sandbox.stored()
    assert len(stored) == records * 100
    if records:
        names = [r["Full_Name"] for r in stored]
        assert any(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", n) for n in names)
        assert any(re.fullmatch(r"[A-Za-zÀ-ÿ' ]+", n) for n in names)
        assert all(re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z.]+", r["Email"]) for r in stored)
        assert all(re.fullmatch(r"[+0-9 -]{11,20}", r["Mobile"]) for r in stored)
        assert len({r["Email"] for r in stored}) == len(stored)
        assert len({re.sub(r"\D", "", r["Mobile"]) for r in stored}) == len(stored)
        again = ZohoSandbox(seed=11, records=records * 100).stored()
        keys = ("id", "Full_Name", "Email", "Mobile", "Mailing_Street", "Date_of_Birth")
        assert [[r[k] for k in keys] for r in again] == [[r[k] for k in keys] for r in stored]
