"""Fixtures of the Fenxiang tests: a running sandbox and a raw caller of its OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fxiaoke_http import HTTP, Call, legacy_token

from connectors.fxiaoke.sandbox import FxiaokeSandbox


@pytest.fixture
def sandbox() -> Iterator[FxiaokeSandbox]:
    with FxiaokeSandbox(seed=7, records=300) as running:
        assert isinstance(running, FxiaokeSandbox)
        yield running


@pytest.fixture
def call(sandbox: FxiaokeSandbox) -> Call:
    """``call(path, data, **top)``: a business call with body auth; the parsed answer."""
    token = legacy_token(sandbox)

    def _call(path: str, data: Any, **top: Any) -> dict[str, Any]:
        body = {
            "corpAccessToken": token["corpAccessToken"],
            "corpId": token["corpId"],
            "currentOpenUserId": sandbox.admin_open_user_id,
            "data": data,
            **top,
        }
        answer = HTTP.post(f"{sandbox.url}{path}", json=body, params={"thirdTraceId": "t-1"})
        assert answer.status_code == 200, "Fenxiang answers every call with HTTP 200"
        parsed: dict[str, Any] = answer.json()
        assert parsed["traceId"]
        return parsed

    return _call
