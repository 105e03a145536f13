"""The Taobao connector through the sync engine into a vault (SQLite and PostgreSQL), over real
HTTP against the sandbox: full and incremental pulls, resumption, identities and masks,
faults mid-run, and platform decryption through the one door."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from taobao_helpers import settings_for

from connectors.taobao.sandbox import TaobaoSandbox
from vault import Vault
from vault.audit import AuditQuery
from vault.errors import AccessDenied
from vault.session import Session
from vault.store.schema import customer_fields, orders, platform_handles
from vault.sync.engine import Progress
from vault.sync.retry import SyncPolicy

FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=2.0)
TOP_STATUS = {
    "WAIT_BUYER_PAY": "pending",
    "WAIT_SELLER_SEND_GOODS": "paid",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_CLOSED_BY_TAOBAO": "cancelled",
    "TRADE_CLOSED": "refunded",
}


def expected_status(sandbox: TaobaoSandbox, tid: int) -> str:
    trade = sandbox.trades[tid]
    if trade.status == "TRADE_FINISHED":
        refunded = any(line.refund_status == "SUCCESS" for line in trade.lines)
        return "partially_refunded" if refunded else "completed"
    return TOP_STATUS[trade.status]


def stored_orders(vault: Vault) -> dict[str, tuple[str, str, int]]:
    """order id -> (status, shop, total) of every Taobao order in the vault (asserting each is
    there once)."""
    with vault._reader.connect() as connection:
        rows = connection.execute(
            select(orders.c.order_id, orders.c.status, orders.c.shop, orders.c.total_amount).where(
                orders.c.platform == "taobao"
            )
        ).all()
    found = {row.order_id: (row.status, row.shop, row.total_amount) for row in rows}
    assert len(found) == len(rows), "an order is stored twice"
    return found


def assert_mirrors(vault: Vault, sandbox: TaobaoSandbox) -> None:
    found = stored_orders(vault)
    assert set(found) == {str(t) for t in sandbox.trades}
    for tid, trade in sandbox.trades.items():
        status, shop, total = found[str(tid)]
        assert status == expected_status(sandbox, tid)
        assert shop == sandbox.shops[trade.shop].nick
        assert total == trade.total_fee + trade.post_fee


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Iterator[TaobaoSandbox]:
    size = getattr(request, "param", 250)
    if size == "full-pull":
        size = request.getfixturevalue("full_pull_orders")
    with TaobaoSandbox(seed=21, records=size) as running:
        assert isinstance(running, TaobaoSandbox)
        yield running


@pytest.fixture
def configured(admin: Session, vault: Vault, sandbox: TaobaoSandbox) -> Session:
    vault.sync_policy = FAST
    admin.configure_connector("taobao", settings_for(sandbox, detail_workers="4"))
    return admin


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", ["full-pull"], indirect=True)
def test_full_pull_of_20000_orders_then_incremental_every_order_once(
    configured: Session, vault: Vault, sandbox: TaobaoSandbox
) -> None:
    report = configured.sync("taobao")
    assert report.ok and report.counts.orders >= sandbox.records
    assert_mirrors(vault, sandbox)
    touched = sandbox.advance(changes=40, refunds=15, new_orders=25)
    again = configured.sync("taobao")
    assert again.ok and again.counts.orders < 500  # the recent window, not the history again
    assert_mirrors(vault, sandbox)
    assert {str(t) for t in touched} <= set(stored_orders(vault))
    assert sandbox.decrypt_calls == {}  # a sync never decrypts


def test_a_killed_sync_resumes_to_the_same_state(
    configured: Session, vault: Vault, sandbox: TaobaoSandbox
) -> None:
    batches = 0

    def kill_after_some(progress: Progress) -> None:
        nonlocal batches
        if progress.batches:
            batches += 1
            if batches == 3:
                raise KeyboardInterrupt  # the process is killed mid-run

    with pytest.raises(KeyboardInterrupt):
        configured.sync("taobao", on_progress=kill_after_some)
    partial = stored_orders(vault)
    assert 0 < len(partial) < len(sandbox.trades)
    sandbox.advance(changes=10, refunds=5)
    configured.sync("taobao")
    assert_mirrors(vault, sandbox)


def test_status_changes_update_orders_never_duplicate_them(
    configured: Session, vault: Vault, sandbox: TaobaoSandbox
) -> None:
    configured.sync("taobao")
    before = stored_orders(vault)
    touched = sandbox.advance(changes=20, refunds=10)
    configured.sync("taobao")
    after = stored_orders(vault)
    assert len(after) == len(before)
    changed = {t for t in after if after[t][0] != before[t][0]}
    assert changed == {str(t) for t in touched}
    assert {after[str(t)][0] for t in touched} >= {"refunded"}


@pytest.mark.parametrize(
    "fault",
    ["throttle", "isp", "server_error", "drop", "malformed", "rate_limit"],
)
def test_flow_control_and_5xx_mid_run_end_in_a_complete_sync(
    configured: Session, vault: Vault, sandbox: TaobaoSandbox, fault: str
) -> None:
    if fault == "throttle":
        sandbox.throttle(rate=60.0, burst=10, ban_seconds=1)
    elif fault == "isp":
        sandbox.inject_isp_error(times=3, after=5)
    else:
        sandbox.faults.inject(fault, after=7, times=2)
    report = configured.sync("taobao")
    assert report.ok
    if fault == "throttle":  # short bans the connector waits out itself (see _paced)
        assert sandbox.bans_served >= 1
    elif fault == "rate_limit":  # the code-7 shape with a 1-second ban: waited out the same way
        assert [kind for kind, _ in sandbox.faults.injected] == ["rate_limit"] * 2
    else:
        assert report.retries + report.rate_limit_waits >= 1
    assert_mirrors(vault, sandbox)


def test_an_expired_session_stops_the_sync_with_its_cursor_kept(
    configured: Session, vault: Vault, sandbox: TaobaoSandbox
) -> None:
    from vault.errors import PlatformAuthFailed

    configured.sync("taobao")
    sandbox.expire_tokens()
    with pytest.raises(PlatformAuthFailed):
        configured.sync("taobao")
    status = configured.sync_status()[0]
    assert status["last_run"]["status"] == "failed"
    assert "PlatformAuthFailed" in status["last_run"]["error"]
    assert str(sandbox.shops[0].session) not in str(status)


def test_buyer_in_two_shops_known_from_an_import_is_one_customer_and_keeps_the_full_phone(
    configured: Session, vault: Vault, sandbox: TaobaoSandbox, tmp_path: Path
) -> None:
    two_shops = {sandbox.trades[t].buyer for t in sandbox.trades} & {
        b.index for b in sandbox.buyers if len(b.shops) == 2
    }
    buyer = next(
        sandbox.buyers[i]
        for i in sorted(two_shops)
        if {sandbox.trades[t].shop for t in sandbox.trades if sandbox.trades[t].buyer == i}
        == {0, 1}
    )
    export = tmp_path / "crm-export.csv"  # a shop's own export: GB18030, Chinese headers
    export.write_bytes(
        f"姓名,手机号,买家ID\n{buyer.person.name},{buyer.person.phone},{buyer.open_uid}\n".encode(
            "gb18030"
        )
    )
    assert configured.import_file(export).created == 1
    imported = configured.find_by_identity("taobao", buyer.open_uid)
    assert imported is not None
    configured.sync("taobao")
    customer = configured.get_customer(imported)
    assert customer.get("phone") == "+86" + buyer.person.phone
    assert customer.fields["phone"].masked is False and customer.get("name") == buyer.person.name
    platforms = sorted(i.platform for i in customer.identities)
    assert platforms.count("taobao") == 1 and platforms.count("taobao_oaid") == 2
    their_orders = configured.orders_of(imported)
    expected = {str(t) for t, trade in sandbox.trades.items() if trade.buyer == buyer.index}
    assert {o.order_id for o in their_orders} == expected
    assert {o.shop for o in their_orders} == {s.nick for s in sandbox.shops}
    assert configured.find_customers("phone", buyer.person.phone) == [imported]


def test_a_buyer_known_only_by_platform_ids_gets_masked_fields_and_handles(
    configured: Session, vault: Vault, sandbox: TaobaoSandbox
) -> None:
    configured.sync("taobao")
    trade = next(iter(sandbox.trades.values()))
    buyer = sandbox.buyers[trade.buyer]
    customer_id = configured.find_by_identity("taobao", buyer.open_uid)
    assert customer_id is not None
    customer = configured.get_customer(customer_id)
    assert customer.fields["phone"].masked and "****" in (customer.get("phone") or "")
    assert customer.fields["name"].masked
    assert "address" not in customer.fields  # a masked address is not an address
    with vault._reader.connect() as connection:
        handles = connection.execute(
            select(platform_handles.c.field, platform_handles.c.handle).where(
                platform_handles.c.customer_id == customer_id
            )
        ).all()
    assert {h.field for h in handles} == {"name", "phone", "address"}
    oaid = sandbox.oaid_of(trade).encode()
    assert all(oaid not in bytes(h.handle) for h in handles)  # sealed again, not kept in clear


# --- platform decryption through the one door ---------------------------------------------------


def _synced_buyer(configured: Session, sandbox: TaobaoSandbox) -> tuple[str, Any]:
    configured.sync("taobao")
    buyer = next(b for b in sandbox.buyers if not b.privacy_protection and _has_trade(sandbox, b))
    customer_id = configured.find_by_identity("taobao", buyer.open_uid)
    assert customer_id is not None
    return customer_id, buyer


def _has_trade(sandbox: TaobaoSandbox, buyer: Any) -> bool:
    return any(t.buyer == buyer.index for t in sandbox.trades.values())


def test_decrypt_without_a_purpose_allowing_the_scene_is_denied_and_audited(
    configured: Session, vault: Vault, sandbox: TaobaoSandbox
) -> None:
    customer_id, _ = _synced_buyer(configured, sandbox)
    for purpose in ("marketing_sms", "administration"):
        with pytest.raises(AccessDenied) as caught:
            configured.decrypt_platform_field(
                customer_id, "phone", connector="taobao", scene="customer_service", purpose=purpose
            )
        assert "scene" in caught.value.reason
    analyst = vault.session(configured.add_principal("ana", ["analyst"]), purpose="analytics")
    with pytest.raises(AccessDenied):
        analyst.decrypt_platform_field(customer_id, "phone", connector="taobao", scene="shipping")
    assert sandbox.decrypt_calls == {}  # nothing reached the platform
    denied = configured.audit_query(AuditQuery(action="decrypt"))
    assert [e["outcome"] for e in denied] == ["denied"] * 3
    assert len(configured.audit_query(AuditQuery(action="decrypt", customer=customer_id))) == 3
    usage = {(u.scene, u.denied) for u in configured.decrypt_quota_status()}
    assert ("customer_service", 2) in usage and ("shipping", 1) in usage


def test_decrypt_for_an_allowed_scene_succeeds_is_audited_and_stored_encrypted(
    configured: Session, vault: Vault, sandbox: TaobaoSandbox
) -> None:
    customer_id, buyer = _synced_buyer(configured, sandbox)
    phone = configured.decrypt_platform_field(
        customer_id, "phone", connector="taobao", scene="after_sales", purpose="customer_service"
    )
    assert phone == "+86" + buyer.person.phone
    assert sandbox.decrypt_calls == {"2001": 1}
    customer = configured.get_customer(customer_id)
    stored = customer.fields["phone"]
    assert stored.value == phone and not stored.masked and stored.source == "taobao-decrypt"
    with vault._reader.connect() as connection:
        raw = connection.execute(
            select(customer_fields.c.value).where(
                customer_fields.c.customer_id == customer_id, customer_fields.c.field == "phone"
            )
        ).scalar_one()
    assert buyer.person.phone.encode() not in bytes(raw)  # sealed, not clear
    assert configured.find_customers("phone", buyer.person.phone) == [customer_id]
    [event] = configured.audit_query(AuditQuery(action="decrypt"))
    assert event["outcome"] == "allowed" and event["fields"] == ["phone"]
    assert event["details"]["scene"] == "after_sales" and event["details"]["stored"] is True
    assert buyer.person.phone not in str(event)
    [usage] = configured.decrypt_quota_status()
    assert (usage.connector, usage.scene, usage.calls, usage.decrypted) == (
        "taobao",
        "after_sales",
        1,
        1,
    )
    # A later sync brings the mask again: it never replaces the decrypted value.
    sandbox.advance(changes=50)
    configured.sync("taobao")
    assert configured.get_customer(customer_id).fields["phone"].value == phone


def test_support_decrypts_for_customer_service_but_sees_the_value_masked(
    configured: Session, vault: Vault, sandbox: TaobaoSandbox
) -> None:
    customer_id, buyer = _synced_buyer(configured, sandbox)
    support = vault.session(
        configured.add_principal("sam", ["support"]), purpose="customer_service"
    )
    shown = support.decrypt_platform_field(
        customer_id, "phone", connector="taobao", scene="shipping"
    )
    assert shown is not None and "****" in shown and buyer.person.phone not in shown
    name = support.decrypt_platform_field(customer_id, "name", connector="taobao", scene="shipping")
    assert name == buyer.person.name  # support sees names in clear
    assert configured.get_customer(customer_id).get("phone") == "+86" + buyer.person.phone


def test_decrypt_without_a_stored_handle_fails_and_is_audited(
    configured: Session, vault: Vault, sandbox: TaobaoSandbox
) -> None:
    from vault.errors import NotFound

    imported = configured.add_customer({"name": "王小明"}, source="import")
    with pytest.raises(NotFound):
        configured.decrypt_platform_field(
            imported, "phone", connector="taobao", scene="shipping", purpose="customer_service"
        )
    [event] = configured.audit_query(AuditQuery(action="decrypt"))
    assert event["outcome"] == "failed" and event["reason"] == "NotFound"


def test_decrypt_quota_cli_shows_counts(
    configured: Session, vault: Vault, sandbox: TaobaoSandbox, home: Any, initialised: Any
) -> None:
    import json

    from click.testing import CliRunner

    from vault.cli import cli

    customer_id, _ = _synced_buyer(configured, sandbox)
    configured.decrypt_platform_field(
        customer_id,
        "name",
        connector="taobao",
        scene="customer_service",
        purpose="customer_service",
    )
    token = initialised[1]
    result = CliRunner().invoke(
        cli, ["--home", str(home), "--token", token, "connectors", "decrypt-quota", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0] | {"day": "-"} == {
        "connector": "taobao",
        "scene": "customer_service",
        "day": "-",
        "calls": 1,
        "decrypted": 1,
        "denied": 0,
    }
    with vault._reader.connect() as connection:
        assert connection.execute(select(func.count()).select_from(orders)).scalar_one() > 0
