"""The HTTP kit every platform connector's client builds on, written once.

* :func:`transport_error` / :func:`mapped_transport_errors`: every ``httpx.HTTPError`` becomes
  the vault's :class:`~vault.errors.ConnectorError` kind, raised ``from`` the httpx error
  (``tests/sync/test_http_kit.py`` walks httpx's exception tree, so a new httpx exception
  fails a test rather than escaping a sync):

  ==========================================  ==========================================
  httpx                                       vault
  ==========================================  ==========================================
  ``TimeoutException`` (connect/read/write/   :class:`PlatformUnavailable` "timed out"
  pool)
  ``ConnectError``                            :class:`PlatformUnavailable` "could not connect"
  ``RemoteProtocolError``                     :class:`PlatformUnavailable` "connection dropped"
  any other ``TransportError`` (network,      :class:`PlatformUnavailable` "connection failed"
  proxy, local protocol, unsupported scheme)
  ``DecodingError``, ``TooManyRedirects``     :class:`PlatformProtocolError`
  ``HTTPStatusError``                         as :func:`status_error` maps its status
  ==========================================  ==========================================

* :func:`status_error` and :func:`json_answer`: the answer of a platform that answers every call
  with HTTP 200 (429 -> rate limited with :func:`retry_after`, 5xx -> unavailable, any other
  status or a body that is not JSON -> protocol error).
* :func:`retry_after`: a ``Retry-After`` header, in seconds or as an HTTP date, never negative
  and capped at :data:`RETRY_AFTER_CAP`.
* :class:`TokenSlot`: one access token, fetched by one caller at a time (single flight) and
  reused until shortly before it expires.

Messages name what was called and the exception's kind, never the URL's query or a body (which
may hold a customer's value).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

import httpx

from vault.errors import (
    ConnectorError,
    PlatformProtocolError,
    PlatformRateLimited,
    PlatformUnavailable,
)

__all__ = [
    "RETRY_AFTER_CAP",
    "TRANSPORT_ERRORS",
    "Lease",
    "TokenSlot",
    "json_answer",
    "mapped_transport_errors",
    "retry_after",
    "status_error",
    "transport_error",
]

RETRY_AFTER_CAP = 900.0
"""The longest wait a ``Retry-After`` header can ask for (seconds); a longer one is cut to it."""


# --- transport errors ------------------------------------------------------------------------


_TIMED_OUT = (PlatformUnavailable, "timed out")
_FAILED = (PlatformUnavailable, "connection failed")
TRANSPORT_ERRORS: dict[type[httpx.HTTPError], tuple[type[ConnectorError], str]] = {
    httpx.ConnectTimeout: _TIMED_OUT,
    httpx.ReadTimeout: _TIMED_OUT,
    httpx.WriteTimeout: _TIMED_OUT,
    httpx.PoolTimeout: _TIMED_OUT,
    httpx.TimeoutException: _TIMED_OUT,
    httpx.ConnectError: (PlatformUnavailable, "could not connect"),
    httpx.ReadError: _FAILED,
    httpx.WriteError: _FAILED,
    httpx.CloseError: _FAILED,
    httpx.NetworkError: _FAILED,
    httpx.RemoteProtocolError: (PlatformUnavailable, "connection dropped without an answer"),
    httpx.LocalProtocolError: _FAILED,
    httpx.ProtocolError: _FAILED,
    httpx.ProxyError: _FAILED,
    httpx.UnsupportedProtocol: _FAILED,
    httpx.TransportError: _FAILED,
    httpx.DecodingError: (PlatformProtocolError, "the answer's content encoding does not decode"),
    httpx.TooManyRedirects: (PlatformProtocolError, "too many redirects"),
    httpx.RequestError: (PlatformUnavailable, "request failed"),
    httpx.HTTPError: (PlatformUnavailable, "request failed"),
}
"""Every httpx error class, named one by one (a test fails when httpx grows one more);
``HTTPStatusError`` is mapped by its status, as :func:`status_error` does."""


def transport_error(exc: httpx.HTTPError, *, connector: str, what: str) -> ConnectorError:
    """The vault error for an httpx failure of the request ``what`` (see the module's table)."""
    if isinstance(exc, httpx.HTTPStatusError):
        error = status_error(exc.response, connector=connector, what=what)
        if error is not None:
            return error
    kind = next(k for k in type(exc).__mro__ if k in TRANSPORT_ERRORS)
    error_class, reason = TRANSPORT_ERRORS[kind]
    return error_class(f"{what}: {reason} ({type(exc).__name__})", connector=connector)


@contextmanager
def mapped_transport_errors(*, connector: str, what: str) -> Iterator[None]:
    """Run the block; an ``httpx.HTTPError`` in it is raised as :func:`transport_error`'s
    answer, ``from`` the httpx error."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise transport_error(exc, connector=connector, what=what) from exc


# --- answers ---------------------------------------------------------------------------------


def status_error(
    response: httpx.Response, *, connector: str, what: str, expected: str = "200"
) -> ConnectorError | None:
    """None for HTTP 200; otherwise the error of a platform that answers every call with 200:
    429 is :class:`PlatformRateLimited` (with :func:`retry_after`), 5xx
    :class:`PlatformUnavailable`, anything else :class:`PlatformProtocolError`."""
    status = response.status_code
    if status == 200:
        return None
    if status == 429:
        return PlatformRateLimited(
            f"{what}: HTTP 429",
            connector=connector,
            retry_after=retry_after(response.headers.get("Retry-After")),
        )
    if status >= 500:
        return PlatformUnavailable(f"{what}: HTTP {status}", connector=connector)
    return PlatformProtocolError(
        f"{what}: unexpected HTTP {status} (the platform answers {expected})", connector=connector
    )


def json_answer(response: httpx.Response, *, connector: str, what: str) -> Any:
    """The answer's JSON after :func:`status_error` found nothing wrong with its status."""
    error = status_error(response, connector=connector, what=what)
    if error is not None:
        raise error
    try:
        return response.json()
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise PlatformProtocolError(f"{what}: the answer is not JSON", connector=connector) from exc


def retry_after(
    value: str | None, *, now: datetime | None = None, cap: float = RETRY_AFTER_CAP
) -> float | None:
    """The seconds a ``Retry-After`` header asks to wait: a number of seconds or an HTTP date
    (RFC 9110 §10.2.3). Never negative, at most ``cap``; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(0.0, seconds), cap)


# --- tokens ----------------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Lease(Generic[T]):
    """A token and when to stop using it: ``margin`` seconds before ``expires_at`` (on the
    slot's clock); ``expires_at`` None means until the platform refuses it."""

    value: T
    expires_at: float | None = None
    margin: float = 0.0

    def fresh(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at - self.margin


class TokenSlot(Generic[T]):
    """Where one access token lives: fetched on first use, reused while fresh, fetched again
    shortly before it expires or when the platform refused it, and by one caller at a time.

    Callers that find a fetch under way wait for it and use its token (token endpoints allow
    few calls and some refuse concurrent ones). ``fetch`` returns a :class:`Lease`; it runs
    under the slot's lock, which is reentrant, so a fetch may call through the client.
    """

    def __init__(
        self,
        fetch: Callable[[], Lease[T]] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        lease: Lease[T] | None = None,
    ) -> None:
        self._fetch = fetch or _no_fetch
        self._clock = clock
        self._lease = lease
        self._lock = threading.RLock()
        self.fetches = 0  # how many times a fetch ran, failed ones included (tests read it)

    @property
    def lease(self) -> Lease[T] | None:
        return self._lease

    def get(self, fetch: Callable[[], Lease[T]] | None = None) -> T:
        """The current token; a new one when there is none or it is about to expire.

        ``fetch``: the caller's own way to fetch one, where clients share a slot."""
        lease = self._lease
        if lease is not None and lease.fresh(self._clock()):
            return lease.value
        with self._lock:
            lease = self._lease
            if lease is not None and lease.fresh(self._clock()):
                return lease.value
            return self._renew_locked(fetch)

    def renew(self, refused: T | None = None, fetch: Callable[[], Lease[T]] | None = None) -> T:
        """A new token because the platform refused ``refused``; when another caller already
        replaced that one, its replacement. Without ``refused``: always a new one."""
        with self._lock:
            lease = self._lease
            if refused is not None and lease is not None and lease.value != refused:
                return lease.value
            return self._renew_locked(fetch)

    def put(self, lease: Lease[T]) -> None:
        """Use ``lease`` from now on (a token obtained another way, e.g. an authorisation code)."""
        with self._lock:
            self._lease = lease

    def invalidate(self, refused: T) -> None:
        """Forget ``refused`` (unless another caller already replaced it)."""
        with self._lock:
            if self._lease is not None and self._lease.value == refused:
                self._lease = None

    def _renew_locked(self, fetch: Callable[[], Lease[T]] | None) -> T:
        self.fetches += 1
        self._lease = (fetch or self._fetch)()
        return self._lease.value


def _no_fetch() -> Lease[Any]:
    raise TypeError("this TokenSlot has no fetch of its own: pass fetch= to get() or renew()")
