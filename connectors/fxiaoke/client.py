"""The Fenxiang Xiaoke (纷享销客, ShareCRM) OpenAPI over httpx: token, body auth, error map.

The protocol (``shared/protocols/crm-zoho-fxiaoke.md`` Part B):

* ``POST /cgi/corpAccessToken/get/V2`` with ``appId``, ``appSecret``, ``permanentCode`` gives a
  ``corpAccessToken`` (``expiresIn`` seconds, 7200) and the tenant's ``corpId``. The token is
  reused until :data:`TOKEN_MARGIN` seconds before it expires (as Fenxiang's own demo does),
  shared by every client of the same tenant in the process (one per sync run), and fetched by
  one caller at a time: the token endpoint allows no concurrent calls and about 10 a minute.
* Every business call is ``POST`` + JSON, with ``corpAccessToken``, ``corpId`` and
  ``currentOpenUserId`` (the operator, whose data permissions apply) at the top level of the
  body and the payload under ``data``; ``?thirdTraceId=<uuid4>`` on each call.
* Every answer is HTTP 200: ``errorCode == 0`` is success and anything else is an error, mapped by
  :func:`error_for`. ``20016`` (token missing or expired) makes the client fetch a new token and
  repeat the call once.

Errors never carry a value of the request: only paths, codes, Fenxiang's message and its
``traceId`` (which Fenxiang support asks for).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from vault.errors import (
    ConnectorError,
    PlatformAuthFailed,
    PlatformProtocolError,
    PlatformQuotaExhausted,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from vault.sync.http import Lease, TokenSlot, json_answer, mapped_transport_errors

TOKEN_PATH = "/cgi/corpAccessToken/get/V2"  # noqa: S105  (a path, not a secret)
TOKEN_MARGIN = 180.0
"""Seconds before ``expiresIn`` runs out at which the token is fetched anew."""

WINDOW_SECONDS = 20.0
"""Fenxiang's per-endpoint limit counts calls in a window of 20 seconds (100 per window)."""

# --- hosts ("所在云") ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cloud:
    key: str
    label: str
    host: str
    region: str  # "mainland" | "abroad"


CLOUDS: tuple[Cloud, ...] = (
    Cloud("fxiaoke", "纷享云", "open.fxiaoke.com", "mainland"),
    Cloud("huawei", "华为云", "open-hwcloud.fxiaoke.com", "mainland"),
    Cloud("alibaba", "阿里云", "open-ale.fxiaoke.com", "mainland"),
    Cloud("hongkong", "香港华为", "open-ksc.sharecrm.com", "abroad"),
    Cloud("frankfurt", "法兰克福", "open-hws.fxiaoke.com", "abroad"),
    Cloud("north_america", "北美云", "open-na.sharecrm.com", "abroad"),
)


def cloud_of(value: str) -> Cloud:
    """The cloud named by ``value``: its key (``frankfurt``), label (``法兰克福``) or host."""
    wanted = value.strip().lower()
    for cloud in CLOUDS:
        if wanted in (cloud.key, cloud.label.lower(), cloud.host):
            return cloud
    known = ", ".join(f"{c.key} ({c.label}, {c.host})" for c in CLOUDS)
    raise ValueError(f"unknown Fenxiang cloud {value!r}; one of: {known}")


# --- the error map ---------------------------------------------------------------------------

TOKEN_INVALID = 20016
"""corpAccessToken missing or expired: fetch a new token and repeat the call once."""

AUTH_CODES: dict[int, str] = {
    20005: "appAccessToken expired",
    20006: "wrong appId or appSecret",
    10006: "appSecret (or another credential) missing or illegal",
    20015: "permanentCode is wrong",
    20016: "corpAccessToken invalid or expired, even after fetching a new one",
    20017: "corpAccessToken missing",
    20021: "the app is disabled in this tenant",
    20022: "this tenant has not authorised the app",
}
QUOTA_CODES: dict[int, str] = {
    30002: "the tenant's daily OpenAPI quota is used up; it resets at 00:00 Beijing time",
    30003: "the tenant has no OpenAPI quota: buy an 'Open API' call pack in the Fenxiang admin",
}
RATE_CODES: dict[int, tuple[str, float]] = {
    30004: ("call frequency exceeded (100 calls per 20 s per endpoint)", 1.0),
    14001: ("call limit exceeded", WINDOW_SECONDS),
}
TRANSIENT_CODES: dict[int, str] = {
    -1: "Fenxiang is busy",
    -2: "Fenxiang system error",
    50009: "Fenxiang service exception or timeout",
}


