"""Fenxiang has no deleted-records feed: a contact deleted for good is found missing by a
reconciling sync (``vault sync fxiaoke --reconcile``), over HTTP against the sandbox, on SQLite
and PostgreSQL. Nothing is unbound unless the listing ran to its end."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from connectors.fxiaoke.sandbox import FxiaokeSandbox
from tests.connectors.fxiaoke.test_fxiaoke_sync import FAST, settings_of
from vault import AuditQuery
from vault.errors import ConnectorError, PlatformUnavailable
from vault.session import Session
from vault.store.schema import customer_identities, customers
from vault.vault import Vault

QUERY = "/cgi/crm/v2/data/query"


def count(vault: Vault, table: object) -> int:
    with vault._engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


@pytest.fixture
def synced(admin: Session, vault: Vault, sandbox: FxiaokeSandbox) -> list[str]:
    """The 300 contacts pulled; three then deleted for good in Fenxiang. Their ids."""
    vault.sync_policy = FAST
    admin.configure_connector("fxiaoke", settings_of(sandbox))
    assert admin.sync("fxiaoke").created == 300
    gone = [r["_id"] for r in sandbox.live()[10:13]]
    for record_id in gone:
        sandbox.remove(record_id)
    return gone


def test_a_contact_deleted_for_good_is_unbound_by_a_reconciling_sync_not_by_a_plain_one(
    admin: Session, vault: Vault, synced: list[str]
) -> None:
    owners = [admin.find_by_identity("fxiaoke", i) for i in synced]
    assert admin.sync("fxiaoke").deleted == 0  # no feed: an incremental pull cannot see it
    assert all(admin.find_by_identity("fxiaoke", i) for i in synced)
    report = admin.sync("fxiaoke", reconcile=True)
    assert report.deleted == 3
    assert all(admin.find_by_identity("fxiaoke", i) is None for i in synced)
    assert count(vault, customers) == 300  # the customers stay; only the links go
    assert count(vault, customer_identities) == 297
    (event,) = [
        e
        for e in admin.audit_query(AuditQuery(action="sync", limit=None))
        if e["details"].get("operation") == "reconcile"
    ]
    assert event["details"]["unbound"] == 3 and event["details"]["listed"] == 297
    assert event["customers"]["ids"] == sorted(o for o in owners if o)
    assert admin.sync("fxiaoke", reconcile=True).deleted == 0  # nothing more to find


def test_a_dry_run_reconciliation_reports_and_unbinds_nothing(
    admin: Session, vault: Vault, synced: list[str]
) -> None:
    report = admin.sync("fxiaoke", reconcile=True, dry_run=True)
    assert report.deleted == 3
    assert count(vault, customer_identities) == 300


def test_a_listing_that_fails_midway_unbinds_nothing(
    admin: Session, vault: Vault, sandbox: FxiaokeSandbox, synced: list[str]
) -> None:
    admin.sync("fxiaoke")  # caught up: the next queries are the listing's
    sandbox.fail_with(http_status=503, match=QUERY, after=1, times=1000)
    with pytest.raises(PlatformUnavailable):
        admin.sync("fxiaoke", reconcile=True, push=False, streams=[])
    assert count(vault, customer_identities) == 300


def test_a_tenant_that_lists_nothing_is_refused_not_emptied(
    admin: Session, vault: Vault, sandbox: FxiaokeSandbox, synced: list[str]
) -> None:
    for record in sandbox.live():
        sandbox.remove(record["_id"])
    with pytest.raises(ConnectorError, match="refusing to unbind them all"):
        admin.sync("fxiaoke", reconcile=True, push=False, streams=[])
    assert count(vault, customer_identities) == 300
