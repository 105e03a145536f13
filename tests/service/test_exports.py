"""Exports over HTTP: consent-aware, streamed, the body's hash equal to the manifest's and the
manifest's hash equal to the audit event's; erasure over HTTP."""

from __future__ import annotations

import hashlib
import io
import json

from tests.service.conftest import World
from vault.audit import AuditQuery


def consented(world: World) -> list[str]:
    """Two more customers; the first and the world's customer consent to marketing by SMS."""
    others = [
        world.admin.add_customer({"name": name, "phone": phone}, source="t")
        for name, phone in (("李四", "13900139000"), ("王五", "13700137000"))
    ]
    for customer_id in (world.customer_id, others[0]):
        world.admin.grant_consent(customer_id, "marketing_sms", source="web-form")
    return [world.customer_id, others[0]]


def test_a_consented_export_streams_what_the_library_exports(world: World) -> None:
    ids = consented(world)
    answer = world.http.post(
        "/v1/exports", json={"purpose": "marketing_sms"}, headers=world.headers("marketing")
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    export_id = answer.headers["X-Vault-Export-Id"]
    assert export_id == answer.headers["X-Request-Id"]
    body = answer.content
    library = io.BytesIO()
    manifest_lib = world.session("marketing", "marketing_sms").export("marketing_sms", library)
    assert body == library.getvalue()
    assert manifest_lib.rows == 2
    for customer_id in ids:
        assert customer_id.encode() in body

    manifest = world.http.get(
        f"/v1/exports/{export_id}/manifest", headers=world.headers("marketing")
    )
    assert manifest.status_code == 200, manifest.text
    data = manifest.json()
    assert data["file_sha256"] == hashlib.sha256(body).hexdigest()
    assert data["file_bytes"] == len(body) and data["rows"] == 2
    assert data["request_id"] == export_id and data["actor"] == "p-marketing"
    started, event = [
        e
        for e in world.admin.audit_query(AuditQuery(action="export", limit=None))
        if e["request_id"] == export_id
    ]
    assert (started["details"]["phase"], event["details"]["phase"]) == ("started", "completed")
    assert event["details"]["manifest_sha256"] == data["manifest_sha256"]
    assert sorted(event["customers"]["ids"]) == sorted(ids)


def test_a_manifest_is_only_for_the_principal_who_exported(world: World) -> None:
    consented(world)
    answer = world.http.post(
        "/v1/exports", json={"purpose": "marketing_sms"}, headers=world.headers("marketing")
    )
    export_id = answer.headers["X-Vault-Export-Id"]
    other = world.http.get(f"/v1/exports/{export_id}/manifest", headers=world.headers("admin"))
    assert other.status_code == 404
    unknown = world.http.get(
        "/v1/exports/0123456789abcdef/manifest", headers=world.headers("marketing")
    )
    assert unknown.status_code == 404


def test_jsonl_export_with_chosen_fields(world: World) -> None:
    consented(world)
    answer = world.http.post(
        "/v1/exports",
        json={"purpose": "marketing_sms", "format": "jsonl", "fields": ["phone"]},
        headers=world.headers("marketing"),
    )
    assert answer.status_code == 200, answer.text
    lines = answer.text.splitlines()
    assert len(lines) == 2 and all('"phone"' in line and '"name"' not in line for line in lines)


def test_an_export_the_role_may_not_make_is_403_audited_and_streams_nothing(world: World) -> None:
    consented(world)
    answer = world.http.post(
        "/v1/exports", json={"purpose": "marketing_sms"}, headers=world.headers("support")
    )
    assert answer.status_code == 403
    assert "张三" not in answer.text and "13800138000" not in answer.text
    (event,) = world.admin.audit_query(AuditQuery(outcome="denied"))
    assert event["action"] == "export" and event["request_id"] == answer.headers["X-Request-Id"]


def test_an_export_field_the_purpose_does_not_allow_is_refused(world: World) -> None:
    answer = world.http.post(
        "/v1/exports",
        json={"purpose": "marketing_sms", "fields": ["email"]},
        headers=world.headers("marketing"),
    )
    assert answer.status_code == 403
    assert "email" in answer.json()["error"]["message"]


def test_erasure_over_http_shreds_the_customer_and_names_the_systems_asked(world: World) -> None:
    refused = world.http.post(
        f"/v1/customers/{world.customer_id}/erase",
        json={"reason": "DSAR-2026-114"},
        headers=world.headers("support"),
    )
    assert refused.status_code == 403
    answer = world.http.post(
        f"/v1/customers/{world.customer_id}/erase",
        json={"reason": "DSAR-2026-114"},
        headers=world.headers("admin"),
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["customer_id"] == world.customer_id
    assert report["erasure_requests"] == ["youzan"]
    gone = world.http.get(f"/v1/customers/{world.customer_id}", headers=world.headers("admin"))
    assert gone.status_code == 404
    status = world.http.get(
        f"/v1/customers/{world.customer_id}/erasure", headers=world.headers("auditor")
    )
    assert status.status_code == 200, status.text
    assert [(r["system"], r["status"]) for r in status.json()] == [("youzan", "pending")]
    hidden = world.http.get(
        f"/v1/customers/{world.customer_id}/erasure", headers=world.headers("support")
    )
    assert hidden.status_code == 403
    bad = world.http.post(
        f"/v1/customers/{world.customer_id}/erase",
        json={"reason": "tab\there"},
        headers=world.headers("admin"),
    )
    assert bad.status_code == 422


def test_dsar_access_and_correction_over_http_equal_the_library(world: World) -> None:
    headers = world.headers("admin", "compliance")
    answer = world.http.get(f"/v1/customers/{world.customer_id}/dsar", headers=headers)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    library = world.session("admin", "compliance").dsar_export(world.customer_id)
    assert json.loads(json.dumps(library, default=str)).keys() == document.keys()
    assert "13800138000" in answer.text  # the person's own data, in clear for compliance
    corrected = world.http.post(
        f"/v1/customers/{world.customer_id}/dsar/correct",
        json={"fields": {"email": "new@example.cn"}},
        headers=headers,
    )
    assert corrected.json() == {"id": world.customer_id, "changed": ["email"]}
    assert world.admin.get_customer(world.customer_id).fields["email"].source == "dsar"
    refused = world.http.get(
        f"/v1/customers/{world.customer_id}/dsar", headers=world.headers("support")
    )
    assert refused.status_code == 403
