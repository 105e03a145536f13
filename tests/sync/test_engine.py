"""The sync engine: settings sealed, cursors per batch, idempotent upserts, retries, dry runs."""

from __future__ import annotations

import json

import pytest
import sync_toyshop
from sqlalchemy import func, select

from vault.errors import (
    ConfigError,
    ConnectorError,
    PlatformAuthFailed,
    PlatformQuotaExhausted,
    PlatformUnavailable,
)
from vault.session import Session
from vault.store.schema import connector_settings, customers, orders, sync_cursors
from vault.vault import Vault


def count(vault: Vault, table: object) -> int:
    with vault._engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def cursor_of(vault: Vault, stream: str) -> dict[str, object] | None:
    with vault._engine.connect() as connection:
        row = connection.execute(
            select(sync_cursors.c.cursor).where(
                sync_cursors.c.connector == "toyshop", sync_cursors.c.stream == stream
            )
        ).scalar_one_or_none()
    return None if row is None else dict(json.loads(row))


def test_settings_are_stored_sealed_and_shown_redacted(
    admin: Session, vault: Vault, toyshop: sync_toyshop.ToyShopSandbox
) -> None:
    shown = admin.configure_connector("toyshop", toyshop.settings())
    assert shown["client_secret"] == "********" and shown["client_id"] == "toy-app"
    with vault._engine.connect() as connection:
        sealed = connection.execute(select(connector_settings.c.sealed)).scalar_one()
    assert toyshop.client_secret.encode() not in sealed and b"toy-app" not in sealed
    for path in vault.home.path.rglob("*"):
        if path.is_file() and path.suffix in (".toml", ".json", ".log"):
            assert toyshop.client_secret not in path.read_text(encoding="utf-8", errors="ignore")
    # merged with what is stored; the secret is kept
    admin.configure_connector("toyshop", {"page_size": "7"})
    settings = admin.connector_settings("toyshop")
    assert settings["page_size"] == "7" and settings["client_secret"] == "********"
    assert "connector-toyshop" in {p.name for p in admin.list_principals()}


def test_unknown_connector_is_a_clear_config_error(admin: Session) -> None:
    with pytest.raises(ConfigError, match="no connector named 'nope'"):
        admin.configure_connector("nope", {"a": "b"})


def test_sync_pulls_every_page_as_the_service_principal_and_audits_it(
    admin: Session, vault: Vault, toyshop: sync_toyshop.ToyShopSandbox
) -> None:
    admin.configure_connector("toyshop", toyshop.settings())
    report = admin.sync("toyshop")
    assert (report.pulled, report.created, report.counts.orders) == (90, 60, 30)
    assert report.principal == "connector-toyshop"
    assert count(vault, customers) == 60 and count(vault, orders) == 30
    first = toyshop.customers[1]
    found = admin.find_customers("phone", first["mobile"], purpose="administration")
    assert len(found) == 1
    assert admin.find_by_identity("toyshop", first["id"]) == found[0]
    events = admin.audit_query(
        __import__("vault.audit", fromlist=["AuditQuery"]).AuditQuery(actor="connector-toyshop")
    )
    assert events and all(e["action"] == "sync" for e in events)
    assert admin.audit_verify().ok
    assert cursor_of(vault, "customers") == {"after": "C000059"}


def test_a_second_sync_resumes_from_the_cursor_and_a_full_one_changes_nothing(
    admin: Session, vault: Vault, toyshop: sync_toyshop.ToyShopSandbox
) -> None:
    admin.configure_connector("toyshop", toyshop.settings())
    admin.sync("toyshop")
    again = admin.sync("toyshop")
    assert again.created == 0 and again.pulled == 0
    full = admin.sync("toyshop", full=True)
    assert (full.pulled, full.created, full.updated, full.skipped) == (90, 0, 0, 90)
    assert count(vault, customers) == 60 and count(vault, orders) == 30


