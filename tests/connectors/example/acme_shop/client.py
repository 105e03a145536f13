"""Acme Shop's HTTP API: a bearer token from ``POST /token``, ``GET /customers?page=N``.

Everything about HTTP comes from the vault's connector kit: transport errors and statuses are
mapped by ``mapped_transport_errors``/``json_answer``, the token lives in a ``TokenSlot``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from vault.errors import PlatformAuthFailed, PlatformProtocolError
from vault.sync.http import Lease, TokenSlot, json_answer, mapped_transport_errors

CONNECTOR = "acme"


class AcmeClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        clock: Callable[[], float] = time.time,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._clock = clock
        self._http = http or httpx.Client(timeout=10.0)
        self.tokens = TokenSlot(self._fetch_token, clock=clock)

    def close(self) -> None:
        self._http.close()

    def _fetch_token(self) -> Lease[str]:
        answer = self._request("POST", "/token", json={"api_key": self._api_key})
        token = answer.get("token")
        if not isinstance(token, str):
            raise PlatformAuthFailed("the token endpoint refused the api_key", connector=CONNECTOR)
        return Lease(token, self._clock() + float(answer.get("expires_in", 600)), margin=60)

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """GET ``path`` with the current token; a 401 renews the token once and retries."""
        token = self.tokens.get()
        answer = self._request("GET", path, params=params, token=token)
        if answer.get("error") == "token_expired":
            answer = self._request("GET", path, params=params, token=self.tokens.renew(token))
        if "error" in answer:
            raise PlatformAuthFailed(f"{path}: {answer['error']}", connector=CONNECTOR)
        return answer

    def _request(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with mapped_transport_errors(connector=CONNECTOR, what=f"{method} {path}"):
            response = self._http.request(method, self.base_url + path, headers=headers, **kwargs)
        if response.status_code == 401:
            return {"error": "token_expired"}
        answer = json_answer(response, connector=CONNECTOR, what=f"{method} {path}")
        if not isinstance(answer, dict):
            raise PlatformProtocolError(f"{path}: not a JSON object", connector=CONNECTOR)
        return answer
