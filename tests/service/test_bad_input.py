"""Bad input over HTTP: each a clear 4xx naming what is wrong, audited where it touches customer
data, and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.service.conftest import PHONE, World
from vault.audit import AuditQuery


def state(world: World) -> tuple[list[str], dict[str, str | None], int]:
    """What a refused request must not change: the customers, one customer's fields, the writes."""
    ids = list(world.admin.list_customers(limit=100).customer_ids)
    customer = world.admin.get_customer(world.customer_id)
    fields = {name: value.value for name, value in customer.fields.items()}
    writes = len(world.admin.audit_query(AuditQuery(action="write", outcome="allowed", limit=None)))
    return ids, fields, writes


@pytest.fixture
def before(world: World) -> tuple[list[str], dict[str, str | None], int]:
    return state(world)


def assert_nothing_written(world: World, before: Any) -> None:
    assert state(world) == before


def events(world: World, **filters: Any) -> list[dict[str, Any]]:
    return world.admin.audit_query(AuditQuery(limit=None, **filters))


def test_malformed_json_is_400_and_writes_nothing(world: World, before: Any) -> None:
    answer = world.http.post(
        "/v1/customers",
        content=b'{"fields": {"name": "\xe5\xbc\xa0\xe4\xb8\x89"',
        headers={**world.headers("admin"), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "type": "MalformedJSON",
        "message": "the request body is not valid JSON",
        "request_id": answer.headers["X-Request-Id"],
    }
    assert_nothing_written(world, before)


def test_an_oversized_body_is_413_by_its_length_and_while_streamed(
    world: World, before: Any
) -> None:
    big = b'{"fields": {"note": "' + b"x" * (1024 * 1024) + b'"}}'
    declared = world.http.post(
        "/v1/customers",
        content=big,
        headers={**world.headers("admin"), "Content-Type": "application/json"},
    )
    assert declared.status_code == 413
    assert "larger than 1048576 bytes" in declared.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = world.http.post(
        "/v1/customers",
        content=chunks(),
        headers={**world.headers("admin"), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"]["type"] == "BodyTooLarge"
    assert_nothing_written(world, before)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415(
    world: World, before: Any, content_type: str | None
) -> None:
    headers = world.headers("admin")
    if content_type:
        headers["Content-Type"] = content_type
    answer = world.http.post("/v1/customers", content=b"name=x", headers=headers)
    assert answer.status_code == 415
    assert answer.json()["error"]["message"] == "the request body must be application/json"
    assert_nothing_written(world, before)


def test_unknown_fields_are_refused_with_422_not_ignored(world: World, before: Any) -> None:
    answer = world.http.patch(
        f"/v1/customers/{world.customer_id}",
        json={"fields": {"nickname": "x"}, "sauce": "api", "overwrite": True},
        headers=world.headers("admin"),
    )
    assert answer.status_code == 422
    problems = answer.json()["error"]["problems"]
    assert [p["loc"] for p in problems] == [["body", "<unknown key>"]] * 2
    assert {p["type"] for p in problems} == {"extra_forbidden"}
    assert_nothing_written(world, before)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/v1/customers", {"fields": {"name": "x"}, "13912345678": 1, "张三": "x"}),
        ("post", "/v1/exports", {"purpose": "customer_service", "13912345678": {"张三": 1}}),
        ("post", "/v1/customers/search", {"field": "phone", "value": "1", "张三": "13912345678"}),
        ("post", "/v1/customers", {"fields": {"13912345678": "张三"}}),
        (
            "post",
            "/v1/customers",
            {"fields": {"name": "x"}, "identities": [{"张三": "13912345678"}]},
        ),
        ("post", "/v1/exports", {"format": "13912345678", "fields": ["张三"], "tags": ["张三"]}),
        ("post", "/v1/exports", {"segment": "13912345678张三", "purpose": "张三"}),
        ("post", "/v1/exports", {"purpose": "customer_service", "segment": "tier:13912345678"}),
        ("post", "/v1/exports", {"purpose": "customer_service", "segment": "stage:13912345678"}),
        ("post", "/v1/exports", {"purpose": "customer_service", "fields": ["13912345678"]}),
        ("post", "/v1/customers/search", {"field": "张三", "value": ["13912345678"]}),
        ("patch", "/v1/customers/{id}", {"fields": {"13912345678": "张三", "name": 13912345678}}),
    ],
)
def test_a_422_names_where_never_the_keys_or_values_sent(
    world: World, before: Any, method: str, path: str, body: dict[str, Any]
) -> None:
    answer = world.http.request(
        method.upper(),
        path.replace("{id}", world.customer_id),
        json=body,
        headers=world.headers("admin", "customer_service"),
    )
    assert answer.status_code == 422, answer.text
    assert "13912345678" not in answer.text and "张三" not in answer.text
    assert "\\u5f20" not in answer.text.lower()  # nor the same escaped
    problems = answer.json()["error"].get("problems") or []
    assert all(p["loc"] and p["loc"][0] == "body" for p in problems)
    assert_nothing_written(world, before)


def test_a_validation_error_never_echoes_the_value(world: World, before: Any) -> None:
    answer = world.http.post(
        "/v1/customers",
        json={"fields": {"phone": 13900139000, "name": ["王五"]}},
        headers=world.headers("admin"),
    )
    assert answer.status_code == 422
    assert "13900139000" not in answer.text and "王五" not in answer.text
    assert_nothing_written(world, before)


def test_a_value_that_does_not_normalise_is_422_audited_as_failed(
    world: World, before: Any
) -> None:
    answer = world.http.patch(
        f"/v1/customers/{world.customer_id}",
        json={"fields": {"phone": "139-not-a-phone"}},
        headers=world.headers("admin"),
    )
    assert answer.status_code == 422
    assert answer.json()["error"] == {
        "type": "InvalidValue",
        "message": "invalid value for field 'phone': not a phone number",
        "request_id": answer.headers["X-Request-Id"],
    }
    assert "not-a-phone" not in answer.text
    (failed,) = events(world, outcome="failed")
    assert failed["request_id"] == answer.headers["X-Request-Id"]
    assert failed["customers"]["ids"] == [world.customer_id]
    assert_nothing_written(world, before)


def test_a_forged_token_is_401_and_audited(world: World, before: Any) -> None:
    forged = world.tokens["admin"][:-4] + "AAAA"
    answer = world.http.post(
        "/v1/customers/search",
        json={"phone": PHONE},
        headers={"Authorization": f"Bearer {forged}", "X-Vault-Purpose": "administration"},
    )
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.json()["error"]["message"] == (
        "access denied: <unknown token> may not authenticate: unknown token"
    )
    assert PHONE not in answer.text
    (event,) = events(world, action="authenticate")
    assert event["outcome"] == "denied" and event["reason"] == "unknown token"
    assert event["request_id"] == answer.headers["X-Request-Id"]
    assert forged not in str(event)
    assert_nothing_written(world, before)


def test_a_missing_token_is_401_and_audited(world: World, before: Any) -> None:
    answer = world.http.patch(
        f"/v1/customers/{world.customer_id}", json={"fields": {"nickname": "x"}}
    )
    assert answer.status_code == 401
    assert "no bearer token" in answer.json()["error"]["message"]
    (event,) = events(world, action="authenticate")
    assert event["request_id"] == answer.headers["X-Request-Id"]
    assert_nothing_written(world, before)


@pytest.mark.parametrize("how", ["expired", "revoked"])
def test_an_expired_or_revoked_token_is_401_and_audited(world: World, how: str) -> None:
    token = world.admin.add_principal(
        "temp", ["admin"], expires_at=datetime.now(UTC) + timedelta(seconds=0.5)
    )
    if how == "revoked":
        world.admin.revoke_principal("temp")
    else:
        import time

        time.sleep(0.6)
    before = state(world)
    answer = world.http.patch(
        f"/v1/customers/{world.customer_id}",
        json={"fields": {"nickname": "x"}},
        headers={"Authorization": f"Bearer {token}", "X-Vault-Purpose": "administration"},
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == (
        f"access denied: temp may not authenticate: token {how}"
    )
    (event,) = events(world, action="authenticate")
    assert event["actor"] == "temp" and event["reason"] == f"token {how}"
    assert_nothing_written(world, before)


def test_a_purpose_the_role_lacks_is_403_audited_and_writes_nothing(
    world: World, before: Any
) -> None:
    read = world.http.get(
        f"/v1/customers/{world.customer_id}", headers=world.headers("support", "marketing_sms")
    )
    assert read.status_code == 403
    message = read.json()["error"]["message"]
    assert message == (
        "access denied: p-support may not read for purpose 'marketing_sms': "
        "no role of support may read for purpose 'marketing_sms'"
    )
    write = world.http.patch(
        f"/v1/customers/{world.customer_id}",
        json={"fields": {"nickname": "x"}},
        headers=world.headers("support"),
    )
    assert write.status_code == 403
    assert "张三" not in read.text + write.text and PHONE not in read.text + write.text
    denied = events(world, outcome="denied")
    assert [e["request_id"] for e in denied] == [
        read.headers["X-Request-Id"],
        write.headers["X-Request-Id"],
    ]
    assert [e["action"] for e in denied] == ["read", "write"]
    assert_nothing_written(world, before)


def test_an_unknown_purpose_is_403_and_a_malformed_one_422(world: World) -> None:
    unknown = world.http.get(
        f"/v1/customers/{world.customer_id}", headers=world.headers("admin", "spying")
    )
    assert unknown.status_code == 403
    assert "unknown purpose 'spying'" in unknown.json()["error"]["message"]
    malformed = world.http.get(
        f"/v1/customers/{world.customer_id}", headers=world.headers("admin", "NOT A PURPOSE")
    )
    assert malformed.status_code == 422


def test_the_purpose_header_wins_over_the_query_string(world: World) -> None:
    answer = world.http.get(
        f"/v1/customers/{world.customer_id}",
        params={"purpose": "administration"},
        headers=world.headers("support", "marketing_sms"),
    )
    assert answer.status_code == 403
    assert "for purpose 'marketing_sms'" in answer.json()["error"]["message"]


def test_an_unknown_customer_is_404_with_its_id_only(world: World) -> None:
    missing = "01a2306c-0000-7000-8000-000000000000"
    answer = world.http.get(f"/v1/customers/{missing}", headers=world.headers("admin"))
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == f"no customer {missing}"


def problems(answer: Any) -> list[dict[str, Any]]:
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["type"] == "InvalidRequest"
    return list(answer.json()["error"]["problems"])


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"tags": ["a\u0000b"]}, ["body"]),  # PostgreSQL text cannot hold a NUL
        ({"tags": ["\u001a"]}, ["body", "tags", "0"]),  # a control character is no tag
    ],
)
def test_a_value_with_a_nul_or_control_character_is_422_not_a_database_error(
    world: World, before: Any, body: dict[str, Any], where: list[str]
) -> None:
    answer = world.http.post("/v1/exports", json=body, headers=world.headers("admin"))
    assert [p["loc"] for p in problems(answer)] == [where]
    assert_nothing_written(world, before)


