"""The ``vault demo`` step of the HTTP API: serve the demo vault on a free loopback port, make
one request as the support agent, show what came back and where it is audited, stop."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from vault.audit import AuditQuery
from vault.service.config import ServiceConfig
from vault.service.server import running
from vault.vault import Vault


def http_step(
    vault: Vault,
    token: str,
    admin_token: str,
    phone: str,
    echo: Callable[[str], None],
    *,
    step: str,
) -> None:
    """Look ``phone`` up over HTTP with ``token`` (purpose customer_service)."""
    with running(vault, ServiceConfig()) as server, httpx.Client(base_url=server.url) as http:
        echo(f"{step} The HTTP API (`vault serve`) on {server.url}: the same lookup as that agent,")
        echo(
            "    POST /v1/customers/search with a bearer token and X-Vault-Purpose: "
            "customer_service"
        )
        answer = http.post(
            "/v1/customers/search",
            json={"phone": phone},
            headers={"Authorization": f"Bearer {token}", "X-Vault-Purpose": "customer_service"},
        )
        answer.raise_for_status()
        (customer,) = answer.json()["customers"]
        request_id = answer.headers["X-Request-Id"]
        fields = customer["fields"]
        echo(
            f"    → {answer.status_code}: phone {fields['phone']['value']}, "
            f"name {fields['name']['value']}; request id {request_id}"
        )
    admin = vault.session(admin_token, purpose="compliance")
    events = [e for e in admin.audit_query(AuditQuery(limit=None)) if e["request_id"] == request_id]
    echo(
        f"    audited as {', '.join(e['action'] for e in events)} under that request id; "
        "the server is stopped again."
    )
