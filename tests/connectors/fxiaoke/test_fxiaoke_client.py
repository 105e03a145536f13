"""The Fenxiang client: the token (reuse, single flight, one refresh), body auth and the error
map, over real HTTP against the sandbox."""

from __future__ import annotations

import threading

import pytest

from connectors.fxiaoke.client import (
    AUTH_CODES,
    CLOUDS,
    QUOTA_CODES,
    RATE_CODES,
    TOKEN_MARGIN,
    TRANSIENT_CODES,
    FxiaokeClient,
    cloud_of,
    error_for,
)
from connectors.fxiaoke.sandbox import FxiaokeSandbox
from vault.errors import (
    ConnectorError,
    PlatformAuthFailed,
    PlatformProtocolError,
    PlatformQuotaExhausted,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)

QUERY = "/cgi/crm/v2/data/query"
ONE = {"dataObjectApiName": "ContactObj", "search_query_info": {"limit": 1}}


def client_of(sandbox: FxiaokeSandbox, **kwargs: object) -> FxiaokeClient:
    creds = sandbox.credentials()
    return FxiaokeClient(
        base_url=sandbox.url,
        app_id=creds["app_id"],
        app_secret=creds["app_secret"],
        permanent_code=creds["permanent_code"],
        open_user_id=creds["open_user_id"],
        **kwargs,  # type: ignore[arg-type]
    )


def test_body_auth_call_returns_the_answer(sandbox: FxiaokeSandbox) -> None:
    client = client_of(sandbox)
    answer = client.call(QUERY, ONE)
    assert answer["errorCode"] == 0 and len(answer["data"]["dataList"]) == 1


def test_token_is_reused_until_shortly_before_it_expires(sandbox: FxiaokeSandbox) -> None:
    now = [1000.0]
    client = client_of(sandbox, clock=lambda: now[0])
    for _ in range(5):
        client.call(QUERY, ONE)
    assert client.token_fetches == 1
    now[0] += 7200 - TOKEN_MARGIN - 1
    client.call(QUERY, ONE)
    assert client.token_fetches == 1
    now[0] += 2
    client.call(QUERY, ONE)
    assert client.token_fetches == 2


def test_token_is_fetched_by_one_caller_at_a_time() -> None:
    with FxiaokeSandbox(seed=1, records=3, token_delay=0.3) as sandbox:
        client = client_of(sandbox)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                client.call(QUERY, ONE)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert client.token_fetches == 1 and len(sandbox.token_calls) == 1


def test_clients_of_the_same_tenant_share_one_token(sandbox: FxiaokeSandbox) -> None:
    for _ in range(12):  # twelve sync runs in one process: more than 10 token calls a minute
        client_of(sandbox).call(QUERY, ONE)
    assert len(sandbox.token_calls) == 1


def test_expired_token_is_refreshed_once_and_the_call_repeated(sandbox: FxiaokeSandbox) -> None:
    client = client_of(sandbox)
    client.call(QUERY, ONE)
    sandbox.expire_tokens()
    assert client.call(QUERY, ONE)["errorCode"] == 0
    assert client.token_fetches == 2


def test_a_token_refused_again_after_the_refresh_is_auth_failed(sandbox: FxiaokeSandbox) -> None:
    client = client_of(sandbox)
    sandbox.fail_with(20016, match=QUERY, times=2)
    with pytest.raises(PlatformAuthFailed) as caught:
        client.call(QUERY, ONE)
    assert caught.value.code == "20016"
    assert client.token_fetches == 2
    assert [p for _, p in sandbox.request_log].count(QUERY) == 2  # one repeat, not a loop


def test_bad_credentials_are_auth_failed_naming_the_code(sandbox: FxiaokeSandbox) -> None:
    creds = sandbox.credentials()
    client = FxiaokeClient(
        base_url=sandbox.url,
        app_id=creds["app_id"],
        app_secret="wrong",
        permanent_code=creds["permanent_code"],
        open_user_id=creds["open_user_id"],
    )
    with pytest.raises(PlatformAuthFailed, match="10006") as caught:
        client.call(QUERY, ONE)
    assert "wrong" not in str(caught.value)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (30004, PlatformRateLimited),
        (14001, PlatformRateLimited),
        (30002, PlatformQuotaExhausted),
        (30003, PlatformQuotaExhausted),
        (-1, PlatformUnavailable),
        (-2, PlatformUnavailable),
        (50009, PlatformUnavailable),
        (20021, PlatformAuthFailed),
        (20022, PlatformAuthFailed),
        (15002, PlatformRejected),
        (10013, PlatformRejected),
    ],
)
def test_error_codes_arriving_with_http_200_map_to_their_kind(
    sandbox: FxiaokeSandbox, code: int, kind: type[ConnectorError]
) -> None:
    client = client_of(sandbox)
    sandbox.fail_with(code, match=QUERY)
    with pytest.raises(kind) as caught:
        client.call(QUERY, ONE)
    assert caught.value.code == str(code)
    assert "traceId E-O." in str(caught.value)


