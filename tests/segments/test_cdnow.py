"""The repeat-purchase summary reproduces the published CDNOW summary exactly.

Fader & Hardie's 1/10 sample of the CDNOW cohort (2,357 customers who first bought in the first
quarter of 1997), same-day purchases merged, observation end 1997-09-30 (39 weeks after the
cohort's start), time in weeks: ``cdnow_customers_summary_with_transactions.csv`` gives x, t_x,
T and the mean repeat value (zbar) per customer to 2 decimals. Money is computed in exact cents
and rounded half-up, never through a float.
"""

from __future__ import annotations

import csv
import os
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from vault import Vault
from vault.segments import PurchaseHistory, repeat_summary, round_half_up
from vault.segments.importer import parse_cdnow
from vault.segments.summary import major_units
from vault.session import Session

DATASETS = Path(
    os.environ.get("VAULT_DATASETS")
    or Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
)
SAMPLE = DATASETS / "cdnow" / "CDNOW_sample.txt"
PUBLISHED = DATASETS / "cdnow" / "cdnow_customers_summary_with_transactions.csv"
END = date(1997, 9, 30)

pytestmark = pytest.mark.skipif(
    not SAMPLE.exists() and os.environ.get("CI", "").lower() != "true",
    reason=f"the CDNOW data set is not at {SAMPLE} (set VAULT_DATASETS)",
)


def _published() -> dict[str, tuple[str, str, str, str]]:
    with PUBLISHED.open(encoding="ascii", newline="") as handle:
        return {
            row["ID"]: (row["x"], row["t_x"], row["T"], row["zbar"])
            for row in csv.DictReader(handle)
        }


def _sample_ids() -> dict[str, str]:
    """Master id -> sample id (the published file's ID), from the sample's first two columns."""
    ids: dict[str, str] = {}
    for line in SAMPLE.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if parts:
            ids[str(int(parts[0]))] = str(int(parts[1]))
    return ids


def _rounded(history: PurchaseHistory) -> tuple[str, str, str, str]:
    summary = repeat_summary(history, end=END, unit="weeks")
    return (
        str(summary.x),
        str(round_half_up(summary.t_x)),
        str(round_half_up(summary.T)),
        str(round_half_up(major_units(summary.mean_repeat_value))),
    )


def test_repeat_summary_equals_the_published_cdnow_summary_for_every_customer() -> None:
    zone = ZoneInfo("UTC")
    parsed = parse_cdnow(SAMPLE, timezone=zone)
    assert parsed.lines == 6919
    purchases: dict[str, list[tuple[date, int]]] = {}
    for item in parsed.orders:
        assert item.external_customer is not None
        day = item.order.created_at.astimezone(zone).date()
        purchases.setdefault(item.external_customer, []).append((day, item.order.total_amount))
    sample_ids = _sample_ids()
    published = _published()
    assert len(published) == 2357
    computed = {}
    for master, rows in purchases.items():
        history = PurchaseHistory.of(rows, end=END)
        assert history is not None
        computed[sample_ids[master]] = _rounded(history)
    mismatches = {
        cid: (computed.get(cid), want)
        for cid, want in published.items()
        if computed.get(cid) != want
    }
    assert not mismatches, (
        f"{len(mismatches)} customers differ, e.g. {list(mismatches.items())[:3]}"
    )
    assert len(computed) == len(published)


def test_round_half_up_rounds_halves_up_where_a_float_would_not() -> None:
    # 22.345 dollars (customer 1's mean repeat value) is 22.344999… as a float.
    assert round(2234.5 / 100, 2) == 22.34
    assert round_half_up(Fraction(4469, 200)) == Decimal("22.35")
    assert round_half_up(Fraction(-4469, 200)) == Decimal("-22.35")
    assert round_half_up(Fraction(213, 7)) == Decimal("30.43")
    assert round_half_up(0) == Decimal("0.00")


ROUND_TRIP_CUSTOMERS = 400  # the exactness over all 2,357 is the pure test's; this is the store's


def test_cdnow_sample_imported_into_the_store_gives_the_published_summary(
    vault: Vault, admin: Session, tmp_path: Path
) -> None:
    lines = [
        line
        for line in SAMPLE.read_text(encoding="ascii").splitlines(keepends=True)
        if line.split() and int(line.split()[1]) <= ROUND_TRIP_CUSTOMERS
    ]
    part = tmp_path / "cdnow_part.txt"
    part.write_text("".join(lines), encoding="ascii")
    report = admin.import_orders(part, fmt="cdnow")
    assert (report.lines, report.orders) == (len(lines), len(lines))
    assert report.customers_created == ROUND_TRIP_CUSTOMERS
    summaries = admin.rfm_summaries(definition="repeat", end=END, unit="weeks")
    assert len(summaries) == ROUND_TRIP_CUSTOMERS
    sample_ids = {m: s for m, s in _sample_ids().items() if int(s) <= ROUND_TRIP_CUSTOMERS}
    published = _published()
    with vault._engine.connect() as connection:
        by_customer = {
            vault._customers.find_identity(connection, "cdnow", master): sample
            for master, sample in sample_ids.items()
        }
    for customer_id, summary in summaries.items():
        assert hasattr(summary, "x")
        want = published[by_customer[customer_id]]
        got = (
            str(summary.x),  # type: ignore[union-attr]
            str(round_half_up(summary.t_x)),  # type: ignore[union-attr]
            str(round_half_up(summary.T)),  # type: ignore[union-attr]
            str(round_half_up(major_units(summary.mean_repeat_value))),  # type: ignore[union-attr]
        )
        assert got == want, customer_id
    # A second import of the same file changes nothing (orders are keyed by their ids).
    again = admin.import_orders(part, fmt="cdnow")
    assert (again.customers_created, again.customers_found) == (0, ROUND_TRIP_CUSTOMERS)
    assert admin.rfm_summaries(definition="repeat", end=END, unit="weeks") == summaries