def error_for(
    code: int, message: str, *, path: str, trace_id: str | None, connector: str
) -> ConnectorError:
    """The vault error for a Fenxiang ``errorCode`` other than 0 (Part B8).

    Fenxiang's own message (``errorMessage``) describes the request, not a customer's values,
    and is kept with the ``traceId`` support asks for.
    """
    where = f"{path}: " + (f"[traceId {trace_id}] " if trace_id else "")
    said = f" ({message})" if message else ""
    if code in QUOTA_CODES:
        return PlatformQuotaExhausted(
            f"{where}{QUOTA_CODES[code]}{said}", connector=connector, code=str(code)
        )
    if code in RATE_CODES:
        text, wait = RATE_CODES[code]
        return PlatformRateLimited(
            f"{where}{text}{said}", connector=connector, code=str(code), retry_after=wait
        )
    if code in AUTH_CODES:
        return PlatformAuthFailed(
            f"{where}{AUTH_CODES[code]}{said}", connector=connector, code=str(code)
        )
    if code in TRANSIENT_CODES:
        return PlatformUnavailable(
            f"{where}{TRANSIENT_CODES[code]}{said}", connector=connector, code=str(code)
        )
    # An unknown code may be a refused record, whose message can quote a value: cut out
    # anything shaped like a phone number, an ID number or an email address.
    said = f" ({scrub(message)})" if message else ""
    return PlatformRejected(f"{where}request refused{said}", connector=connector, code=str(code))


_NUMBERISH = re.compile(r"\+?\d[\d \-()]{5,}\d")
_EMAILISH = re.compile(r"[^\s@]+@[^\s@]+")


def scrub(text: str) -> str:
    """``text`` with anything that looks like a phone, ID or email replaced by ``…``."""
    return _EMAILISH.sub("…", _NUMBERISH.sub("…", text))


class _Pacer:
    """At most ``limit`` calls per endpoint in any :data:`WINDOW_SECONDS` (0: no pacing)."""

    def __init__(
        self, limit: int, *, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, path: str) -> None:
        if self.limit <= 0:
            return
        while True:
            with self._lock:
                now = self._clock()
                calls = self._calls.setdefault(path, deque())
                while calls and calls[0] <= now - WINDOW_SECONDS:
                    calls.popleft()
                if len(calls) < self.limit:
                    calls.append(now)
                    return
                pause = calls[0] + WINDOW_SECONDS - now
            self._sleep(max(pause, 0.001))


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    corp_id: str


_SLOTS: dict[tuple[str, str, str], TokenSlot[_Token]] = {}
_SLOTS_LOCK = threading.Lock()


def _shared_slot(base_url: str, app_id: str, permanent_code: str) -> TokenSlot[_Token]:
    """The process-wide slot of (host, app, tenant): every client of the same tenant in this
    process (one per sync run) shares one token, as Fenxiang asks (≤10 token calls a minute)."""
    tenant = hashlib.sha256(permanent_code.encode("utf-8")).hexdigest()
    with _SLOTS_LOCK:
        return _SLOTS.setdefault((base_url, app_id, tenant), TokenSlot(clock=time.monotonic))


