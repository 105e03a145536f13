"""Segments as export filters: still under the export's consent and field rules."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from vault import InvalidValue, NewCustomer, Vault
from vault.cli import cli
from vault.records import Order
from vault.segments import Segmenter
from vault.session import Session

NOW = datetime(2025, 6, 30, 4, tzinfo=UTC)


def buy(admin: Session, customer_id: str, orders: int, amount: int, days_ago: int) -> None:
    for n in range(orders):
        at = NOW - timedelta(days=days_ago + n * 7)
        admin.record_order(
            Order(
                platform="youzan",
                shop="s",
                order_id=f"{customer_id}-{n}",
                status="paid",
                currency="CNY",
                total_amount=amount,
                created_at=at,
                updated_at=at,
                customer_id=customer_id,
            ),
            source="t",
        )


def exported_ids(admin: Session, **filters: object) -> list[str]:
    out = io.BytesIO()
    admin.export("marketing_sms", out, fields=["phone"], **filters)  # type: ignore[arg-type]
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    return [row["customer_id"] for row in rows]


def test_an_export_filtered_by_tier_contains_exactly_the_consented_customers_of_that_tier(
    vault: Vault, admin: Session
) -> None:
    segmenter = Segmenter(vault.segments.rules, clock=lambda: NOW)
    vault.segments = segmenter
    vault._customers.segmenter = segmenter
    ids = admin.add_customers(
        [NewCustomer(fields={"phone": f"1380013{n:04d}"}) for n in range(40)], source="t"
    )
    # Ten big, recent, frequent buyers; thirty small or old ones; then a scoring run.
    for n, customer_id in enumerate(ids):
        if n < 10:
            buy(admin, customer_id, orders=6, amount=50_000, days_ago=2)
        else:
            buy(admin, customer_id, orders=1, amount=1_000 + n, days_ago=30 + 10 * n)
    admin.recompute_segments()
    high_value = set(admin.segment_members("tier:high_value", limit=1000).customer_ids)
    assert high_value == set(ids[:10])
    consented = set(ids[::2])  # every other customer consents to SMS marketing
    for customer_id in consented:
        admin.grant_consent(customer_id, "marketing_sms", source="t")
    assert sorted(exported_ids(admin, segments=["tier:high_value"])) == sorted(
        high_value & consented
    )
    assert sorted(exported_ids(admin, segment="high_value")) == sorted(high_value & consented)
    # Composes with other filters: tier and stage both must hold.
    assert exported_ids(admin, segments=["tier:high_value", "stage:prospect"]) == []
    with pytest.raises(InvalidValue, match="no tier 'gold'"):
        exported_ids(admin, segments=["tier:gold"])


def test_vault_export_takes_tier_stage_and_group_filters(
    initialised: tuple[Vault, str], home: Path, tmp_path: Path
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    buyer, prospect = admin.add_customers(
        [
            NewCustomer(fields={"phone": "13800138000"}),
            NewCustomer(fields={"phone": "13900139000"}),
        ],
        source="t",
    )
    at = datetime.now(UTC) - timedelta(days=1)
    admin.record_order(
        Order(
            platform="youzan",
            shop="s",
            order_id="1",
            status="paid",
            currency="CNY",
            total_amount=100,
            created_at=at,
            updated_at=at,
            customer_id=buyer,
        ),
        source="t",
    )
    for customer_id in (buyer, prospect):
        admin.grant_consent(customer_id, "marketing_sms", source="t")
    output = tmp_path / "out.csv"

    def export(*args: str) -> list[str]:
        result = CliRunner().invoke(
            cli,
            [
                "--home",
                str(home),
                "--token",
                token,
                "export",
                "--purpose",
                "marketing_sms",
                "--fields",
                "phone",
                "-o",
                str(output),
                *args,
            ],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        with output.open(encoding="utf-8-sig") as handle:
            return [row["customer_id"] for row in csv.DictReader(handle)]

    assert export("--stage", "first_purchase") == [buyer]
    assert export("--stage", "prospect") == [prospect]
    assert export("--segment", "prospect") == [prospect]
    admin.add_group("everyone_who_bought", "orders > 0")
    assert export("--group", "everyone_who_bought") == [buyer]
