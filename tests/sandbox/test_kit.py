"""The sandbox kit serves a platform's answers over real HTTP on loopback, and its faults."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from vault.sandbox import Request, Response, Sandbox, json_response


class CounterSandbox(Sandbox):
    """A toy platform: counts calls; a token that `expire_tokens` invalidates."""

    name = "counter"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.calls = 0
        self.token_valid = True

    def handle(self, request: Request) -> Response:
        if not self.token_valid:
            return json_response({"code": "INVALID_TOKEN"}, 401)
        self.calls += 1
        return json_response({"calls": self.calls, "path": request.path, "q": request.arg("q")})

    def credentials(self) -> dict[str, str]:
        return {"token": "t"}

    def expire_tokens(self) -> None:
        self.token_valid = False


@pytest.fixture
def sandbox() -> Iterator[CounterSandbox]:
    with CounterSandbox(seed=1) as running:
        assert isinstance(running, CounterSandbox)
        yield running


def test_serves_the_platform_answer_on_loopback(sandbox: CounterSandbox) -> None:
    assert sandbox.url.startswith("http://127.0.0.1:")
    answer = httpx.get(f"{sandbox.url}/api/x", params={"q": "中文"})
    assert answer.json() == {"calls": 1, "path": "/api/x", "q": "中文"}
    assert sandbox.request_log == [("GET", "/api/x")]
    assert json.loads(json.dumps(sandbox.announce()))["credentials"] == {"token": "t"}


def test_rate_limit_fault_answers_429_with_retry_after_to_matching_requests_only(
    sandbox: CounterSandbox,
) -> None:
    sandbox.faults.inject("rate_limit", match="/limited", after=1, times=2, retry_after=3)
    assert httpx.get(f"{sandbox.url}/other").status_code == 200
    assert httpx.get(f"{sandbox.url}/limited").status_code == 200  # `after=1` lets one through
    for _ in range(2):
        answer = httpx.get(f"{sandbox.url}/limited")
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
    assert httpx.get(f"{sandbox.url}/limited").status_code == 200
    assert sandbox.faults.injected == [("rate_limit", "/limited")] * 2


def test_server_error_malformed_and_drop_faults(sandbox: CounterSandbox) -> None:
    sandbox.faults.inject("server_error")
    assert httpx.get(sandbox.url).status_code == 500
    sandbox.faults.inject("malformed")
    answer = httpx.get(sandbox.url)
    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        answer.json()
    sandbox.faults.inject("drop")
    with pytest.raises(httpx.TransportError):
        httpx.get(sandbox.url)
    assert httpx.get(sandbox.url).status_code == 200


def test_timeout_fault_holds_the_answer_past_the_client_timeout(sandbox: CounterSandbox) -> None:
    sandbox.faults.inject("timeout", seconds=1.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(sandbox.url, timeout=0.2)


def test_token_expired_fault_lets_the_platform_answer_as_it_does_for_an_old_token(
    sandbox: CounterSandbox,
) -> None:
    sandbox.faults.inject("token_expired")
    answer = httpx.get(sandbox.url)
    assert answer.status_code == 401 and answer.json() == {"code": "INVALID_TOKEN"}


def test_unknown_fault_kind_is_refused(sandbox: CounterSandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sandbox.faults.inject("meteor")
