"""Request ids, the access log (ids and outcomes, no PII), the rate limit, health, TLS warning."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import structlog

from tests.service.conftest import PHONE, World
from vault import Vault
from vault.audit import AuditQuery
from vault.log import configure_logging
from vault.service import ServiceConfig
from vault.service._ratelimit import RateLimiter
from vault.service.server import exposure_warning, is_loopback, running


def test_health_needs_no_token_and_says_only_up_and_reachable(world: World) -> None:
    answer = world.http.get("/v1/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "database": "reachable"}
    assert world.admin.audit_query(AuditQuery(action="authenticate")) == []


def test_the_request_id_is_in_the_response_and_in_the_audit_event(world: World) -> None:
    given = "req-0123456789abcdef"
    answer = world.http.post(
        "/v1/customers/search",
        json={"phone": PHONE},
        headers={**world.headers("support"), "X-Request-Id": given},
    )
    assert answer.headers["X-Request-Id"] == given
    events = world.admin.audit_query(AuditQuery(actor="p-support"))
    assert [e["action"] for e in events] == ["search", "read"]
    assert {e["request_id"] for e in events} == {given}
    unusable = world.http.get("/v1/health", headers={"X-Request-Id": "bad id with spaces"})
    assert unusable.headers["X-Request-Id"] != "bad id with spaces"
    assert len(unusable.headers["X-Request-Id"]) == 32


@contextmanager
def logging_at_info() -> Iterator[None]:
    configure_logging(level="INFO", json=True)  # writes to the sys.stderr of now (captured)
    try:
        yield
    finally:
        configure_logging(level="WARNING")
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.__stderr__))


def test_the_access_log_names_ids_and_outcomes_never_data(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    with logging_at_info():
        requests(world)
        # The server writes a request's access line after its response has gone out: wait
        # (briefly) for the last one rather than read the log before it is written.
        output = ""
        deadline = time.monotonic() + 5
        while output.count('"event": "request"') < 4 and time.monotonic() < deadline:
            output += capsys.readouterr().err
            time.sleep(0.02)
    check_access_log(world, output)


def requests(world: World) -> None:
    headers = world.headers("admin")
    world.http.post(
        "/v1/customers",
        json={"fields": {"name": "王小明", "phone": "13700137000", "email": "w@example.cn"}},
        headers=headers,
    )
    world.http.post("/v1/customers/search", json={"email": "zhang@example.cn"}, headers=headers)
    world.http.get(f"/v1/customers/{world.customer_id}", headers={"Authorization": "Bearer vt_x"})
    world.http.get("/v1/audit/events", params={"actor": "p-support"}, headers=headers)


def check_access_log(world: World, output: str) -> None:
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("event") == "request"]
    assert [(r["method"], r["route"], r["status"], r["outcome"]) for r in access] == [
        ("POST", "/v1/customers", 201, "ok"),
        ("POST", "/v1/customers/search", 200, "ok"),
        ("GET", "/v1/customers/{customer_id}", 401, "denied"),
        ("GET", "/v1/audit/events", 200, "ok"),
    ]
    assert [r["principal"] for r in access] == ["p-admin", "p-admin", None, "p-admin"]
    assert all(len(r["request_id"]) == 32 and r["duration_ms"] >= 0 for r in access)
    for secret in (
        "王小明",
        "13700137000",
        "w@example.cn",
        "zhang@example.cn",
        "p-support",
        world.tokens["admin"],
        "vt_x",
        "张三",
    ):
        assert secret not in output


def test_a_token_over_its_rate_gets_429_with_retry_after(
    initialised: tuple[Vault, str],
) -> None:
    vault, token = initialised
    other = vault.session(token, purpose="administration").add_principal("other", ["auditor"])
    with (
        running(vault, ServiceConfig(rate=0.5, burst=3)) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        headers = {"Authorization": f"Bearer {token}", "X-Vault-Purpose": "compliance"}
        statuses = [http.get("/v1/audit/public-key", headers=headers).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = http.get("/v1/audit/public-key", headers=headers)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
        assert refused.json()["error"]["type"] == "RateLimited"
        assert "X-Request-Id" in refused.headers
        # another token has a bucket of its own
        mine = {"Authorization": f"Bearer {other}", "X-Vault-Purpose": "compliance"}
        assert http.get("/v1/audit/public-key", headers=mine).status_code == 200


def test_extra_spaces_or_a_second_authorization_header_do_not_bypass_the_rate_limit(
    initialised: tuple[Vault, str],
) -> None:
    """The limit is the principal's, counted after authentication: however the token is
    spelt (spaces, case of the scheme) it is one bucket; two Authorization headers are 400."""
    vault, token = initialised
    with (
        running(vault, ServiceConfig(rate=0.01, burst=5)) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        statuses = []
        for n in range(30):
            scheme = ("Bearer", "bearer", "BEARER")[n % 3]
            headers = [
                ("Authorization", scheme + " " * (1 + n % 4) + token),
                ("X-Vault-Purpose", "compliance"),
            ]
            statuses.append(http.get("/v1/audit/public-key", headers=headers).status_code)
        assert statuses.count(200) == 5 and statuses.count(429) == 25, statuses
        for second in (token, "vt_forged", "x"):
            twice = http.get(
                "/v1/audit/public-key",
                headers=[
                    ("Authorization", f"Bearer {token}"),
                    ("Authorization", f"Bearer {second}"),
                    ("X-Vault-Purpose", "compliance"),
                ],
            )
            assert twice.status_code == 400, twice.text
            assert twice.json()["error"]["type"] == "BadRequest"
            assert "Authorization" in twice.json()["error"]["message"]
            assert token not in twice.text


def test_forged_tokens_from_one_client_share_that_clients_bucket(
    initialised: tuple[Vault, str],
) -> None:
    vault, _ = initialised
    with (
        running(vault, ServiceConfig(rate=0.01, burst=3)) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        statuses = [
            http.get(
                "/v1/audit/public-key", headers={"Authorization": f"Bearer vt_forged{n}"}
            ).status_code
            for n in range(6)
        ]
        assert statuses == [401, 401, 401, 429, 429, 429]


def test_the_bucket_refills_at_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 2, clock=lambda: now[0])
    key = RateLimiter.key("Bearer t")
    assert [limiter.acquire(key) for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire(key) == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.acquire(key) == 0.0
    assert RateLimiter.retry_after(0.2) == "1" and RateLimiter.retry_after(1.5) == "2"


@pytest.mark.parametrize(
    ("host", "tls", "warned"),
    [
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("localhost", False, False),
        ("0.0.0.0", False, True),  # noqa: S104 (a host name under test, not a bind)
        ("192.168.1.10", False, True),
        ("vault.example.cn", False, True),
        ("0.0.0.0", True, False),  # noqa: S104
    ],
)
def test_binding_beyond_loopback_without_tls_warns(host: str, tls: bool, warned: bool) -> None:
    warning = exposure_warning(host, tls)
    assert (warning is not None) == warned
    assert is_loopback(host) == (host in ("127.0.0.1", "::1", "localhost"))
    if warning:
        assert "without TLS" in warning and "--ssl-certfile" in warning
