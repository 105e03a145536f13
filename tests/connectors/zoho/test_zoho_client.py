"""The Zoho client over real HTTP: the token's life, and every failure as one ConnectorError."""

from __future__ import annotations

import threading

import pytest

from connectors.zoho import ZohoConnector
from connectors.zoho.client import DATA_CENTRES, ZohoClient, data_centre
from connectors.zoho.sandbox import ZohoSandbox
from vault.errors import (
    ConfigError,
    PlatformAuthFailed,
    PlatformProtocolError,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)

FIELDS = {"fields": "Last_Name,Email", "per_page": "5"}


def client_for(sandbox: ZohoSandbox, **changes: object) -> ZohoClient:
    options: dict[str, object] = {
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "refresh_token": sandbox.refresh_token,
        "accounts_url": sandbox.url,
        "api_url": sandbox.url,
        **changes,
    }
    return ZohoClient(**options)  # type: ignore[arg-type]


def statuses(sandbox: ZohoSandbox, path: str) -> int:
    return sum(1 for _, p in sandbox.request_log if p == path)


def test_sends_zoho_oauthtoken_and_refreshes_once_when_the_token_expires_mid_run(
    sandbox: ZohoSandbox,
) -> None:
    client = client_for(sandbox)
    assert client.call("GET", "/Contacts", params=FIELDS).status == 200
    sandbox.faults.inject("token_expired", match="/crm/v8/Contacts")
    answer = client.call("GET", "/Contacts", params=FIELDS)
    assert answer.status == 200 and answer.body is not None
    assert client.token_refreshes == 2
    assert statuses(sandbox, "/oauth/v2/token") == 2
    assert statuses(sandbox, "/crm/v8/Contacts") == 3  # one refused, retried once


def test_a_token_refused_again_after_the_refresh_is_auth_failed(sandbox: ZohoSandbox) -> None:
    client = client_for(sandbox)
    client.call("GET", "/Contacts", params=FIELDS)
    sandbox.faults.inject("token_expired", match="/crm/v8/Contacts", times=2)
    with pytest.raises(PlatformAuthFailed) as raised:
        client.call("GET", "/Contacts", params=FIELDS)
    assert raised.value.code == "INVALID_TOKEN" and not raised.value.retryable
    assert client.token_refreshes == 2  # refreshed once, not in a loop


def test_refreshes_before_expiry_without_being_refused(sandbox: ZohoSandbox) -> None:
    now = [1000.0]
    client = client_for(sandbox, clock=lambda: now[0], refresh_margin=60.0)
    client.call("GET", "/Contacts", params=FIELDS)
    now[0] += 3600 - 30  # 30 s left: inside the margin
    client.call("GET", "/Contacts", params=FIELDS)
    assert client.token_refreshes == 2
    assert statuses(sandbox, "/crm/v8/Contacts") == 2  # no 401 was needed


def test_a_wrong_refresh_token_is_auth_failed_naming_zohos_error(sandbox: ZohoSandbox) -> None:
    client = client_for(sandbox, refresh_token="1000.revoked.token")
    with pytest.raises(PlatformAuthFailed) as raised:
        client.call("GET", "/Contacts", params=FIELDS)
    assert raised.value.code == "invalid_code"
    assert sandbox.refresh_token not in str(raised.value)


def test_a_wrong_client_is_auth_failed(sandbox: ZohoSandbox) -> None:
    with pytest.raises(PlatformAuthFailed, match="invalid_client"):
        client_for(sandbox, client_secret="x").call("GET", "/Contacts", params=FIELDS)


def test_the_token_throttle_is_rate_limited(sandbox: ZohoSandbox) -> None:
    for _ in range(10):
        client_for(sandbox).call("GET", "/Contacts", params=FIELDS)
    with pytest.raises(PlatformRateLimited, match="10 per 10 minutes"):
        client_for(sandbox).call("GET", "/Contacts", params=FIELDS)


def test_429_is_rate_limited_with_zohos_code(sandbox: ZohoSandbox) -> None:
    client = client_for(sandbox)
    sandbox.faults.inject("rate_limit", match="/crm/v8/")
    with pytest.raises(PlatformRateLimited) as raised:
        client.call("GET", "/Contacts", params=FIELDS)
    assert raised.value.code == "TOO_MANY_REQUESTS" and raised.value.retryable
    assert raised.value.retry_after is None  # Zoho sends no Retry-After: the engine backs off


