"""Retries, backoff and rate-limit waits: the engine's, once, for every connector.

``PlatformUnavailable`` and ``PlatformProtocolError`` are retried with exponential backoff and
full jitter, at most ``max_attempts`` times in all; ``PlatformRateLimited`` waits its
``retry_after`` (capped at ``max_rate_limit_wait``; exponential backoff when the platform gave
none), at most ``max_rate_limit_waits`` times in a row. Every other error (auth, quota,
rejection, a bug) is raised at once: the engine stops with the cursor at the last good batch.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from vault.errors import PlatformProtocolError, PlatformRateLimited, PlatformUnavailable

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncPolicy:
    """How the engine retries. Tests shrink the delays (``Vault.sync_policy = SyncPolicy(...)``)."""

    max_attempts: int = 6  # tries of one request on 5xx, timeouts and garbage, first included
    base_delay: float = 0.5  # seconds before the first retry; doubled each time
    max_delay: float = 30.0  # longest backoff between two tries
    max_rate_limit_wait: float = 120.0  # Retry-After is honoured up to this many seconds
    max_rate_limit_waits: int = 20  # rate-limit answers in a row before giving up
    batch_size: int = 500  # records per committed batch of an import

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: a uniform wait in [0, min(max_delay, base * 2**attempt)]."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return (rng or _rng).uniform(0, ceiling)


_rng = random.Random()  # noqa: S311  (jitter, not a secret)


@dataclass(slots=True)
class RetryStats:
    retries: int = 0
    rate_limit_waits: int = 0
    waited_seconds: float = 0.0


def call_with_retries(
    operation: Callable[[], T],
    policy: SyncPolicy,
    stats: RetryStats,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[str, float], None] | None = None,
) -> T:
    """Run ``operation``, retrying the transient failures as the module docstring says."""
    attempt = 0
    rate_limited = 0
    while True:
        try:
            return operation()
        except PlatformRateLimited as error:
            rate_limited += 1
            if rate_limited > policy.max_rate_limit_waits:
                raise
            if error.retry_after is not None:
                wait = min(max(error.retry_after, 0.0), policy.max_rate_limit_wait)
            else:
                wait = policy.backoff(rate_limited)
            stats.rate_limit_waits += 1
            kind = type(error).__name__
        except (PlatformUnavailable, PlatformProtocolError) as error:
            attempt += 1
            if attempt >= policy.max_attempts:
                raise
            wait = policy.backoff(attempt - 1)
            stats.retries += 1
            kind = type(error).__name__
        stats.waited_seconds += wait
        if on_wait is not None:
            on_wait(kind, wait)
        sleep(wait)
