"""Backoff with jitter is bounded; Retry-After is honoured up to the cap; other errors stop."""

from __future__ import annotations

import pytest

from vault.errors import (
    PlatformAuthFailed,
    PlatformProtocolError,
    PlatformRateLimited,
    PlatformUnavailable,
)
from vault.sync.retry import RetryStats, SyncPolicy, call_with_retries

POLICY = SyncPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0, max_rate_limit_wait=10.0)


def failing(errors: list[Exception]) -> object:
    calls = []

    def operation() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "ok"

    operation.calls = calls  # type: ignore[attr-defined]
    return operation


def test_retry_after_is_waited_but_never_longer_than_the_cap() -> None:
    waits: list[float] = []
    operation = failing(
        [
            PlatformRateLimited("429", connector="t", retry_after=2.0),
            PlatformRateLimited("429", connector="t", retry_after=3600.0),
        ]
    )
    stats = RetryStats()
    assert call_with_retries(operation, POLICY, stats, sleep=waits.append) == "ok"  # type: ignore[arg-type]
    assert waits == [2.0, 10.0] and stats.rate_limit_waits == 2


def test_transient_errors_back_off_with_bounded_jitter_then_give_up() -> None:
    waits: list[float] = []
    errors: list[Exception] = [PlatformUnavailable("500", connector="t") for _ in range(10)]
    operation = failing(errors)
    with pytest.raises(PlatformUnavailable):
        call_with_retries(operation, POLICY, RetryStats(), sleep=waits.append)  # type: ignore[arg-type]
    assert len(operation.calls) == POLICY.max_attempts  # type: ignore[attr-defined]
    ceilings = [min(POLICY.max_delay, POLICY.base_delay * 2**n) for n in range(len(waits))]
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(waits, ceilings, strict=True))


def test_garbage_is_retried_and_refused_credentials_are_not() -> None:
    waits: list[float] = []
    operation = failing([PlatformProtocolError("bad JSON", connector="t")])
    assert call_with_retries(operation, POLICY, RetryStats(), sleep=waits.append) == "ok"  # type: ignore[arg-type]
    refused = failing([PlatformAuthFailed("401", connector="t")])
    with pytest.raises(PlatformAuthFailed):
        call_with_retries(refused, POLICY, RetryStats(), sleep=waits.append)  # type: ignore[arg-type]
    assert len(refused.calls) == 1  # type: ignore[attr-defined]
