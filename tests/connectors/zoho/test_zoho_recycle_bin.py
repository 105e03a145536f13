"""Zoho keeps a deleted record, whole, in its recycle bin for 60 days. The vault reported an
erasure `done` while the sandbox still listed the contact there; now the sandbox models the bin
as Zoho does, the connector empties it for the records it deletes, and `done` means Zoho holds
the record nowhere. Over HTTP, against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.zoho.connector import ZohoConnector
from connectors.zoho.sandbox import DAY, ZohoSandbox
from vault.session import Session
from vault.sync.retry import SyncPolicy
from vault.vault import Vault

FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=0.2)


def client(sandbox: ZohoSandbox) -> httpx.Client:
    token = httpx.post(
        f"{sandbox.url}/oauth/v2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "refresh_token": sandbox.refresh_token,
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Zoho-oauthtoken {token}"}
    return httpx.Client(base_url=f"{sandbox.url}/crm/v8", headers=headers)


def feed(api: httpx.Client, kind: str) -> dict[str, str]:
    answer = api.get("/Contacts/deleted", params={"type": kind})
    return {} if answer.status_code == 204 else {d["id"]: d["type"] for d in answer.json()["data"]}


def binned(api: httpx.Client) -> set[str]:
    answer = api.get("/settings/recycle_bin")
    return set() if answer.status_code == 204 else {r["id"] for r in answer.json()["recycle_bin"]}


def test_a_deleted_record_waits_60_days_in_the_recycle_bin_then_is_deleted_for_good(
    sandbox: ZohoSandbox,
) -> None:
    first, second = (r["id"] for r in sandbox.stored()[:2])
    with client(sandbox) as api:
        assert api.delete("/Contacts", params={"ids": f"{first},{second}"}).status_code == 200
        assert sandbox.holds(first) == "recycle_bin"
        assert binned(api) == {first, second}
        (entry,) = api.get(f"/settings/recycle_bin/{first}").json()["recycle_bin"]
        assert entry["module"]["api_name"] == "Contacts" and entry["display_name"]
        assert feed(api, "recycle") == {first: "recycle", second: "recycle"}
        purged = api.delete("/settings/recycle_bin", params={"ids": first})
        assert purged.json()["data"][0]["code"] == "SUCCESS"
        assert sandbox.holds(first) is None and binned(api) == {second}
        assert feed(api, "permanent") == {first: "permanent"}
        again = api.delete(f"/settings/recycle_bin/{first}")  # not in the bin any more
        assert again.status_code == 400 and again.json()["data"][0]["code"] == "INVALID_DATA"
    sandbox.advance(60 * DAY)  # Zoho empties the bin by itself after 60 days
    assert sandbox.holds(second) is None
    with client(sandbox) as api:  # (a new token: the old one expired meanwhile)
        assert api.get("/settings/recycle_bin").status_code == 204
        assert feed(api, "all") == {first: "permanent", second: "permanent"}
    sandbox.advance(120 * DAY)  # and lists permanent deletions for 120 days
    with client(sandbox) as api:
        assert api.get("/Contacts/deleted").status_code == 204


@pytest.fixture
def seeded() -> Iterator[ZohoSandbox]:
    with ZohoSandbox(seed=5, records=20) as running:
        assert isinstance(running, ZohoSandbox)
        yield running


@pytest.fixture
def locked_bin() -> Iterator[ZohoSandbox]:
    with ZohoSandbox(seed=5, records=20, purge_allowed=False) as running:
        assert isinstance(running, ZohoSandbox)
        yield running


def erase_one(admin: Session, vault: Vault, sandbox: ZohoSandbox) -> tuple[str, str]:
    vault.sync_policy = FAST
    admin.configure_connector("zoho", sandbox.settings(data_centre="CN"))
    admin.sync("zoho")
    record_id = sandbox.stored()[4]["id"]
    customer_id = admin.find_by_identity("zoho", record_id)
    assert customer_id is not None
    admin.erase_customer(customer_id, reason="DSAR 2026-19")
    return customer_id, record_id


def test_an_erasure_is_done_only_once_zoho_holds_the_record_nowhere(
    admin: Session, vault: Vault, seeded: ZohoSandbox
) -> None:
    customer_id, record_id = erase_one(admin, vault, seeded)
    report = admin.sync("zoho")
    assert (report.deleted, report.failed) == (1, 0)
    assert seeded.holds(record_id) is None  # not live, not in the recycle bin
    (status,) = admin.erasure_status(customer_id)
    assert status["status"] == "done"
    assert ("DELETE", "/crm/v8/settings/recycle_bin") in seeded.request_log
    with client(seeded) as api:
        assert record_id not in binned(api)
        assert feed(api, "all")[record_id] == "permanent"


def test_when_the_bin_cannot_be_emptied_the_status_says_where_the_record_is_and_until_when(
    admin: Session, vault: Vault, locked_bin: ZohoSandbox
) -> None:
    customer_id, record_id = erase_one(admin, vault, locked_bin)
    before = datetime.now(UTC)
    report = admin.sync("zoho")
    assert (report.deleted, report.failed) == (0, 1)
    assert locked_bin.holds(record_id) == "recycle_bin"
    (status,) = admin.erasure_status(customer_id)
    assert status["status"] != "done"
    detail = status["detail"]
    assert detail.startswith("in Zoho's recycle bin until ") and "OAUTH_SCOPE_MISMATCH" in detail
    until = datetime.fromisoformat(detail.split(" until ")[1].split(" ")[0])
    assert abs(until - (before + timedelta(days=60))) < timedelta(minutes=5)
    # the request stays open: once Zoho has emptied its bin, the next sync closes it
    locked_bin.advance(60 * DAY)
    assert locked_bin.holds(record_id) is None
    report = admin.sync("zoho")
    assert report.failed == 0
    (status,) = admin.erasure_status(customer_id)
    assert status["status"] == "done"


def test_a_record_deleted_in_zohos_ui_is_purged_when_the_erasure_reaches_it(
    seeded: ZohoSandbox,
) -> None:
    connector = ZohoConnector(seeded.settings())
    record_id = seeded.stored()[0]["id"]
    seeded.delete_in_crm(record_id)  # already in the bin when the erasure arrives
    (outcome,) = connector.delete([record_id])
    assert (outcome.ok, outcome.action) == (True, "deleted")
    assert seeded.holds(record_id) is None
    (twice,) = connector.delete([record_id])
    assert (twice.ok, twice.action) == (True, "unchanged")
    connector.close()
