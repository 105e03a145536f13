"""The connector kit (vault/sync/http.py): transport errors, Retry-After, the token slot."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from vault.errors import (
    ConnectorError,
    PlatformProtocolError,
    PlatformRateLimited,
    PlatformUnavailable,
)
from vault.sync.http import (
    RETRY_AFTER_CAP,
    TRANSPORT_ERRORS,
    Lease,
    TokenSlot,
    json_answer,
    mapped_transport_errors,
    retry_after,
    transport_error,
)


def every_subclass(cls: type[BaseException]) -> set[type[BaseException]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= every_subclass(sub)
    return found


def make(kind: type[httpx.HTTPError]) -> httpx.HTTPError:
    request = httpx.Request("GET", "https://platform.example/api?phone=13800138000")
    if issubclass(kind, httpx.HTTPStatusError):
        response = httpx.Response(503, request=request)
        return kind("boom", request=request, response=response)
    return kind("boom", request=request)


HTTPX_ERRORS = sorted(every_subclass(httpx.HTTPError), key=lambda kind: kind.__name__)


def test_every_httpx_error_class_is_named_in_the_map() -> None:
    """httpx growing a new exception fails here: someone decides what it means to a sync."""
    unmapped = [k.__name__ for k in HTTPX_ERRORS if k not in TRANSPORT_ERRORS]
    assert unmapped == ["HTTPStatusError"]  # mapped by its status, as status_error does
    assert httpx.HTTPStatusError not in TRANSPORT_ERRORS


@pytest.mark.parametrize("kind", HTTPX_ERRORS, ids=lambda kind: kind.__name__)
def test_every_httpx_error_maps_to_a_specific_connector_error(
    kind: type[httpx.HTTPError],
) -> None:
    error = make(kind)
    mapped = transport_error(error, connector="toy", what="GET /api")
    assert isinstance(mapped, ConnectorError) and type(mapped) is not ConnectorError
    assert mapped.retryable == isinstance(mapped, PlatformUnavailable | PlatformProtocolError)
    assert "13800138000" not in str(mapped)  # the URL's query never reaches the message
    with pytest.raises(type(mapped)) as raised, mapped_transport_errors(connector="toy", what="x"):
        raise error
    assert raised.value.__cause__ is error


def test_transport_failures_are_unavailable_and_say_which() -> None:
    timeout = transport_error(make(httpx.ReadTimeout), connector="toy", what="GET /a")
    refused = transport_error(make(httpx.ConnectError), connector="toy", what="GET /a")
    dropped = transport_error(make(httpx.RemoteProtocolError), connector="toy", what="GET /a")
    assert isinstance(timeout, PlatformUnavailable) and "timed out" in str(timeout)
    assert isinstance(refused, PlatformUnavailable) and "could not connect" in str(refused)
    assert isinstance(dropped, PlatformUnavailable) and "dropped" in str(dropped)
    assert isinstance(
        transport_error(make(httpx.DecodingError), connector="toy", what="x"),
        PlatformProtocolError,
    )


NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),  # never negative
        ("86400", RETRY_AFTER_CAP),  # capped
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),  # a date passed
        ("soon", None),
        ("nan", None),
    ],
)
def test_retry_after_reads_seconds_or_an_http_date_never_negative_and_capped(
    header: str | None, seconds: float | None
) -> None:
    assert retry_after(header, now=NOW) == seconds


def test_a_429_carries_the_retry_after_and_a_5xx_is_unavailable() -> None:
    request = httpx.Request("POST", "https://platform.example/router")
    limited = httpx.Response(429, headers={"Retry-After": "-5"}, request=request)
    with pytest.raises(PlatformRateLimited) as raised:
        json_answer(limited, connector="toy", what="router")
    assert raised.value.retry_after == 0.0
    with pytest.raises(PlatformUnavailable):
        json_answer(httpx.Response(502, request=request), connector="toy", what="router")
    with pytest.raises(PlatformProtocolError, match="not JSON"):
        json_answer(
            httpx.Response(200, content=b"<html>", request=request), connector="toy", what="router"
        )
    assert json_answer(
        httpx.Response(200, json={"ok": 1}, request=request), connector="toy", what="router"
    ) == {"ok": 1}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_reused_until_shortly_before_it_expires() -> None:
    clock = Clock()
    issued: list[str] = []

    def fetch() -> Lease[str]:
        issued.append(f"t{len(issued)}")
        return Lease(issued[-1], clock.now + 3600, margin=60)

    slot = TokenSlot(fetch, clock=clock)
    assert slot.get() == slot.get() == "t0"
    clock.now += 3600 - 61
    assert slot.get() == "t0"
    clock.now += 2  # inside the margin
    assert slot.get() == "t1" and slot.fetches == 2


def test_a_refused_token_is_renewed_once_even_when_many_callers_saw_it_refused() -> None:
    issued: list[str] = []

    def fetch() -> Lease[str]:
        issued.append(f"t{len(issued)}")
        return Lease(issued[-1])

    slot = TokenSlot(fetch)
    refused = slot.get()
    assert [slot.renew(refused) for _ in range(3)] == ["t1", "t1", "t1"]
    assert slot.fetches == 2


def test_concurrent_callers_share_one_fetch() -> None:
    def fetch() -> Lease[str]:
        time.sleep(0.2)  # a slow token endpoint
        return Lease("only")

    slot = TokenSlot(fetch)
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(slot.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == ["only"] * 8 and slot.fetches == 1