def test_500_is_unavailable(sandbox: ZohoSandbox) -> None:
    client = client_for(sandbox)
    sandbox.faults.inject("server_error", match="/crm/v8/")
    with pytest.raises(PlatformUnavailable) as raised:
        client.call("GET", "/Contacts", params=FIELDS)
    assert raised.value.code == "INTERNAL_ERROR" and raised.value.retryable


def test_a_body_that_is_not_json_is_a_protocol_error(sandbox: ZohoSandbox) -> None:
    client = client_for(sandbox)
    sandbox.faults.inject("malformed", match="/crm/v8/")
    with pytest.raises(PlatformProtocolError, match="not JSON"):
        client.call("GET", "/Contacts", params=FIELDS)


def test_a_malformed_token_answer_is_a_protocol_error(sandbox: ZohoSandbox) -> None:
    sandbox.faults.inject("malformed", match="/oauth/v2/token")
    with pytest.raises(PlatformProtocolError):
        client_for(sandbox).call("GET", "/Contacts", params=FIELDS)


def test_a_dropped_connection_is_unavailable(sandbox: ZohoSandbox) -> None:
    client = client_for(sandbox)
    sandbox.faults.inject("drop", match="/crm/v8/")
    with pytest.raises(PlatformUnavailable, match=r"dropped|transport|connect"):
        client.call("GET", "/Contacts", params=FIELDS)


def test_a_timeout_is_unavailable(sandbox: ZohoSandbox) -> None:
    client = client_for(sandbox, timeout=0.3)
    client.call("GET", "/Contacts", params=FIELDS)
    sandbox.faults.inject("timeout", match="/crm/v8/", seconds=1.0)
    with pytest.raises(PlatformUnavailable, match="timed out"):
        client.call("GET", "/Contacts", params=FIELDS)


def test_a_refused_connection_is_unavailable() -> None:
    client = ZohoClient(
        client_id="a", client_secret="b", refresh_token="c",
        accounts_url="http://127.0.0.1:9", api_url="http://127.0.0.1:9", timeout=1.0,
    )  # fmt: skip
    with pytest.raises(PlatformUnavailable, match="connect"):
        client.call("GET", "/Contacts", params=FIELDS)


def test_a_documented_4xx_is_rejected_naming_the_parameter_not_the_query(
    sandbox: ZohoSandbox,
) -> None:
    client = client_for(sandbox)
    with pytest.raises(PlatformRejected) as raised:
        client.call("GET", "/Contacts/search", params={"email": "secret.person@example.cn",
                                                       "per_page": "500"})  # fmt: skip
    assert raised.value.code == "INVALID_DATA"
    assert "per_page" in str(raised.value) and "secret.person" not in str(raised.value)


def test_an_unknown_module_is_rejected(sandbox: ZohoSandbox) -> None:
    with pytest.raises(PlatformRejected) as raised:
        client_for(sandbox).call("GET", "/Kontakte", params=FIELDS)
    assert raised.value.code == "INVALID_MODULE"


def test_at_most_five_requests_in_flight(sandbox: ZohoSandbox) -> None:
    client = client_for(sandbox)
    client.call("GET", "/Contacts", params=FIELDS)
    sandbox.faults.inject("timeout", match="/crm/v8/", times=12, seconds=0.3)
    sandbox.max_in_flight = 0
    threads = [
        threading.Thread(target=client.call, args=("GET", "/Contacts"), kwargs={"params": FIELDS})
        for _ in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sandbox.max_in_flight == 5


@pytest.mark.parametrize("code", sorted(DATA_CENTRES))
def test_only_the_cn_data_centre_is_mainland(code: str) -> None:
    settings = {"client_id": "a", "client_secret": "b", "refresh_token": "c", "data_centre": code}
    connector = ZohoConnector(settings)
    assert connector.region == ("mainland" if code == "CN" else "abroad")
    assert connector.client._accounts_url == DATA_CENTRES[code].accounts_url
    connector.close()


def test_an_unknown_data_centre_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="AE"):
        data_centre("AE")
