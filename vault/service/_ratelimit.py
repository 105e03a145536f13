"""A per-principal rate limit: a token bucket for each caller, in this process.

A request is counted once its caller is known: after authentication, in the bucket of the
authenticated principal (however the token was spelt: spaces, the scheme's case), so that no
spelling of one credential gets a bucket of its own. A request without a token, and one whose
token is refused, is counted in the bucket of its client address. Buckets are keyed by a hash
(``principal:NAME``, ``client:ADDRESS``), never a token. Each API process keeps its own
buckets: with ``N`` workers a principal may reach ``N`` times the rate, which the README says.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_BUCKETS = 10_000  # the least recently seen keys are forgotten beyond this
REFUSAL = "too many requests for this token: slow down and retry after the time given"


class RateLimited(Exception):
    """The caller's bucket is empty: answered 429 with ``Retry-After`` (``wait`` seconds)."""

    def __init__(self, wait: float) -> None:
        super().__init__(REFUSAL)
        self.wait = wait


class RateLimiter:
    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(credential: str) -> bytes:
        return hashlib.sha256(b"vault:rate-limit:v1\x00" + credential.encode()).digest()

    def check(self, credential: str) -> None:
        """Take one request from ``credential``'s bucket, or raise :class:`RateLimited`."""
        wait = self.acquire(self.key(credential))
        if wait > 0:
            raise RateLimited(wait)

    def acquire(self, key: bytes) -> float:
        """Take one request from ``key``'s bucket: 0.0 when allowed, else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                wait = 0.0
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        return wait

    @staticmethod
    def retry_after(wait: float) -> str:
        """``Retry-After`` is whole seconds: round up, at least one."""
        return str(max(1, math.ceil(wait)))
