"""Raw calls of the Fenxiang OpenAPI for the tests (no connector code in the way)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from connectors.fxiaoke.sandbox import FxiaokeSandbox

Call = Callable[..., dict[str, Any]]

HTTP = httpx.Client(timeout=30)
"""One client for every raw call: a new httpx client per call costs an SSL context."""


def legacy_token(sandbox: FxiaokeSandbox) -> dict[str, Any]:
    answer = HTTP.post(
        f"{sandbox.url}/cgi/corpAccessToken/get/V2",
        json={
            "appId": sandbox.app_id,
            "appSecret": sandbox.app_secret,
            "permanentCode": sandbox.permanent_code,
        },
    )
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    assert body["errorCode"] == 0, body
    return body


def query(call: Call, api: str = "ContactObj", **info: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"dataObjectApiName": api, "search_query_info": {"limit": 100, **info}}
    return call("/cgi/crm/v2/data/query", data)