def test_a_platform_name_longer_than_the_store_holds_is_422(world: World, before: Any) -> None:
    answer = world.http.post(
        "/v1/customers",
        json={"identities": [{"platform": "p" * 33, "external_id": "e"}]},
        headers=world.headers("admin"),
    )
    assert problems(answer)[0]["loc"] == ["body", "identities", "0", "platform"]
    assert_nothing_written(world, before)


@pytest.mark.parametrize("moment", ["0.5", "1700000000", "2026-03-01", "2026-03-01T08:00:00"])
def test_a_date_time_is_rfc_3339_with_an_offset_never_a_unix_time(
    world: World, before: Any, moment: str
) -> None:
    query = world.http.get(
        "/v1/audit/events", params={"until": moment}, headers=world.headers("admin")
    )
    assert problems(query)[0]["loc"] == ["query", "until"]
    body = world.http.patch(
        f"/v1/customers/{world.customer_id}",
        json={"fields": {"nickname": "x"}, "observed_at": moment},
        headers=world.headers("admin"),
    )
    assert problems(body)[0]["loc"] == ["body", "observed_at"]
    assert_nothing_written(world, before)


def test_a_json_string_is_no_integer_in_a_request_body(world: World) -> None:
    checkpoint = world.admin.audit_checkpoint()
    kept = {**checkpoint.to_json(world.vault.audit.public_key), "seq": str(checkpoint.seq)}
    answer = world.http.post(
        "/v1/audit/verify", json={"checkpoints": [kept]}, headers=world.headers("auditor")
    )
    assert problems(answer)[0]["loc"] == ["body", "checkpoints", "0", "seq"]


def test_an_audit_filter_on_a_customer_id_longer_than_any_is_422(world: World) -> None:
    answer = world.http.get(
        "/v1/audit/events", params={"customer": "0" * 37}, headers=world.headers("admin")
    )
    assert problems(answer)[0]["loc"] == ["query", "customer"]