def test_rate_limit_carries_a_wait_and_quota_says_what_to_do(sandbox: FxiaokeSandbox) -> None:
    client = client_of(sandbox)
    sandbox.faults.inject("rate_limit", match=QUERY)
    with pytest.raises(PlatformRateLimited) as limited:
        client.call(QUERY, ONE)
    assert limited.value.retry_after == 1.0
    sandbox.fail_with(30002, match=QUERY)
    with pytest.raises(PlatformQuotaExhausted, match="daily OpenAPI quota") as daily:
        client.call(QUERY, ONE)
    assert "resume" in daily.value.diagnostics()
    sandbox.fail_with(30003, match=QUERY)
    with pytest.raises(PlatformQuotaExhausted, match="buy an 'Open API' call pack"):
        client.call(QUERY, ONE)


def test_real_quota_and_rate_limits_of_the_sandbox_map_too() -> None:
    with FxiaokeSandbox(seed=2, records=3, daily_quota=2) as sandbox:
        client = client_of(sandbox)
        client.call(QUERY, ONE)
        client.call(QUERY, ONE)
        with pytest.raises(PlatformQuotaExhausted):
            client.call(QUERY, ONE)
    with FxiaokeSandbox(seed=2, records=3, endpoint_limit=3) as sandbox:
        client = client_of(sandbox, calls_per_window=0)
        for _ in range(3):
            client.call(QUERY, ONE)
        with pytest.raises(PlatformRateLimited):
            client.call(QUERY, ONE)


def test_client_paces_itself_to_the_endpoint_limit(sandbox: FxiaokeSandbox) -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    client = client_of(sandbox, calls_per_window=3, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        client.call(QUERY, ONE)
    assert slept and sum(slept) == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("server_error", PlatformUnavailable),
        ("drop", PlatformUnavailable),
        ("malformed", PlatformProtocolError),
        ("timeout", PlatformUnavailable),
    ],
)
def test_transport_faults_map_to_retryable_kinds(
    sandbox: FxiaokeSandbox, fault: str, kind: type[ConnectorError]
) -> None:
    client = client_of(sandbox, timeout=0.3)
    client.call(QUERY, ONE)
    sandbox.faults.inject(fault, match=QUERY, seconds=1.0)
    with pytest.raises(kind) as caught:
        client.call(QUERY, ONE)
    assert caught.value.retryable


def test_gateway_http_errors_map_by_status(sandbox: FxiaokeSandbox) -> None:
    client = client_of(sandbox)
    client.call(QUERY, ONE)
    sandbox.fail_with(http_status=502, match=QUERY)
    with pytest.raises(PlatformUnavailable, match="HTTP 502"):
        client.call(QUERY, ONE)
    sandbox.fail_with(http_status=403, match=QUERY)
    with pytest.raises(PlatformProtocolError, match="HTTP 403"):
        client.call(QUERY, ONE)


def test_every_documented_code_maps_to_a_specific_kind() -> None:
    documented = {**AUTH_CODES, **QUOTA_CODES, **TRANSIENT_CODES, **dict.fromkeys(RATE_CODES, "")}
    for code in documented:
        error = error_for(code, "", path=QUERY, trace_id=None, connector="fxiaoke")
        assert not isinstance(error, PlatformRejected), code
    assert isinstance(
        error_for(99999, "", path=QUERY, trace_id=None, connector="fxiaoke"), PlatformRejected
    )


def test_a_refusal_quoting_a_value_keeps_it_out_of_the_error() -> None:
    error = error_for(
        15002,
        "手机号 13800138000 格式不正确, 邮箱 li.si@example.cn",
        path="/cgi/crm/v2/data/create",
        trace_id="E-O.1",
        connector="fxiaoke",
    )
    assert "13800138000" not in str(error) and "li.si@example.cn" not in str(error)
    assert "15002" in str(error)


@pytest.mark.parametrize("cloud", CLOUDS, ids=lambda c: c.key)
def test_the_cloud_decides_the_host_and_region(cloud: object) -> None:
    from connectors.fxiaoke.client import Cloud

    assert isinstance(cloud, Cloud)
    assert cloud_of(cloud.key) is cloud and cloud_of(cloud.label) is cloud
    assert cloud_of(cloud.host) is cloud
    mainland = {"open.fxiaoke.com", "open-hwcloud.fxiaoke.com", "open-ale.fxiaoke.com"}
    assert cloud.region == ("mainland" if cloud.host in mainland else "abroad")


def test_an_unknown_cloud_is_refused_with_the_list() -> None:
    with pytest.raises(ValueError, match="frankfurt"):
        cloud_of("mars")
