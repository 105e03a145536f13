"""Youzan through the sync engine into the vault (SQLite and PostgreSQL), over real HTTP:
a full pull of 20,000 orders then an incremental one, a killed sync resumed, faults mid-run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from connectors.youzan.plugin import order_status
from connectors.youzan.sandbox import YouzanSandbox
from vault.session import Session
from vault.store.schema import customer_fields, customer_identities, orders
from vault.sync.retry import SyncPolicy
from vault.vault import Vault

FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=0.2)


def settings(sandbox: YouzanSandbox) -> dict[str, str]:
    return {**sandbox.credentials(), "base_url": sandbox.url, "history_days": "3"}


def stored_orders(vault: Vault) -> dict[str, tuple[str, int]]:
    """order id -> (status, total) of every Pinduoduo order in the vault; fails on a duplicate."""
    with vault._engine.connect() as connection:
        rows = connection.execute(
            select(orders.c.order_id, orders.c.status, orders.c.total_amount).where(
                orders.c.platform == "youzan"
            )
        ).all()
    found = {row.order_id: (row.status, row.total_amount) for row in rows}
    assert len(found) == len(rows), "an order is stored twice"
    return found


def expected(sandbox: YouzanSandbox) -> dict[str, tuple[str, int]]:
    result = {}
    for tid, trade in sandbox.trades.items():
        goods = sum(int(price.replace(".", "")) * num for _, _, num, price in trade.items)
        status = order_status(trade.status, trade.refund_state)
        result[tid] = (status, goods + int(trade.post_fee.replace(".", "")))
    return result


@pytest.fixture
def big(full_pull_orders: int) -> Iterator[YouzanSandbox]:
    with YouzanSandbox(seed=31, records=full_pull_orders, span_days=2) as sandbox:
        assert isinstance(sandbox, YouzanSandbox)
        yield sandbox


@pytest.fixture
def small() -> Iterator[YouzanSandbox]:
    with YouzanSandbox(seed=32, records=800, span_days=2) as sandbox:
        assert isinstance(sandbox, YouzanSandbox)
        yield sandbox


@pytest.mark.slow
def test_full_pull_of_20000_orders_then_incremental_each_order_once_statuses_applied(
    admin: Session, vault: Vault, big: YouzanSandbox
) -> None:
    vault.sync_policy = FAST
    admin.configure_connector("youzan", settings(big))
    report = admin.sync("youzan")
    assert report.error is None and report.counts.orders >= big.records
    assert stored_orders(vault) == expected(big)
    members = big.members[big.shops[0].kdt_id]
    with vault._engine.connect() as connection:
        buyers = connection.execute(
            select(func.count(func.distinct(customer_identities.c.customer_id))).where(
                customer_identities.c.platform == "youzan"
            )
        ).scalar_one()
    assert buyers == len(members)  # one customer per yz_open_id, shared by customers and orders

    changed = big.change_statuses(300)
    again = admin.sync("youzan")
    assert 300 <= again.counts.orders < 1_000  # only the window since the cursor
    now = stored_orders(vault)
    assert len(now) == big.records and now == expected(big)
    assert {now[tid][0] for tid in changed} >= {"shipped", "completed"}

    # phones come only as ciphertexts: none is stored in clear or masked
    with vault._engine.connect() as connection:
        phones = connection.execute(
            select(func.count()).where(customer_fields.c.field == "phone")
        ).scalar_one()
    assert phones == 0


def test_a_killed_sync_resumes_to_the_same_state(
    admin: Session, vault: Vault, small: YouzanSandbox
) -> None:
    vault.sync_policy = FAST
    admin.configure_connector("youzan", settings(small))
    batches = 0

    def kill_after_a_while(progress: object) -> None:
        nonlocal batches
        if getattr(progress, "waiting", None) is None:
            batches += 1
        if batches == 8:  # pages of 100 orders and customers: well inside the run
            raise KeyboardInterrupt  # the process dies between two batches

    with pytest.raises(KeyboardInterrupt):
        admin.sync("youzan", on_progress=kill_after_a_while)
    partial = stored_orders(vault)
    assert 0 < len(partial) < len(small.trades)
    resumed = admin.sync("youzan")
    assert resumed.counts.orders < len(small.trades)  # it went on from its cursor
    assert stored_orders(vault) == expected(small)


def test_flow_control_and_server_errors_mid_run_end_in_a_complete_sync(
    admin: Session, vault: Vault, small: YouzanSandbox
) -> None:
    vault.sync_policy = FAST
    admin.configure_connector("youzan", settings(small))
    small.faults.inject("rate_limit", match="/api/", after=1, times=3)
    small.faults.inject("server_error", match="/api/", after=3, times=2)
    small.faults.inject("drop", match="/api/", after=5)
    small.faults.inject("malformed", match="/api/", after=7)
    small.faults.inject("token_expired", match="/api/", after=9)
    report = admin.sync("youzan")
    assert report.error is None
    assert report.rate_limit_waits >= 3 and report.retries >= 4
    assert {kind for kind, _ in small.faults.injected} == {
        "rate_limit",
        "server_error",
        "drop",
        "malformed",
        "token_expired",
    }
    assert stored_orders(vault) == expected(small)


def test_a_youzan_ciphertext_is_decrypted_only_through_the_door_for_an_allowed_scene(
    admin: Session, vault: Vault
) -> None:
    from vault.errors import AccessDenied

    vault.sync_policy = FAST
    with YouzanSandbox(seed=33, records=150, span_days=1) as shop:
        assert isinstance(shop, YouzanSandbox)
        admin.configure_connector("youzan", settings(shop))
        admin.sync("youzan")
        trade = sorted(shop.trades.values(), key=lambda t: t.tid)[0]
        person = shop.pool[trade.buyer]
        customer_id = admin.find_by_identity("youzan", shop.yz_open_id(trade.buyer))
        assert customer_id is not None
        with pytest.raises(AccessDenied):
            admin.decrypt_platform_field(
                customer_id, "phone", connector="youzan", scene="shipping", purpose="marketing_sms"
            )
        decrypt_calls = [p for p, _ in shop.api_log if "decrypt" in p]
        assert decrypt_calls == []  # neither the sync nor the refused request asked the platform
        value = admin.decrypt_platform_field(
            customer_id, "phone", connector="youzan", scene="shipping", purpose="customer_service"
        )
        assert value == f"+86{person.phone}"
        assert len([p for p, _ in shop.api_log if "decrypt" in p]) == 1
        stored = admin.get_customer(customer_id, purpose="customer_service").fields["phone"]
        assert stored.source == "youzan-decrypt" and not stored.masked
