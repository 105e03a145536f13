"""End to end: ``admin.configure_connector("fxiaoke", ...)`` and ``admin.sync("fxiaoke")``
against the sandbox over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.fxiaoke.sandbox import FxiaokeSandbox
from vault.errors import PlatformAuthFailed, PlatformQuotaExhausted, PlatformUnavailable
from vault.session import Session
from vault.store.schema import customer_identities, customers, sync_cursors
from vault.sync.retry import SyncPolicy
from vault.vault import Vault

FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=0.2)


def settings_of(sandbox: FxiaokeSandbox, **extra: str) -> dict[str, str]:
    return {**sandbox.credentials(), **sandbox.urls(), **extra}


def count(vault: Vault, table: Any) -> int:
    with vault._engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def cursor_of(vault: Vault) -> dict[str, Any] | None:
    with vault._engine.connect() as connection:
        row = connection.execute(
            select(sync_cursors.c.cursor).where(sync_cursors.c.connector == "fxiaoke")
        ).scalar_one_or_none()
    return None if row is None else dict(json.loads(row))


@pytest.fixture
def fast(vault: Vault) -> Vault:
    vault.sync_policy = FAST
    return vault


@pytest.mark.slow
def test_full_pull_of_12000_then_incremental_pulls_only_what_changed(
    admin: Session, vault: Vault
) -> None:
    with FxiaokeSandbox(seed=11, records=12_000, endpoint_limit=None) as sandbox:
        admin.configure_connector("fxiaoke", settings_of(sandbox, calls_per_20s="0"))
        report = admin.sync("fxiaoke")
        assert (report.pulled, report.created, report.rejected) == (12_000, 12_000, 0)
        assert report.streams == {"customers": 121}  # 101 offset pages, 20 by _id
        assert count(vault, customers) == 12_000
        assert count(vault, customer_identities) == 12_000
        sample = sandbox.live()[10_500]  # beyond the 10,000-offset limit
        assert admin.find_by_identity("fxiaoke", sample["_id"]) is not None

        edited = [r["_id"] for r in sandbox.live()[::4000]]
        for record_id in edited:
            sandbox.edit(record_id, add="浙江省杭州市西湖区文三路90号")
        again = admin.sync("fxiaoke")
        assert (again.pulled, again.updated, again.created) == (3, 3, 0)
        assert count(vault, customers) == 12_000
        assert admin.sync("fxiaoke").pulled == 0


def test_full_and_incremental_pull_of_a_small_tenant(
    admin: Session, vault: Vault, sandbox: FxiaokeSandbox
) -> None:
    admin.configure_connector("fxiaoke", settings_of(sandbox))
    first = admin.sync("fxiaoke")
    assert (first.pulled, first.created) == (300, 300)
    contact = sandbox.live()[42]
    customer_id = admin.find_by_identity("fxiaoke", contact["_id"])
    assert customer_id is not None
    shown = admin.get_customer(customer_id, purpose="administration")
    assert shown.get("name") == contact["name"]
    assert shown.fields["name"].source == "fxiaoke"
    assert admin.sync("fxiaoke").pulled == 0
    full = admin.sync("fxiaoke", full=True)
    assert (full.pulled, full.created, full.updated) == (300, 0, 0)


def test_a_record_voided_in_fenxiang_unbinds_its_identity(
    admin: Session, vault: Vault, sandbox: FxiaokeSandbox
) -> None:
    admin.configure_connector("fxiaoke", settings_of(sandbox))
    admin.sync("fxiaoke")
    voided = sandbox.live()[7]["_id"]
    sandbox.edit(voided, life_status="invalid")
    report = admin.sync("fxiaoke")
    assert report.counts.deleted == 1
    assert admin.find_by_identity("fxiaoke", voided) is None
    assert count(vault, customers) == 300  # the person stays in the vault


@pytest.mark.parametrize(
    "fault",
    ["30004", "server_error", "http_500", "drop", "malformed", "timeout", "token_expired"],
)
def test_faults_mid_run_end_in_a_complete_sync(
    admin: Session, fast: Vault, sandbox: FxiaokeSandbox, fault: str
) -> None:
    admin.configure_connector("fxiaoke", settings_of(sandbox, timeout_seconds="0.5"))
    query = "/data/query"
    if fault == "30004":
        sandbox.faults.inject("rate_limit", match=query, after=2, times=2)
    elif fault == "http_500":
        sandbox.fail_with(http_status=500, match=query, after=2, times=2)
    elif fault == "token_expired":  # once: twice in a row would be a refused token
        sandbox.faults.inject(fault, match=query, after=2)
    else:
        sandbox.faults.inject(fault, match=query, after=2, times=2, seconds=1.0)
    report = admin.sync("fxiaoke")
    assert sandbox.faults.injected or fault == "http_500"
    assert (report.pulled, report.created) == (300, 300)
    assert count(fast, customers) == 300 and count(fast, customer_identities) == 300
    assert report.retries + report.rate_limit_waits >= (0 if fault == "token_expired" else 1)
    assert admin.audit_verify().ok


def test_quota_exhausted_mid_run_stops_with_the_cursor_at_the_last_good_batch(
    admin: Session, fast: Vault, sandbox: FxiaokeSandbox
) -> None:
    admin.configure_connector("fxiaoke", settings_of(sandbox))
    # the first query finds the newest change; pages at offset 0 and 100 come next
    sandbox.fail_with(30002, match="/data/query", after=3)
    with pytest.raises(PlatformQuotaExhausted, match="daily OpenAPI quota"):
        admin.sync("fxiaoke")
    assert count(fast, customers) == 200
    saved = cursor_of(fast)
    assert saved is not None and (saved["phase"], saved["offset"]) == ("full", 200)
    status = admin.sync_status()[0]
    assert status["last_run"]["status"] == "failed" and "30002" in status["last_run"]["error"]
    resumed = admin.sync("fxiaoke")
    assert (resumed.pulled, resumed.created) == (100, 100)
    assert count(fast, customers) == 300


def test_a_platform_that_stays_down_fails_clearly_and_keeps_what_was_pulled(
    admin: Session, fast: Vault, sandbox: FxiaokeSandbox
) -> None:
    admin.configure_connector("fxiaoke", settings_of(sandbox))
    sandbox.fail_with(-1, match="/data/query", after=2, times=50)
    with pytest.raises(PlatformUnavailable, match="busy"):
        admin.sync("fxiaoke")
    assert count(fast, customers) == 100
    saved = cursor_of(fast)
    assert saved is not None and saved["offset"] == 100


def test_wrong_credentials_fail_clearly_and_write_nothing(
    admin: Session, vault: Vault, sandbox: FxiaokeSandbox
) -> None:
    admin.configure_connector("fxiaoke", settings_of(sandbox, app_secret="not-the-secret"))
    with pytest.raises(PlatformAuthFailed, match="10006") as caught:
        admin.sync("fxiaoke")
    assert "not-the-secret" not in str(caught.value)
    assert count(vault, customers) == 0 and cursor_of(vault) is None
