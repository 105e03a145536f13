"""The Youzan cloud (有赞云) open API: the token endpoint, API calls and their envelopes.

``POST {base_url}/auth/token`` (JSON) gives a shop's (``kdt_id``'s) access token; every API is
``POST {base_url}/api/{name}/{version}?access_token=…`` with a JSON body, unsigned. The answers,
all HTTP 200 (``shared/protocols/youzan.md`` §3), and what :meth:`YouzanClient.call` makes of
them at this one boundary (``tests/connectors/youzan/test_youzan_protocol.py`` tests the map):

================================================  =========================================
answer                                            error
================================================  =========================================
``success: true``, ``code: 200`` and ``data``     the result (``data``)
``gw_err_resp`` 4202 (expired) / 4203 (unknown)   refresh the token, retry once; then
                                                  :class:`PlatformAuthFailed`
``gw_err_resp`` with a throttle code              :class:`PlatformRateLimited`
``gw_err_resp`` with any other code               :class:`PlatformUnavailable` (backed off)
``success: false``, a throttle code               :class:`PlatformRateLimited`
``success: false``, 10500 (system error)          :class:`PlatformUnavailable`
``success: false``, any other code                :class:`PlatformRejected`
HTTP 429 / 5xx / timeout / dropped connection     :class:`PlatformRateLimited` /
                                                  :class:`PlatformUnavailable`
not JSON, ``success: true`` without code 200      :class:`PlatformProtocolError`
================================================  =========================================

A response is good only when ``gw_err_resp`` is absent, ``success`` is true and ``code`` is
200: anything else is an error, never an empty page. The throttle codes are not published
[U]; they are settings, with the sandbox's defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import httpx

from vault.errors import (
    ConnectorError,
    PlatformAuthFailed,
    PlatformProtocolError,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from vault.sync.http import Lease, TokenSlot, json_answer, mapped_transport_errors

CONNECTOR = "youzan"
TOKEN_PATH = "/auth/token"  # noqa: S105  (a path, not a password)
TOKEN_EXPIRED = 4202
TOKEN_UNKNOWN = 4203
SYSTEM_ERROR = 10500
DEFAULT_GW_THROTTLE_CODES = frozenset({4290})  # [U] configurable
DEFAULT_THROTTLE_CODES = frozenset({10429})  # [U] business-level flow control, configurable
USER_AGENT = "YZY-Open-Client 1.0.0 - Python"
REFRESH_MARGIN = 300.0


class YouzanClient:
    """One shop's session with the Youzan API: caches its token, refreshes it on 4202/4203."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        kdt_id: str,
        authorize_type: str = "silent",
        code: str | None = None,
        redirect_uri: str | None = None,
        refresh_token: str | None = None,
        gw_throttle_codes: Collection[int] = DEFAULT_GW_THROTTLE_CODES,
        throttle_codes: Collection[int] = DEFAULT_THROTTLE_CODES,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        http: httpx.Client | None = None,
    ) -> None:
        if authorize_type not in ("silent", "authorization_code"):
            raise ValueError("authorize_type is 'silent' (self-use app) or 'authorization_code'")
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.kdt_id = kdt_id
        self.authorize_type = authorize_type
        self._code = code
        self._redirect_uri = redirect_uri
        self.refresh_token = refresh_token
        self.gw_throttle_codes = frozenset(gw_throttle_codes)
        self.throttle_codes = frozenset(throttle_codes)
        self.clock = clock
        self._http = http or httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})
        self._slot: TokenSlot[str] = TokenSlot(self._fetch_token, clock=clock)
        self._renewing = False

    def close(self) -> None:
        self._http.close()

    # --- tokens ------------------------------------------------------------------------------

    def token(self, *, renew: bool = False) -> str:
        """The shop's access token: cached; a new one when ``renew`` or about to expire."""
        if not renew:
            return self._slot.get()
        self._renewing = True  # the silent grant asks for a new token, not the cached one
        try:
            return self._slot.renew()
        finally:
            self._renewing = False

    @property
    def access_token(self) -> str | None:
        lease = self._slot.lease
        return None if lease is None else lease.value

    @property
    def expires_at(self) -> float | None:
        lease = self._slot.lease
        return None if lease is None else lease.expires_at

    @property
    def token_requests(self) -> int:
        """Calls of the token endpoint (tests read it)."""
        return self._slot.fetches

    def _fetch_token(self) -> Lease[str]:
        body: dict[str, Any] = {"client_id": self.client_id, "client_secret": self._secret}
        if self.refresh_token:
            body |= {"authorize_type": "refresh_token", "refresh_token": self.refresh_token}
        elif self.authorize_type == "silent":
            body |= {"authorize_type": "silent", "grant_id": self.kdt_id, "refresh": self._renewing}
        else:
            if not self._code:
                raise PlatformAuthFailed(
                    "no authorisation code and no refresh token", connector=CONNECTOR
                )
            body |= {
                "authorize_type": "authorization_code",
                "code": self._code,
                "redirect_uri": self._redirect_uri or "",
            }
            self._code = None  # a code is good once
        answer = self._post(self.base_url + TOKEN_PATH, body, what="auth/token")
        if not isinstance(answer, dict) or answer.get("success") is not True:
            code = answer.get("code") if isinstance(answer, dict) else None
            if isinstance(code, int) and code in self.throttle_codes:
                raise PlatformRateLimited(
                    "token calls throttled", connector=CONNECTOR, code=str(code)
                )
            raise PlatformAuthFailed(
                "the token endpoint refused the credentials",
                connector=CONNECTOR,
                code=None if code is None else str(code),
            )
        data = answer.get("data")
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise PlatformProtocolError("the token answer has no access_token", connector=CONNECTOR)
        assert isinstance(data, dict)
        expires = data.get("expires")
        # ``expires`` is [U]: milliseconds since the epoch in observed answers; seconds accepted
        expires_at: float | None = None
        if isinstance(expires, int | float) and expires > 0:
            expires_at = expires / 1000 if expires > 10**11 else float(expires)
        refresh = data.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            self.refresh_token = refresh
        return Lease(token, expires_at, REFRESH_MARGIN)

    # --- API calls ---------------------------------------------------------------------------

    def call(self, api: str, version: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call ``api``/``version`` and return its ``data``. A 4202/4203 answer renews the token
        and retries once; a second one is :class:`PlatformAuthFailed`."""
        body = dict(params or {})
        url = f"{self.base_url}/api/{api}/{version}"
        answer = self._post(url, body, what=api, token=self.token())
        gateway = self._gateway_code(answer, api)
        if gateway in (TOKEN_EXPIRED, TOKEN_UNKNOWN):
            answer = self._post(url, body, what=api, token=self.token(renew=True))
            gateway = self._gateway_code(answer, api)
            if gateway in (TOKEN_EXPIRED, TOKEN_UNKNOWN):
                raise PlatformAuthFailed(
                    f"{api}: the token was refused even after renewing it",
                    connector=CONNECTOR,
                    code=str(gateway),
                )
        if gateway is not None:
            raise self._gateway_error(api, gateway, answer)
        return self._data(api, answer)

    def _post(
        self, url: str, body: Mapping[str, Any], *, what: str, token: str | None = None
    ) -> Any:
        with mapped_transport_errors(connector=CONNECTOR, what=what):
            response = self._http.post(
                url, json=body, params={"access_token": token} if token else None
            )
        return json_answer(response, connector=CONNECTOR, what=what)

    @staticmethod
    def _gateway_code(answer: Any, api: str) -> int | None:
        if not isinstance(answer, dict) or "gw_err_resp" not in answer:
            return None
        error = answer["gw_err_resp"]
        code = error.get("err_code") if isinstance(error, dict) else None
        if not isinstance(code, int):
            raise PlatformProtocolError(f"{api}: malformed gw_err_resp", connector=CONNECTOR)
        return code

    def _gateway_error(self, api: str, code: int, answer: Any) -> ConnectorError:
        message = f"{api}: gateway refused the call"
        if code in self.gw_throttle_codes:
            return PlatformRateLimited(message, connector=CONNECTOR, code=str(code))
        return PlatformUnavailable(message, connector=CONNECTOR, code=str(code))

    def _data(self, api: str, answer: Any) -> Any:
        if not isinstance(answer, dict) or "success" not in answer:
            raise PlatformProtocolError(
                f"{api}: not the success/code envelope", connector=CONNECTOR
            )
        code = answer.get("code")
        if answer["success"] is True:
            if code != 200 or "data" not in answer:
                raise PlatformProtocolError(
                    f"{api}: success without code 200 and data", connector=CONNECTOR
                )
            return answer["data"]
        if not isinstance(code, int):
            raise PlatformProtocolError(f"{api}: a failure without a code", connector=CONNECTOR)
        detail = str(answer.get("message") or "")[:120]
        message = f"{api}: {detail}" if detail else api
        if code in self.throttle_codes:
            return_error: ConnectorError = PlatformRateLimited(
                message, connector=CONNECTOR, code=str(code)
            )
        elif code == SYSTEM_ERROR:
            return_error = PlatformUnavailable(message, connector=CONNECTOR, code=str(code))
        else:
            return_error = PlatformRejected(message, connector=CONNECTOR, code=str(code))
        raise return_error