def test_dry_run_reports_what_would_change_and_writes_nothing(
    admin: Session, vault: Vault, toyshop: sync_toyshop.ToyShopSandbox
) -> None:
    admin.configure_connector("toyshop", toyshop.settings())
    report = admin.sync("toyshop", dry_run=True, streams=["customers"])
    assert report.created == 60 and report.dry_run
    assert count(vault, customers) == 0
    assert cursor_of(vault, "customers") is None


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("rate_limit", {"retry_after": 1, "times": 2}),
        ("server_error", {"times": 3}),
        ("timeout", {"seconds": 1.5}),
        ("drop", {"times": 2}),
        ("malformed", {"times": 2}),
        ("token_expired", {}),
    ],
)
def test_faults_mid_run_end_in_a_complete_correct_sync(
    admin: Session,
    fast_retries: Vault,
    toyshop: sync_toyshop.ToyShopSandbox,
    kind: str,
    params: dict[str, float],
) -> None:
    admin.configure_connector("toyshop", toyshop.settings())
    toyshop.faults.inject(kind, match="/v1/customers", after=1, **params)  # type: ignore[arg-type]
    report = admin.sync("toyshop", streams=["customers"])
    assert toyshop.faults.injected, "the fault was served"
    assert report.created == 60 and report.pulled == 60
    assert count(fast_retries, customers) == 60
    if kind == "rate_limit":
        assert report.rate_limit_waits == 2
        assert report.waited_seconds <= 2 * fast_retries.sync_policy.max_rate_limit_wait
    elif kind != "token_expired":
        assert report.retries >= 1


def test_persistent_5xx_fails_clearly_keeping_the_cursor_at_the_last_good_batch(
    admin: Session, fast_retries: Vault, toyshop: sync_toyshop.ToyShopSandbox
) -> None:
    admin.configure_connector("toyshop", toyshop.settings())
    toyshop.faults.inject("server_error", match="/v1/customers", after=2, times=100)
    with pytest.raises(PlatformUnavailable, match="HTTP 500"):
        admin.sync("toyshop", streams=["customers"])
    assert cursor_of(fast_retries, "customers") == {"after": "C000039"}  # two pages of 20
    assert count(fast_retries, customers) == 40
    status = admin.sync_status()[0]
    assert status["last_run"]["status"] == "failed"
    assert "PlatformUnavailable" in status["last_run"]["error"]
    toyshop.faults.clear()
    report = admin.sync("toyshop", streams=["customers"])
    assert report.created == 20 and count(fast_retries, customers) == 60
    assert admin.audit_verify().ok


def test_quota_exhausted_and_refused_credentials_stop_with_the_cursor_kept(
    admin: Session, fast_retries: Vault, toyshop: sync_toyshop.ToyShopSandbox
) -> None:
    admin.configure_connector("toyshop", toyshop.settings())
    toyshop.quota = 1
    with pytest.raises(PlatformQuotaExhausted):
        admin.sync("toyshop", streams=["customers"])
    assert cursor_of(fast_retries, "customers") == {"after": "C000019"}
    toyshop.quota = None
    admin.configure_connector("toyshop", {"client_secret": "wrong"})
    with pytest.raises(PlatformAuthFailed):
        admin.sync("toyshop", streams=["customers"])
    assert cursor_of(fast_retries, "customers") == {"after": "C000019"}
    assert count(fast_retries, customers) == 20


def test_progress_is_reported_after_every_committed_batch(
    admin: Session, toyshop: sync_toyshop.ToyShopSandbox
) -> None:
    from vault.sync.engine import Progress

    admin.configure_connector("toyshop", toyshop.settings())
    seen: list[Progress] = []
    admin.sync("toyshop", streams=["customers"], on_progress=seen.append)
    assert [p.batches for p in seen] == [1, 2, 3]
    assert seen[-1].counts.created == 60 and seen[-1].stream == "customers"


def test_no_value_or_secret_reaches_a_log_line_or_an_audit_event(
    admin: Session,
    fast_retries: Vault,
    toyshop: sync_toyshop.ToyShopSandbox,
    capfd: pytest.CaptureFixture[str],
    tmp_path: object,
) -> None:
    import sys

    from vault.audit import AuditQuery
    from vault.log import configure_logging

    configure_logging(level="DEBUG")  # to this test's captured stderr
    try:
        admin.configure_connector("toyshop", toyshop.settings())
        toyshop.faults.inject("server_error", match="/v1/customers", after=1, times=2)
        admin.sync("toyshop")
        out, err = capfd.readouterr()
    finally:
        import structlog

        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.__stderr__))
    events = json.dumps(admin.audit_query(AuditQuery(limit=None)), ensure_ascii=False)
    for text in (out + err, events):
        assert toyshop.client_secret not in text
        for row in toyshop.customers:
            assert row["name"] not in text and row["email"] not in text
            assert row["mobile"] not in text


def test_reconciling_a_connector_that_cannot_list_its_ids_is_refused_before_any_pull(
    admin: Session, vault: Vault, toyshop: sync_toyshop.ToyShopSandbox
) -> None:
    admin.configure_connector("toyshop", toyshop.settings())
    with pytest.raises(ConnectorError, match="cannot be reconciled"):
        admin.sync("toyshop", reconcile=True)
    assert count(vault, customers) == 0 and cursor_of(vault, "customers") is None