class FxiaokeClient:
    """One tenant's OpenAPI session: the token, body auth and the error map.

    ``call(path, data)`` returns the whole answer (a dict with ``errorCode`` 0) or raises a
    :class:`vault.errors.ConnectorError`; transport failures are :class:`PlatformUnavailable`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        app_id: str,
        app_secret: str,
        permanent_code: str,
        open_user_id: str,
        connector: str = "fxiaoke",
        timeout: float = 30.0,
        calls_per_window: int = 100,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.connector = connector
        self._credentials = {
            "appId": app_id,
            "appSecret": app_secret,
            "permanentCode": permanent_code,
        }
        self.open_user_id = open_user_id
        self._clock = clock
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        # A clock of its own (a test's) means a token of its own; otherwise one per tenant.
        self._slot = (
            _shared_slot(self.base_url, app_id, permanent_code)
            if clock is time.monotonic
            else TokenSlot(clock=clock)
        )
        self._pacer = _Pacer(calls_per_window, clock=clock, sleep=sleep)
        self.token_fetches = 0  # how many times the token endpoint was called

    def close(self) -> None:
        self._http.close()

    # --- the token -----------------------------------------------------------------------

    def token(self) -> _Token:
        """The current token, fetched when there is none or it is about to expire.

        One fetch at a time: callers that find a fetch under way wait for it and use its token
        (the token endpoint refuses concurrent calls and allows about 10 a minute)."""
        return self._slot.get(self._fetch_token)

    def invalidate(self, stale: _Token) -> None:
        """Forget ``stale`` (the platform said it expired) unless another thread replaced it."""
        self._slot.invalidate(stale)

    def _fetch_token(self) -> Lease[_Token]:
        self.token_fetches += 1
        started = self._clock()
        answer = self._post(TOKEN_PATH, dict(self._credentials))
        code = answer.get("errorCode")
        if code != 0:
            raise self._error(answer, TOKEN_PATH)
        value, corp_id, expires = (
            answer.get("corpAccessToken"),
            answer.get("corpId"),
            answer.get("expiresIn"),
        )
        if not isinstance(value, str) or not value or not isinstance(corp_id, str):
            raise PlatformProtocolError(
                f"{TOKEN_PATH}: the answer has no corpAccessToken/corpId", connector=self.connector
            )
        if not isinstance(expires, int | float) or isinstance(expires, bool) or expires <= 0:
            raise PlatformProtocolError(
                f"{TOKEN_PATH}: expiresIn is missing or not a positive number",
                connector=self.connector,
            )
        margin = min(TOKEN_MARGIN, float(expires) / 2)
        return Lease(_Token(value, corp_id), started + float(expires), margin)

    # --- business calls ------------------------------------------------------------------

    def call(self, path: str, data: Mapping[str, Any], **top: Any) -> dict[str, Any]:
        """POST ``{"data": data, **top}`` with body auth; the answer, or a ConnectorError.

        On ``20016`` the token is fetched anew and the call repeated once; a second ``20016``
        is :class:`PlatformAuthFailed`."""
        for attempt in (1, 2):
            token = self.token()
            body = {
                "corpAccessToken": token.value,
                "corpId": token.corp_id,
                "currentOpenUserId": self.open_user_id,
                **top,
                "data": data,
            }
            self._pacer.wait(path)
            answer = self._post(path, body)
            code = answer.get("errorCode")
            if code == 0:
                return answer
            if code == TOKEN_INVALID and attempt == 1:
                self.invalidate(token)
                continue
            raise self._error(answer, path)
        raise AssertionError("unreachable")  # pragma: no cover

    def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with mapped_transport_errors(connector=self.connector, what=path):
            response = self._http.post(path, json=body, params={"thirdTraceId": str(uuid.uuid4())})
        answer = json_answer(response, connector=self.connector, what=path)
        if not isinstance(answer, dict) or not isinstance(answer.get("errorCode"), int):
            raise PlatformProtocolError(
                f"{path}: the answer has no integer errorCode", connector=self.connector
            )
        return answer

    def _error(self, answer: Mapping[str, Any], path: str) -> ConnectorError:
        message = answer.get("errorMessage")
        trace = answer.get("traceId")
        return error_for(
            int(answer["errorCode"]),
            message if isinstance(message, str) else "",
            path=path,
            trace_id=trace if isinstance(trace, str) else None,
            connector=self.connector,
        )
