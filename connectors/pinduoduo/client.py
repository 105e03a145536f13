"""The Pinduoduo open platform (POP) router: signing, common parameters, envelopes, tokens.

Every call is ``POST {base_url}/api/router``, form-encoded, with the system parameters
(``type``, ``client_id``, ``access_token``, ``timestamp`` in UNIX seconds, ``data_type=JSON``)
and the business parameters (lists and objects as compact JSON text) in one body, signed by
:func:`sign`. The platform answers HTTP 200 with either the API's own response key (fixed per
API, :data:`RESPONSE_KEYS`) or ``error_response``; :meth:`PddClient.call` maps every answer that
is not a result to a :class:`vault.errors.ConnectorError` subclass at this one boundary
(``tests/connectors/pinduoduo/test_pinduoduo_protocol.py`` tests the map):

==============================================  ===========================================
answer                                          error
==============================================  ===========================================
``error_code`` 10019 (token invalid/expired)    refresh the token once and retry; then
                                                :class:`PlatformAuthFailed`
the bad-signature code                          :class:`PlatformAuthFailed` (wrong secret)
a code of the throttle set                      :class:`PlatformRateLimited`
the daily-cap code                              :class:`PlatformQuotaExhausted`
10000 (parameter error), any other code         :class:`PlatformRejected`
HTTP 429                                        :class:`PlatformRateLimited` (``Retry-After``)
HTTP 5xx, timeout, dropped connection           :class:`PlatformUnavailable`
not JSON, no known envelope, missing fields     :class:`PlatformProtocolError`
==============================================  ===========================================

The platform's full code table is not public (``shared/protocols/pinduoduo.md`` §4): the
bad-signature, throttle and daily-cap codes are settings, with the sandbox's defaults.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Mapping
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
)
from vault.sync.http import Lease, TokenSlot, json_answer, mapped_transport_errors

CONNECTOR = "pinduoduo"
ROUTER_PATH = "/api/router"

TOKEN_INVALID = 10019
PARAMETER_ERROR = 10000
DEFAULT_SIGN_ERROR = 10016  # [U] configurable: the platform's code table is not public
DEFAULT_THROTTLE_CODES = frozenset({70031})  # [U] configurable
DEFAULT_QUOTA_CODE = 70032  # [U] configurable: the out-of-cloud decrypt daily cap

RESPONSE_KEYS: Mapping[str, str] = {
    "pdd.order.number.list.increment.get": "order_sn_increment_get_response",
    "pdd.order.list.get": "order_list_get_response",
    "pdd.order.information.get": "order_info_get_response",
    "pdd.open.decrypt.batch": "open_decrypt_batch_response",
    "pdd.open.decrypt.mask.batch": "open_decrypt_mask_batch_response",
    "pdd.pop.auth.token.create": "pop_auth_token_create_response",
    "pdd.pop.auth.token.refresh": "pop_auth_token_refresh_response",
}
"""The success key of each API: fixed per API, not derived from ``type``."""

TOKEN_APIS = frozenset({"pdd.pop.auth.token.create", "pdd.pop.auth.token.refresh"})
REFRESH_MARGIN = 60.0
"""Refresh a token this many seconds before the expiry the platform named."""


def encode_value(value: Any) -> str | None:
    """A parameter as sent: lists and objects as compact JSON, booleans as ``true``/``false``;
    ``None`` and the empty string are left out (``None``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    return text or None


def sign(params: Mapping[str, str], client_secret: str) -> str:
    """The router's signature: ``UPPER(MD5(secret + name1value1name2value2... + secret))`` over
    every parameter but ``sign``, sorted by name, empty ones left out, raw values (for a JSON
    parameter, the exact JSON text sent)."""
    body = "".join(
        f"{name}{params[name]}" for name in sorted(params) if name != "sign" and params[name]
    )
    digest = hashlib.md5(  # noqa: S324  (the platform's signature is MD5; it is not ours to pick)
        f"{client_secret}{body}{client_secret}".encode()
    )
    return digest.hexdigest().upper()


@dataclass(slots=True)
class Token:
    access_token: str
    refresh_token: str | None
    expires_at: float | None  # UNIX seconds, when the platform named it


class PddClient:
    """One shop's (mall's) session with the router. Not thread-safe; one per connector."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        token: Token,
        throttle_codes: Collection[int] = DEFAULT_THROTTLE_CODES,
        sign_error_code: int = DEFAULT_SIGN_ERROR,
        quota_code: int = DEFAULT_QUOTA_CODE,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + ROUTER_PATH
        self.client_id = client_id
        self._secret = client_secret
        self._slot: TokenSlot[Token] = TokenSlot(self._refreshed, clock=clock, lease=_lease(token))
        self.throttle_codes = frozenset(throttle_codes)
        self.sign_error_code = sign_error_code
        self.quota_code = quota_code
        self.clock = clock
        self._http = http or httpx.Client(timeout=timeout)
        self.refreshes = 0  # token refreshes done by this client (tests read it)

    def close(self) -> None:
        self._http.close()

    @property
    def token(self) -> Token:
        lease = self._slot.lease
        assert lease is not None  # seeded with the configured token, replaced, never emptied
        return lease.value

    # --- requests ----------------------------------------------------------------------------

    def signed_params(self, api: str, business: Mapping[str, Any]) -> dict[str, str]:
        """The full, signed parameter set of one call (system + business parameters)."""
        params: dict[str, str] = {
            "type": api,
            "client_id": self.client_id,
            "timestamp": str(int(self.clock())),
            "data_type": "JSON",
        }
        if api not in TOKEN_APIS:
            params["access_token"] = self.token.access_token
        for name, value in business.items():
            encoded = encode_value(value)
            if encoded is not None:
                params[name] = encoded
        params["sign"] = sign(params, self._secret)
        return params

    def call(self, api: str, business: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call ``api`` and return the payload under its response key.

        Refreshes the token before a call when it is about to expire, and once when the platform
        says it expired (10019), then retries the call once; a second refusal is
        :class:`PlatformAuthFailed`.
        """
        business = business or {}
        if api not in TOKEN_APIS:
            self._slot.get()  # refreshed first when it is about to expire
        try:
            return self._call_once(api, business)
        except _TokenRefused:
            if api in TOKEN_APIS:
                raise PlatformAuthFailed(
                    "the refresh token was refused", connector=CONNECTOR, code=str(TOKEN_INVALID)
                ) from None
            self.refresh()
            try:
                return self._call_once(api, business)
            except _TokenRefused:
                raise PlatformAuthFailed(
                    "the access token was refused even after a refresh",
                    connector=CONNECTOR,
                    code=str(TOKEN_INVALID),
                ) from None

    def refresh(self) -> Token:
        """Exchange the refresh token for a new access token (``pdd.pop.auth.token.refresh``)."""
        return self._slot.renew()

    def _refreshed(self) -> Lease[Token]:
        if not self.token.refresh_token:
            raise PlatformAuthFailed(
                "the access token expired and no refresh token is configured",
                connector=CONNECTOR,
                code=str(TOKEN_INVALID),
            )
        payload = self.call(
            "pdd.pop.auth.token.refresh", {"refresh_token": self.token.refresh_token}
        )
        token = _token_from(payload, fallback_refresh=self.token.refresh_token)
        self.refreshes += 1
        return _lease(token)

    def create_token(self, code: str) -> Token:
        """Exchange an authorisation code for tokens (``pdd.pop.auth.token.create``)."""
        token = _token_from(self.call("pdd.pop.auth.token.create", {"code": code}))
        self._slot.put(_lease(token))
        return token

    def _call_once(self, api: str, business: Mapping[str, Any]) -> dict[str, Any]:
        params = self.signed_params(api, business)
        with mapped_transport_errors(connector=CONNECTOR, what=api):
            response = self._http.post(self.url, data=params)
        body = json_answer(response, connector=CONNECTOR, what=api)
        if not isinstance(body, dict):
            raise PlatformProtocolError(f"{api}: the answer is not an object", connector=CONNECTOR)
        if "error_response" in body:
            raise self._error(api, body["error_response"])
        key = RESPONSE_KEYS.get(api)
        payload = body.get(key) if key else None
        if not isinstance(payload, dict):
            raise PlatformProtocolError(
                f"{api}: no {key or 'known response key'} in the answer", connector=CONNECTOR
            )
        return payload

    def _error(self, api: str, error: Any) -> ConnectorError | _TokenRefused:
        if not isinstance(error, dict) or not isinstance(error.get("error_code"), int):
            return PlatformProtocolError(f"{api}: malformed error_response", connector=CONNECTOR)
        code: int = error["error_code"]
        # error_msg and sub_msg are the platform's own text about the request; they carry no
        # customer value, but keep them short.
        detail = str(error.get("sub_msg") or error.get("error_msg") or "")[:120]
        message = f"{api}: {detail}" if detail else api
        if code == TOKEN_INVALID:
            return _TokenRefused()
        if code in self.throttle_codes:
            return PlatformRateLimited(message, connector=CONNECTOR, code=str(code))
        if code == self.quota_code:
            return PlatformQuotaExhausted(message, connector=CONNECTOR, code=str(code))
        if code == self.sign_error_code:
            return PlatformAuthFailed(
                f"{message} (the signature was refused: check client_secret)",
                connector=CONNECTOR,
                code=str(code),
            )
        return PlatformRejected(message, connector=CONNECTOR, code=str(code))


class _TokenRefused(Exception):
    """Internal: the platform answered 10019; the client refreshes once."""


def _lease(token: Token) -> Lease[Token]:
    return Lease(token, token.expires_at, REFRESH_MARGIN)


def _token_from(payload: Mapping[str, Any], fallback_refresh: str | None = None) -> Token:
    access = payload.get("access_token")
    if not isinstance(access, str) or not access:
        raise PlatformProtocolError("the token answer has no access_token", connector=CONNECTOR)
    expires_at = payload.get("expires_at")
    expires_in = payload.get("expires_in")
    at: float | None = None
    if isinstance(expires_at, int | float):
        at = float(expires_at)
    elif isinstance(expires_in, int | float):
        at = time.time() + float(expires_in)
    refresh = payload.get("refresh_token")
    return Token(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else fallback_refresh,
        expires_at=at,
    )
