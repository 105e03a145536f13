"""A Zoho sandbox per test, and a raw HTTP client for the rules the sandbox enforces."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connectors.zoho.sandbox import ZohoSandbox


@pytest.fixture
def sandbox() -> Iterator[ZohoSandbox]:
    with ZohoSandbox(seed=7, records=60) as running:
        assert isinstance(running, ZohoSandbox)
        yield running


def fresh_token(sandbox: ZohoSandbox) -> str:
    answer = httpx.post(
        f"{sandbox.url}/oauth/v2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "refresh_token": sandbox.refresh_token,
        },
    )
    token = answer.json()["access_token"]
    assert isinstance(token, str)
    return token


@pytest.fixture
def api(sandbox: ZohoSandbox) -> Iterator[httpx.Client]:
    """An HTTP client on the sandbox's API domain with a live Zoho-oauthtoken header."""
    headers = {"Authorization": f"Zoho-oauthtoken {fresh_token(sandbox)}"}
    with httpx.Client(base_url=f"{sandbox.url}/crm/v8", headers=headers) as client:
        yield client


@pytest.fixture
def token(sandbox: ZohoSandbox) -> str:
    """A live access token of the sandbox's refresh token."""
    return fresh_token(sandbox)
