"""Every role × every endpoint over HTTP: allowed or refused exactly as the policy says, and an
allowed answer equal to what the library gives the same principal for the same purpose."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

from tests.service.conftest import PHONE, ROLES, World, role_purpose
from vault import AccessDenied
from vault.audit import AuditQuery
from vault.serialise import customer_to_json
from vault.service.models import (
    AuditEventOut,
    ConsentSummaryOut,
    CustomerOut,
    OrderOut,
)
from vault.session import Session


@dataclass(frozen=True)
class Endpoint:
    action: str
    method: str
    path: str
    library: Callable[[Session, World], Any]  # the same call through the library, as JSON
    body: dict[str, Any] | None = None
    searched: str | None = None  # a search also needs this field visible to the role
    status: int = 200
    compare: bool = True  # False for writes: the effect is checked, not the echo
    params: dict[str, Any] = field(default_factory=dict)


def _json(model: Any, data: Any) -> Any:
    """The library's answer through the API's response model (same dates, same shapes)."""
    if isinstance(data, list):
        return [model.model_validate(item).model_dump(mode="json") for item in data]
    return model.model_validate(data).model_dump(mode="json")


ENDPOINTS: dict[str, Endpoint] = {
    "search by phone": Endpoint(
        "search",
        "POST",
        "/v1/customers/search",
        lambda s, w: {"ids": s.find_customers("phone", PHONE)},
        body={"phone": "+86 138-0013-8000", "records": False},
        searched="phone",
    ),
    "search by identity": Endpoint(
        "search",
        "POST",
        "/v1/customers/search",
        lambda s, w: {"ids": [s.find_by_identity("youzan", "yz_1")]},
        body={"platform": "youzan", "external_id": "yz_1", "records": False},
        searched="platform_id",
    ),
    "get": Endpoint(
        "read",
        "GET",
        "/v1/customers/{cid}",
        lambda s, w: _json(CustomerOut, customer_to_json(s.get_customer(w.customer_id))),
    ),
    "list": Endpoint(
        "read",
        "GET",
        "/v1/customers",
        lambda s, w: {
            "customer_ids": list(s.list_customers(limit=10).customer_ids),
            "next_after": None,
        },
        params={"limit": 10},
    ),
    "orders": Endpoint(
        "read",
        "GET",
        "/v1/customers/{cid}/orders",
        lambda s, w: _json(OrderOut, [asdict(o) for o in s.orders_of(w.customer_id)]),
    ),
    "add": Endpoint(
        "write",
        "POST",
        "/v1/customers",
        lambda s, w: s.add_customer({"name": "新客户"}, source="api"),
        body={"fields": {"name": "新客户"}},
        status=201,
        compare=False,
    ),
    "update": Endpoint(
        "write",
        "PATCH",
        "/v1/customers/{cid}",
        lambda s, w: s.update_customer(w.customer_id, {"nickname": "小张"}, source="api"),
        body={"fields": {"nickname": "小张"}, "source": "api"},
        compare=False,
    ),
    "tag": Endpoint(
        "write",
        "PUT",
        "/v1/customers/{cid}/tags/regular",
        lambda s, w: s.tag_customers([w.customer_id], "regular", source="api"),
        compare=False,
    ),
    "grant consent": Endpoint(
        "consent",
        "POST",
        "/v1/customers/{cid}/consent/grant",
        lambda s, w: s.grant_consent(w.customer_id, "marketing_sms", source="web-form"),
        body={"purpose": "marketing_sms", "source": "web-form"},
        status=201,
        compare=False,
    ),
    "consent of": Endpoint(
        "consent",
        "GET",
        "/v1/customers/{cid}/consent",
        lambda s, w: _json(ConsentSummaryOut, asdict(s.consent_of(w.customer_id))),
    ),
    "audit query": Endpoint(
        "audit",
        "GET",
        "/v1/audit/events",
        lambda s, w: _json(AuditEventOut, s.audit_query(AuditQuery(action="principals", limit=3))),
        params={"action": "principals", "limit": 3},
    ),
    "audit verify": Endpoint(
        "audit", "POST", "/v1/audit/verify", lambda s, w: s.audit_verify().ok, compare=False
    ),
    "export": Endpoint(
        "export",
        "POST",
        "/v1/exports",
        lambda s, w: s.export(s.purpose or "", io.BytesIO()),
        body={},
        compare=False,
    ),
    "public key": Endpoint(
        "audit",
        "GET",
        "/v1/audit/public-key",
        lambda s, w: {"algorithm": "ed25519", "public_key": s.audit_public_key().hex()},
    ),
    "erase": Endpoint(  # last: it erases the world's customer
        "erase",
        "POST",
        "/v1/customers/{cid}/erase",
        lambda s, w: s.erase_customer(w.customer_id, reason="DSAR-1"),
        body={"reason": "DSAR-1"},
        compare=False,
    ),
}


def expected_allowed(world: World, role: str, endpoint: Endpoint) -> bool:
    policy = world.vault.policy
    purpose = role_purpose(world.vault, role)
    allowed = policy.decide((role,), endpoint.action, purpose).allowed
    if endpoint.searched is not None:
        allowed = allowed and policy.view((role,), endpoint.searched, purpose) != "hidden"
    return allowed


def denied_events(world: World) -> list[dict[str, Any]]:
    return world.admin.audit_query(AuditQuery(outcome="denied", limit=None))


@pytest.mark.parametrize("role", ROLES)
def test_every_endpoint_is_allowed_or_refused_as_the_policy_says(world: World, role: str) -> None:
    session = world.session(role)
    for name, endpoint in ENDPOINTS.items():
        path = endpoint.path.format(cid=world.customer_id)
        before = len(denied_events(world))
        answer = world.http.request(
            endpoint.method,
            path,
            json=endpoint.body,
            params=endpoint.params,
            headers=world.headers(role),
        )
        if expected_allowed(world, role, endpoint):
            assert answer.status_code == endpoint.status, (name, answer.text)
            if endpoint.compare:
                data = answer.json()
                if name.startswith("search"):  # records: false, so no "customers"
                    assert data.pop("customers") is None
                assert data == endpoint.library(session, world), name
            continue
        assert answer.status_code == 403, (name, answer.text)
        with pytest.raises(AccessDenied) as refused:
            endpoint.library(session, world)
        error = answer.json()["error"]
        assert error["type"] == "AccessDenied"
        assert error["message"] == str(refused.value), name
        denials = denied_events(world)
        # the HTTP refusal and the library's, each audited, the first under the request's id
        assert len(denials) == before + 2, name
        assert denials[before]["request_id"] == answer.headers["X-Request-Id"]
        assert denials[before]["actor"] == f"p-{role}"


def test_writes_over_http_land_with_their_provenance(world: World) -> None:
    headers = world.headers("admin")
    created = world.http.post(
        "/v1/customers",
        json={
            "fields": {"name": "李四", "phone": "13900139000"},
            "source": "shop-backoffice",
            "identities": [{"platform": "youzan", "external_id": "yz_2"}],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    new_id = created.json()["id"]
    changed = world.http.patch(
        f"/v1/customers/{new_id}",
        json={
            "fields": {"email": "li@example.cn"},
            "source": "phone-call",
            "observed_at": "2026-01-02T03:04:05Z",
        },
        headers=headers,
    )
    assert changed.json() == {"id": new_id, "changed": ["email"]}
    tagged = world.http.post(
        "/v1/customers/tags", json={"customer_ids": [new_id], "tag": "vip"}, headers=headers
    )
    assert tagged.json() == {"tagged": 1}
    customer = world.admin.get_customer(new_id)
    assert customer.fields["name"].source == "shop-backoffice"
    assert customer.fields["email"].source == "phone-call"
    assert customer.fields["email"].observed_at.year == 2026
    assert customer.tags == ["vip"] or list(customer.tags) == ["vip"]
    assert world.admin.find_by_identity("youzan", "yz_2") == new_id
    removed = world.http.delete(f"/v1/customers/{new_id}/tags/vip", headers=headers)
    assert removed.json() == {"removed": True}


def test_a_support_agent_sees_the_masked_view_over_http_as_in_the_library(world: World) -> None:
    answer = world.http.post(
        "/v1/customers/search", json={"phone": PHONE}, headers=world.headers("support")
    )
    assert answer.status_code == 200, answer.text
    (customer,) = answer.json()["customers"]
    assert (
        customer["fields"]["phone"]["value"] == "+86138****8000"
        or "****" in (customer["fields"]["phone"]["value"])
    )
    assert customer["fields"]["phone"]["masked"] is True
    assert "id_number" not in customer["fields"]
    library = customer_to_json(world.session("support").get_customer(world.customer_id))
    assert customer == _json(CustomerOut, library)


def test_reading_without_a_purpose_is_refused_and_audited(world: World) -> None:
    answer = world.http.get(
        f"/v1/customers/{world.customer_id}",
        headers={"Authorization": f"Bearer {world.tokens['admin']}"},
    )
    assert answer.status_code == 403
    assert "a purpose is required" in answer.json()["error"]["message"]
    (event,) = world.admin.audit_query(AuditQuery(outcome="denied"))
    assert event["request_id"] == answer.headers["X-Request-Id"]
    assert event["customers"]["ids"] == [world.customer_id]


def test_the_purpose_may_come_in_the_query_string(world: World) -> None:
    answer = world.http.get(
        f"/v1/customers/{world.customer_id}",
        params={"purpose": "customer_service"},
        headers={"Authorization": f"Bearer {world.tokens['support']}"},
    )
    assert answer.status_code == 200, answer.text
    (event,) = world.admin.audit_query(AuditQuery(actor="p-support", action="read", limit=None))
    assert event["purpose"] == "customer_service"
