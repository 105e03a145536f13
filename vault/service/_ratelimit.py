"""A per-token rate limit: a token bucket for each presented credential, in this process.

The bucket is keyed by a hash of the bearer token (or of the client address when a request
carries none), never the token itself. Each API process keeps its own buckets: with ``N``
workers a token may reach ``N`` times the rate, which the README says.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_BUCKETS = 10_000  # the least recently seen keys are forgotten beyond this


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
