"""The OpenAPI document is complete and valid, schemathesis finds nothing against the live
server, and no operation but health answers without a token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.service.conftest import World

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS_SECONDS = int(os.environ.get("VAULT_SCHEMATHESIS_SECONDS", "20"))
EXPECTED = {
    ("GET", "/v1/health"),
    ("POST", "/v1/customers/search"),
    ("GET", "/v1/customers"),
    ("POST", "/v1/customers"),
    ("GET", "/v1/customers/{customer_id}"),
    ("PATCH", "/v1/customers/{customer_id}"),
    ("POST", "/v1/customers/{customer_id}/identities"),
    ("GET", "/v1/customers/{customer_id}/orders"),
    ("POST", "/v1/customers/tags"),
    ("PUT", "/v1/customers/{customer_id}/tags/{tag}"),
    ("DELETE", "/v1/customers/{customer_id}/tags/{tag}"),
    ("POST", "/v1/customers/{customer_id}/consent/grant"),
    ("POST", "/v1/customers/{customer_id}/consent/withdraw"),
    ("GET", "/v1/customers/{customer_id}/consent"),
    ("POST", "/v1/consent/import"),
    ("POST", "/v1/exports"),
    ("GET", "/v1/exports/{export_id}/manifest"),
    ("POST", "/v1/customers/{customer_id}/erase"),
    ("GET", "/v1/customers/{customer_id}/dsar"),
    ("GET", "/v1/customers/{customer_id}/erasure"),
    ("POST", "/v1/customers/{customer_id}/dsar/correct"),
    ("GET", "/v1/audit/events"),
    ("GET", "/v1/audit/export"),
    ("POST", "/v1/audit/verify"),
    ("POST", "/v1/audit/checkpoints"),
    ("GET", "/v1/audit/public-key"),
}


# A body that passes validation, so that the request reaches the door (validation comes first).
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/customers/search"): {"phone": "13800138000"},
    ("POST", "/v1/customers"): {"fields": {"name": "x"}},
    ("PATCH", "/v1/customers/{customer_id}"): {"fields": {"name": "x"}},
    ("POST", "/v1/customers/{customer_id}/identities"): {"platform": "p", "external_id": "e"},
    ("POST", "/v1/customers/tags"): {"customer_ids": ["c"], "tag": "t"},
    ("POST", "/v1/customers/{customer_id}/consent/grant"): {"purpose": "p", "source": "s"},
    ("POST", "/v1/customers/{customer_id}/consent/withdraw"): {"purpose": "p", "source": "s"},
    ("POST", "/v1/exports"): {},
    ("POST", "/v1/customers/{customer_id}/erase"): {"reason": "r"},
    ("POST", "/v1/customers/{customer_id}/dsar/correct"): {"fields": {"name": "x"}},
}


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def test_the_openapi_document_is_valid_and_lists_every_endpoint(world: World) -> None:
    document = world.http.get("/v1/openapi.json").json()
    validate(document)
    found = operations(document)
    assert set(found) >= EXPECTED
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for key, operation in found.items():
        assert operation.get("summary"), key
        assert (
            "200" in operation["responses"]
            or "201" in operation["responses"]
            or ("204" in operation["responses"])
        ), key
        if key == ("GET", "/v1/health"):
            assert "security" not in operation
            continue
        assert operation["security"] == [{"HTTPBearer": []}], key
        for status in ("401", "403", "422", "429"):
            assert status in operation["responses"], (key, status)
        names = {p["name"] for p in operation.get("parameters", [])}
        assert {"x-vault-purpose", "purpose"} <= names, key


def test_no_operation_but_health_answers_without_a_token(world: World) -> None:
    document = world.http.get("/v1/openapi.json").json()
    for (method, path), operation in operations(document).items():
        if "security" not in operation:
            continue
        url = path.format(customer_id=world.customer_id, tag="vip", export_id="0123456789")
        if path == "/v1/consent/import":
            answer = world.http.post(url, content=b"", headers={"Content-Type": "text/csv"})
        else:
            answer = world.http.request(method, url, json=VALID_BODIES.get((method, path)))
        assert answer.status_code == 401, (method, path, answer.status_code)
        assert answer.json()["error"]["type"] == "AccessDenied"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_or_schema_break(world: World, tmp_path: Path) -> None:
    """A bounded run of every check (5xx, response schemas, status codes, headers, auth that is
    ignored, positive and negative data). Longer: VAULT_SCHEMATHESIS_SECONDS=600."""
    token = world.tokens["root"]
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(CONFIG),
            "run",
            f"{world.server.url}/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--header",
            "X-Vault-Purpose: administration",
            "--checks",
            "all",
            "--max-time",
            str(SCHEMATHESIS_SECONDS),
            "--generation-database",
            "none",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SCHEMATHESIS_SECONDS + 120,
        check=False,
    )
    summary = result.stdout[-3000:]
    failures = result.stdout.partition(" FAILURES ")[2].partition(" WARNINGS ")[0]
    assert result.returncode == 0, failures or summary
    assert " passed" in summary and "generated" in summary
    assert world.admin.audit_verify().ok
