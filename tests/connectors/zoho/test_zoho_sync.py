"""End to end: ``admin.configure_connector("zoho", …)`` and ``admin.sync("zoho")`` against the
sandbox over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from connectors.zoho.sandbox import ZohoSandbox
from vault.errors import PlatformUnavailable
from vault.session import Session
from vault.store.schema import customer_identities, customers, sync_cursors
from vault.sync.retry import SyncPolicy
from vault.vault import Vault

FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=0.2)


def count(vault: Vault, table: object) -> int:
    with vault._engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def cursor_of(vault: Vault, stream: str) -> dict[str, object] | None:
    with vault._engine.connect() as connection:
        row = connection.execute(
            select(sync_cursors.c.cursor).where(
                sync_cursors.c.connector == "zoho", sync_cursors.c.stream == stream
            )
        ).scalar_one_or_none()
    return None if row is None else dict(json.loads(row))


STREETS = itertools.count(1)


@pytest.fixture(scope="module")
def five_thousand() -> Iterator[ZohoSandbox]:
    with ZohoSandbox(seed=5, records=5000) as running:
        assert isinstance(running, ZohoSandbox)
        yield running


@pytest.fixture
def small() -> Iterator[ZohoSandbox]:
    with ZohoSandbox(seed=9, records=1000) as running:
        assert isinstance(running, ZohoSandbox)
        yield running


@pytest.fixture
def fast(vault: Vault) -> Vault:
    vault.sync_policy = FAST
    return vault


def test_full_pull_of_5000_contacts_then_an_incremental_pull_of_what_changed(
    admin: Session, fast: Vault, five_thousand: ZohoSandbox
) -> None:
    admin.configure_connector("zoho", five_thousand.settings())
    report = admin.sync("zoho", streams=["customers"])
    assert report.pulled == 5000 and report.created == 5000 and report.rejected == 0
    assert count(fast, customers) == 5000
    assert count(fast, customer_identities) == 5000  # one Zoho id each, none twice
    cursor = cursor_of(fast, "customers")
    assert cursor is not None and cursor["since"] and cursor["page_token"] is None

    changed = [r["id"] for r in five_thousand.stored()[2500:2503]]
    for record_id in changed:  # (the sandbox is the module's: each run writes a new street)
        street = f"建国路{next(STREETS)}号"
        five_thousand.modify(record_id, Mailing_Street=street, Mailing_City=None)
    again = admin.sync("zoho", streams=["customers"])
    assert again.pulled == 3 and again.created == 0 and again.updated == 3
    assert count(fast, customers) == 5000

    # Touched in Zoho without a change: pulled again, nothing re-sealed, counted as skipped.
    for record_id in changed:
        five_thousand.modify(record_id)
    touched = admin.sync("zoho", streams=["customers"])
    assert touched.pulled == 3 and touched.updated == 0 and touched.skipped == 3


def test_a_record_deleted_in_zoho_unbinds_its_identity_and_keeps_the_customer(
    admin: Session, fast: Vault, small: ZohoSandbox
) -> None:
    admin.configure_connector("zoho", small.settings())
    admin.sync("zoho")
    gone = small.stored()[10]["id"]
    small.delete_in_crm(gone)
    report = admin.sync("zoho")
    assert report.deleted == 1
    assert count(fast, customer_identities) == 999 and count(fast, customers) == 1000


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("rate_limit", {"times": 2}),
        ("server_error", {"times": 2}),
        ("drop", {}),
        ("malformed", {}),
        ("token_expired", {}),
        ("timeout", {"seconds": 1.5}),
    ],
)
def test_faults_mid_run_end_in_a_complete_sync(
    admin: Session, fast: Vault, small: ZohoSandbox, kind: str, params: dict[str, float]
) -> None:
    admin.configure_connector("zoho", small.settings(timeout_seconds="0.5"))
    small.faults.inject(kind, match="/crm/v8/Contacts", after=2, **params)  # type: ignore[arg-type]
    report = admin.sync("zoho", streams=["customers"])
    assert small.faults.injected, "the fault was served"
    assert report.pulled == 1000 and report.created == 1000
    assert count(fast, customers) == 1000 and count(fast, customer_identities) == 1000
    if kind == "rate_limit":
        assert report.rate_limit_waits == 2
    elif kind != "token_expired":
        assert report.retries >= 1


def test_persistent_500_fails_clearly_with_the_cursor_at_the_last_good_batch(
    admin: Session, fast: Vault, small: ZohoSandbox
) -> None:
    admin.configure_connector("zoho", small.settings())
    small.faults.inject("server_error", match="/crm/v8/Contacts", after=3, times=100)
    with pytest.raises(PlatformUnavailable, match="HTTP 500"):
        admin.sync("zoho", streams=["customers"])
    cursor = cursor_of(fast, "customers")
    assert cursor is not None and cursor["page"] == 4 and cursor["since"] is None
    assert count(fast, customers) == 600  # three pages of 200, nothing partial
    small.faults.clear()
    report = admin.sync("zoho", streams=["customers"])
    assert report.created == 400 and count(fast, customers) == 1000
    assert admin.audit_verify().ok
