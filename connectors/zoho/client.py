"""Zoho CRM API v8 over HTTP: the OAuth2 token, one request at a time, every error mapped.

The client knows the transport rules of ``/crm/v8`` and nothing of the vault's records:

* **Token.** The refresh-token grant (``POST {accounts}/oauth/v2/token``, form-encoded body) gives
  a one-hour access token, kept in memory only. It is fetched on first use, again when less than
  ``refresh_margin`` seconds are left, and at most once more per request when the API answers
  401 ``INVALID_TOKEN`` or ``AUTHENTICATION_FAILURE``. Every call carries
  ``Authorization: Zoho-oauthtoken <token>`` (never ``Bearer``, whatever ``token_type`` says).
  The ``api_domain`` of the token answer is not followed: the API host comes from the data centre
  or the ``api_url`` setting, so a token can never redirect data to another host.
* **Concurrency.** At most :data:`MAX_IN_FLIGHT` requests in flight per client (the lowest
  concurrency Zoho allows an app, Free edition), and as many pooled connections.
* **Errors.** Every transport failure and every documented answer becomes one
  :class:`vault.errors.ConnectorError` kind, at :meth:`ZohoClient._raise_for`:

  ======================================  ==============================================
  timeout, refused or dropped connection  ``PlatformUnavailable``
  5xx (``INTERNAL_ERROR``)                ``PlatformUnavailable``
  429 ``TOO_MANY_REQUESTS``               ``PlatformRateLimited`` (``Retry-After`` if sent)
  401 after the one refresh, scope        ``PlatformAuthFailed``
  mismatch, 403 ``NO_PERMISSION``,
  token endpoint ``invalid_code`` /
  ``invalid_client``
  token endpoint ``Access Denied``        ``PlatformRateLimited`` (10 tokens / 10 min)
  any other 4xx with a Zoho envelope      ``PlatformRejected`` (code, field or param name)
  a body that is not JSON, an unknown     ``PlatformProtocolError``
  envelope, an unexpected status
  ======================================  ==============================================

  A write answered 2xx, 207 or 400 with a ``data`` array is returned as it is: each entry is one
  record's result, read by the connector (a 2xx does not mean every record succeeded).

Messages name the method, the path (never the query, which may hold a search value), Zoho's code
and the field or parameter name Zoho reported; never a value.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx

from vault.errors import (
    ConfigError,
    ConnectorError,
    PlatformAuthFailed,
    PlatformProtocolError,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from vault.sync.http import Lease, TokenSlot, mapped_transport_errors, retry_after

API_PREFIX: Final = "/crm/v8"
TOKEN_PATH: Final = "/oauth/v2/token"  # noqa: S105  (a URL path, not a secret)
MAX_IN_FLIGHT: Final = 5
AUTH_SCHEME: Final = "Zoho-oauthtoken"


@dataclass(frozen=True, slots=True)
class DataCentre:
    """One Zoho data centre: where its accounts server and API live, and whether it is in
    mainland China (only CN is; every other one makes a push a transfer abroad)."""

    code: str
    accounts_url: str
    api_url: str
    mainland: bool = False


DATA_CENTRES: Final[Mapping[str, DataCentre]] = {
    dc.code: dc
    for dc in (
        DataCentre("US", "https://accounts.zoho.com", "https://www.zohoapis.com"),
        DataCentre("EU", "https://accounts.zoho.eu", "https://www.zohoapis.eu"),
        DataCentre("IN", "https://accounts.zoho.in", "https://www.zohoapis.in"),
        DataCentre("AU", "https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
        DataCentre("JP", "https://accounts.zoho.jp", "https://www.zohoapis.jp"),
        DataCentre("CA", "https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
        DataCentre("SA", "https://accounts.zoho.sa", "https://www.zohoapis.sa"),
        DataCentre("UK", "https://accounts.zoho.uk", "https://www.zohoapis.uk"),
        DataCentre("CN", "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn", True),
    )
}


def data_centre(code: str) -> DataCentre:
    """The data centre named ``code`` (case-insensitive); ``ConfigError`` for any other."""
    found = DATA_CENTRES.get(code.strip().upper())
    if found is None:
        raise ConfigError(f"zoho: unknown data_centre {code!r}: one of {', '.join(DATA_CENTRES)}")
    return found


# Zoho codes that mean "the access token is not (or no longer) good": refresh once, retry.
_REFRESH_CODES: Final = frozenset({"INVALID_TOKEN", "AUTHENTICATION_FAILURE"})
# Codes that no token refresh or retry will fix: the app or the user lacks a right.
_AUTH_CODES: Final = frozenset({"OAUTH_SCOPE_MISMATCH", "NO_PERMISSION", "AUTHORIZATION_FAILED"})


@dataclass(frozen=True, slots=True)
class Answer:
    """What a call returned: the status, the JSON body (None for 204/304) and the server's
    ``Date`` (when it sent one): the connector's clock for cursors, so a skewed local clock
    never moves a cursor past records."""

    status: int
    body: dict[str, Any] | None
    server_time: datetime | None


class ZohoClient:
    """One Zoho org through one refresh token. Thread-safe; ``close()`` when done."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        accounts_url: str,
        api_url: str,
        connector: str = "zoho",
        timeout: float = 30.0,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._accounts_url = accounts_url.rstrip("/")
        self._api_url = api_url.rstrip("/")
        self._connector = connector
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(
                max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT
            ),
            follow_redirects=False,
            transport=transport,
        )
        self._in_flight = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._slot: TokenSlot[str] = TokenSlot(self._refresh, clock=clock)

    # --- the token ---------------------------------------------------------------------------

    @property
    def token_refreshes(self) -> int:
        """How many access tokens this client obtained."""
        return self._slot.fetches

    def _current_token(self) -> str:
        return self._slot.get()

    def _refresh_after_rejection(self, rejected: str) -> str:
        """A call was refused with ``rejected``: get a new token, unless another thread already
        replaced that one, in which case the replacement is tried."""
        return self._slot.renew(rejected)

    def _refresh(self) -> Lease[str]:
        url = self._accounts_url + TOKEN_PATH
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._refresh_token,
        }
        with (
            self._in_flight,
            mapped_transport_errors(connector=self._connector, what=f"POST {TOKEN_PATH}"),
        ):
            response = self._http.post(url, data=form)
        if response.status_code >= 500:
            raise PlatformUnavailable(
                f"POST {TOKEN_PATH} answered HTTP {response.status_code}",
                connector=self._connector,
            )
        body = self._json(response, "POST", TOKEN_PATH)
        if body is None:
            raise PlatformProtocolError(
                f"POST {TOKEN_PATH} answered HTTP {response.status_code} with no body",
                connector=self._connector,
            )
        refused = body.get("error")
        if refused is not None:
            # Zoho answers token errors with HTTP 200 (or 400) and {"error": "..."}.
            if refused == "Access Denied":
                raise PlatformRateLimited(
                    f"POST {TOKEN_PATH}: too many access tokens requested for this refresh "
                    "token (Zoho allows 10 per 10 minutes)",
                    connector=self._connector,
                    code="Access Denied",
                    retry_after=None,
                )
            raise PlatformAuthFailed(
                f"POST {TOKEN_PATH} refused the refresh grant: {_short(refused)} "
                "(check client_id, client_secret, refresh_token and data_centre)",
                connector=self._connector,
                code=_short(refused),
            )
        token = body.get("access_token")
        expires_in = body.get("expires_in")
        if not isinstance(token, str) or not token:
            raise PlatformProtocolError(
                f"POST {TOKEN_PATH} answered without an access_token", connector=self._connector
            )
        if "expires_in_sec" in body:  # the legacy shape: expires_in in milliseconds
            expires_in = body["expires_in_sec"]
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            raise PlatformProtocolError(
                f"POST {TOKEN_PATH} answered without a numeric expires_in",
                connector=self._connector,
            )
        return Lease(token, self._clock() + float(expires_in), self._refresh_margin)

    # --- one call ----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        batch: bool = False,
    ) -> Answer:
        """Call ``{api_url}/crm/v8{path}``. ``batch``: a write whose per-record results in
        ``data[]`` are returned even when the status is 207 or 400."""
        full_path = API_PREFIX + path
        token = self._current_token()
        response = self._send(method, full_path, token, params, json, headers)
        if response.status_code == 401 and self._code(response) in _REFRESH_CODES:
            token = self._refresh_after_rejection(token)
            response = self._send(method, full_path, token, params, json, headers)
        return self._answer(response, method, full_path, batch=batch)

    def _send(
        self,
        method: str,
        path: str,
        token: str,
        params: Mapping[str, str] | None,
        json: Any,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        request_headers = {"Authorization": f"{AUTH_SCHEME} {token}", **(headers or {})}
        with (
            self._in_flight,
            mapped_transport_errors(connector=self._connector, what=f"{method} {path}"),
        ):
            return self._http.request(
                method,
                self._api_url + path,
                params=dict(params) if params else None,
                json=json,
                headers=request_headers,
            )

    def _answer(self, response: httpx.Response, method: str, path: str, *, batch: bool) -> Answer:
        status = response.status_code
        server_time = _server_time(response)
        if status in (204, 304):
            return Answer(status, None, server_time)
        body = self._json(response, method, path)
        if 200 <= status < 300 or (batch and status == 400 and _has_data(body)):
            if body is None:
                raise PlatformProtocolError(
                    f"{method} {path} answered HTTP {status} with no body",
                    connector=self._connector,
                )
            return Answer(status, body, server_time)
        raise self._raise_for(status, body, method, path, response)

    def _raise_for(
        self,
        status: int,
        body: dict[str, Any] | None,
        method: str,
        path: str,
        response: httpx.Response,
    ) -> ConnectorError:
        """The error kind of a non-2xx answer (see the module docstring's table)."""
        code = _short(body.get("code")) if body and isinstance(body.get("code"), str) else None
        where = f"{method} {path} answered HTTP {status}"
        about = _about(body)
        if status == 429:
            return PlatformRateLimited(
                f"{where}: API credits or concurrency exhausted",
                connector=self._connector,
                code=code or "TOO_MANY_REQUESTS",
                retry_after=retry_after(response.headers.get("Retry-After")),
            )
        if status >= 500:
            return PlatformUnavailable(where, connector=self._connector, code=code)
        if code is None:
            return PlatformProtocolError(
                f"{where} without Zoho's error envelope", connector=self._connector
            )
        if status == 401 and code in _REFRESH_CODES:
            return PlatformAuthFailed(
                f"{where} even with a freshly refreshed access token",
                connector=self._connector,
                code=code,
            )
        if status in (401, 403) or code in _AUTH_CODES:
            return PlatformAuthFailed(
                f"{where}: the app or user lacks a scope or permission{about}",
                connector=self._connector,
                code=code,
            )
        if 400 <= status < 500:
            return PlatformRejected(f"{where}{about}", connector=self._connector, code=code)
        return PlatformProtocolError(
            f"{where}, which is not part of Zoho's protocol", connector=self._connector, code=code
        )

    # --- helpers -----------------------------------------------------------------------------

    def _json(self, response: httpx.Response, method: str, path: str) -> dict[str, Any] | None:
        if not response.content:
            return None
        try:
            body = response.json()
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
            raise PlatformProtocolError(
                f"{method} {path} answered HTTP {response.status_code} with a body that is not "
                "JSON",
                connector=self._connector,
            ) from error
        if not isinstance(body, dict):
            raise PlatformProtocolError(
                f"{method} {path} answered a JSON {type(body).__name__}, not an object",
                connector=self._connector,
            )
        return body

    def _code(self, response: httpx.Response) -> str | None:
        try:
            body = response.json()
        except ValueError:
            return None
        code = body.get("code") if isinstance(body, dict) else None
        return code if isinstance(code, str) else None

    def close(self) -> None:
        self._http.close()


def _has_data(body: dict[str, Any] | None) -> bool:
    return body is not None and isinstance(body.get("data"), list)


def _short(value: object, limit: int = 60) -> str:
    """A platform code, cut short: codes are identifiers, never customer values."""
    return str(value)[:limit]


def _about(body: dict[str, Any] | None) -> str:
    """The field or parameter Zoho names in ``details`` (names only, never values)."""
    details = body.get("details") if body else None
    if not isinstance(details, dict):
        return ""
    for key in ("api_name", "param_name", "param"):
        name = details.get(key)
        if isinstance(name, str):
            return f" ({key.replace('_', ' ')} {_short(name, 80)})"
    if isinstance(details.get("limit"), int):
        return f" (limit {details['limit']})"
    return ""


def _server_time(response: httpx.Response) -> datetime | None:
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
