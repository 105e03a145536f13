"""Pinduoduo through the sync engine into the vault (SQLite and PostgreSQL), over real HTTP:
a full pull of 20,000 orders then an incremental one, a killed sync resumed, faults mid-run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from connectors.pinduoduo.plugin import order_status
from connectors.pinduoduo.sandbox import PinduoduoSandbox
from vault.session import Session
from vault.store.schema import customer_fields, customer_identities, orders
from vault.sync.retry import SyncPolicy
from vault.vault import Vault

FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=0.2)


def settings(sandbox: PinduoduoSandbox) -> dict[str, str]:
    return {**sandbox.credentials(), "base_url": sandbox.url, "history_days": "3"}


def stored_orders(vault: Vault) -> dict[str, tuple[str, int]]:
    """order id -> (status, total) of every Pinduoduo order in the vault; fails on a duplicate."""
    with vault._engine.connect() as connection:
        rows = connection.execute(
            select(orders.c.order_id, orders.c.status, orders.c.total_amount).where(
                orders.c.platform == "pinduoduo"
            )
        ).all()
    found = {row.order_id: (row.status, row.total_amount) for row in rows}
    assert len(found) == len(rows), "an order is stored twice"
    return found


def expected(sandbox: PinduoduoSandbox) -> dict[str, tuple[str, int]]:
    result = {}
    for order_sn, order in sandbox.orders.items():
        goods = sum(count * price for _, _, count, price in order.items)
        status = order_status(order.order_status, order.refund_status)
        result[order_sn] = (status, goods - order.discount + order.postage)
    return result


@pytest.fixture
def big(full_pull_orders: int) -> Iterator[PinduoduoSandbox]:
    with PinduoduoSandbox(seed=31, records=full_pull_orders, span_days=2) as sandbox:
        assert isinstance(sandbox, PinduoduoSandbox)
        yield sandbox


@pytest.fixture
def small() -> Iterator[PinduoduoSandbox]:
    with PinduoduoSandbox(seed=32, records=1_500, span_days=2) as sandbox:
        assert isinstance(sandbox, PinduoduoSandbox)
        yield sandbox


@pytest.mark.slow
def test_full_pull_of_20000_orders_then_incremental_each_order_once_statuses_applied(
    admin: Session, vault: Vault, big: PinduoduoSandbox
) -> None:
    vault.sync_policy = FAST
    admin.configure_connector("pinduoduo", settings(big))
    report = admin.sync("pinduoduo")
    assert report.error is None and report.counts.orders >= big.records
    assert stored_orders(vault) == expected(big)

    changed = big.change_statuses(300)
    again = admin.sync("pinduoduo")
    assert 300 <= again.counts.orders < 1_000  # only the window since the cursor
    now = stored_orders(vault)
    assert len(now) == big.records and now == expected(big)
    assert {now[sn][0] for sn in changed} >= {"shipped", "completed"}

    # masked values stay masked, ciphertexts are kept as handles, no clear phone is stored
    with vault._engine.connect() as connection:
        phones = connection.execute(
            select(func.count()).where(
                customer_fields.c.field == "phone", customer_fields.c.masked.is_(False)
            )
        ).scalar_one()
        identities = connection.execute(
            select(func.count()).where(customer_identities.c.platform == "pinduoduo")
        ).scalar_one()
    assert phones == 0
    assert identities >= big.records  # one order identity each, plus the phone-index identities


def test_a_killed_sync_resumes_to_the_same_state(
    admin: Session, vault: Vault, small: PinduoduoSandbox
) -> None:
    vault.sync_policy = FAST
    admin.configure_connector("pinduoduo", settings(small))
    batches = 0

    def kill_after_a_while(progress: object) -> None:
        nonlocal batches
        if getattr(progress, "waiting", None) is None:
            batches += 1
        if batches == 60:  # windows of 30 minutes: well into the second of three days
            raise KeyboardInterrupt  # the process dies between two batches

    with pytest.raises(KeyboardInterrupt):
        admin.sync("pinduoduo", on_progress=kill_after_a_while)
    partial = stored_orders(vault)
    assert 0 < len(partial) < len(small.orders)
    resumed = admin.sync("pinduoduo")
    assert resumed.counts.orders < len(small.orders)  # it went on from its cursor
    assert stored_orders(vault) == expected(small)


def test_flow_control_and_server_errors_mid_run_end_in_a_complete_sync(
    admin: Session, vault: Vault, small: PinduoduoSandbox
) -> None:
    vault.sync_policy = FAST
    admin.configure_connector("pinduoduo", settings(small))
    small.faults.inject("rate_limit", after=10, times=3)
    small.faults.inject("server_error", after=30, times=2)
    small.faults.inject("drop", after=50)
    small.faults.inject("malformed", after=60)
    small.faults.inject("token_expired", after=70)
    report = admin.sync("pinduoduo")
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
