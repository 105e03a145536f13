"""Issue 19, item 2: tied recency is the most recent, not dormant; a group rule applies to every
live customer (with or without orders) and can use tags; recency is measured to an as-of day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from vault import NewCustomer, Vault
from vault.cli import cli
from vault.records import Order
from vault.segments import Segmenter
from vault.session import Session

NOW = datetime(2026, 11, 20, 6, tzinfo=UTC)  # 14:00 in Shanghai
GD = "广东省广州市天河区体育西路1号"
BJ = "北京市朝阳区建国路88号"


@pytest.fixture
def fixed_clock(vault: Vault) -> Vault:
    segmenter = Segmenter(vault.segments.rules, clock=lambda: NOW)
    vault.segments = segmenter
    vault._customers.segmenter = segmenter
    return vault


def paid(customer_id: str, n: int, at: datetime, amount: int = 9900) -> Order:
    return Order(
        platform="youzan",
        shop="s",
        order_id=f"{customer_id}-{n}",
        status="paid",
        currency="CNY",
        total_amount=amount,
        created_at=at,
        updated_at=at,
        customer_id=customer_id,
    )


def test_1002_of_1227_buyers_who_bought_today_are_the_most_recent_not_dormant(
    fixed_clock: Vault, admin: Session
) -> None:
    """A fresh shop sync: 1,002 bought today, 225 in the two days before. Tied recency shares
    the highest score of its rank range (R = 5), and nobody who bought this week is dormant."""
    vault = fixed_clock
    ids = admin.add_customers([NewCustomer(fields={}) for _ in range(1227)], source="t")
    today, earlier = ids[:1002], ids[1002:]
    with vault._transaction() as connection:
        vault._customers.record_orders(
            connection,
            [paid(c, 1, NOW - timedelta(hours=1)) for c in today]
            + [paid(c, 1, NOW - timedelta(days=1 + n % 2)) for n, c in enumerate(earlier)],
            source="t",
        )
    report = admin.recompute_segments()
    assert report.customers == 1227, report
    counts = admin.list_segments().counts
    assert counts["tier"]["dormant"] == 0
    assert counts["stage"]["lapsed"] == 0
    assert {admin.segment_of(c).r for c in today[:50]} == {5}
    assert {admin.segment_of(c).r for c in earlier[:50]} == {1}  # least recent of this base
    assert admin.segment_of(earlier[0]).tier == "normal"


def test_a_group_rule_applies_to_customers_without_orders(
    fixed_clock: Vault, admin: Session
) -> None:
    buyer, *never = admin.add_customers(
        [NewCustomer(fields={"address": a}) for a in (GD, GD, GD, BJ)], source="t"
    )
    admin.record_order(paid(buyer, 1, NOW - timedelta(days=3)), source="t")
    admin.recompute_segments()  # the quantile cut points: scores from here on
    assert admin.add_group("guangdong", 'province == "广东省"') == 3
    assert admin.add_group("recent_buyers", "r >= 4") == 1  # scores exist for buyers only
    assert admin.add_group("prospects", 'stage == "prospect"') == 3
    later = admin.add_customers([NewCustomer(fields={"address": GD})], source="t")[0]
    assert "guangdong" in admin.segment_of(later).groups  # at creation, no recompute needed
    admin.recompute_segments()
    sizes = {g.name: g.members for g in admin.list_groups()}
    assert sizes == {"guangdong": 4, "prospects": 4, "recent_buyers": 1}
    assert admin.segment_members("guangdong").customer_ids == sorted(
        [buyer, never[0], never[1], later]
    )
    segment = admin.segment_of(never[0])
    assert (segment.r, segment.history, segment.stage) == (None, None, "prospect")
    assert segment.groups == ["guangdong", "prospects"]


def test_tags_are_usable_in_group_rules_and_kept_current(
    fixed_clock: Vault, admin: Session
) -> None:
    a, b = admin.add_customers([NewCustomer(fields={}) for _ in range(2)], source="t")
    admin.tag_customers([a], "vip", source="t")
    assert admin.add_group("vips", '"vip" in tags') == 1
    admin.tag_customers([b], "vip", source="t")
    assert admin.segment_members("vips").customer_ids == sorted([a, b])
    admin.untag_customer(a, "vip")
    assert admin.segment_members("vips").customer_ids == [b]
    admin.recompute_segments()
    assert admin.segment_members("vips").customer_ids == [b]


def test_recompute_as_of_a_day_measures_recency_to_it_and_ignores_later_orders(
    fixed_clock: Vault, admin: Session
) -> None:
    (c,) = admin.add_customers([NewCustomer(fields={})], source="t")
    admin.record_order(paid(c, 1, datetime(2026, 1, 10, 4, tzinfo=UTC)), source="t")
    admin.record_order(paid(c, 2, datetime(2026, 3, 1, 4, tzinfo=UTC)), source="t")
    report = admin.recompute_segments(as_of=date(2026, 2, 1))
    assert report.as_of == date(2026, 2, 1)
    segment = admin.segment_of(c)
    assert segment.as_of == date(2026, 2, 1)
    assert segment.history is not None and segment.history.orders == 1
    assert segment.stage == "first_purchase"
    assert admin.recompute_segments().as_of == NOW.date()  # no closed log: today
    assert admin.segment_of(c).stage == "lapsed"  # last bought 1 March, 264 days ago


def write_cdnow(path: Path, lines: list[tuple[int, str]]) -> Path:
    path.write_text("".join(f" {c:05d} {day}  1   10.00\n" for c, day in lines), encoding="ascii")
    return path


def test_import_orders_records_the_day_after_the_last_order_as_the_default_as_of(
    fixed_clock: Vault, admin: Session, tmp_path: Path
) -> None:
    log = write_cdnow(
        tmp_path / "log.txt",
        [(1, "19970101"), (1, "19980620"), (2, "19970105"), (3, "19980630")],
    )
    report = admin.import_orders(log, fmt="cdnow")
    assert report.as_of == date(1998, 7, 1)
    recomputed = admin.recompute_segments()
    assert recomputed.as_of == date(1998, 7, 1)
    stages = admin.list_segments().counts["stage"]
    assert (stages["repeat"], stages["lapsed"], stages["first_purchase"]) == (1, 1, 1)
    summaries = admin.rfm_summaries()  # the same as-of day by default
    assert sorted(s.recency for s in summaries.values()) == [1, 11, 542]  # type: ignore[union-attr]
    # An order from a live source: the vault is no longer a closed log; today again.
    (live,) = admin.add_customers([NewCustomer(fields={})], source="t")
    admin.record_order(paid(live, 1, NOW - timedelta(days=1)), source="sync:youzan")
    assert admin.recompute_segments().as_of == NOW.date()
    assert admin.list_segments().counts["stage"]["lapsed"] == 3


def test_cli_recompute_takes_as_of_and_group_help_says_who_a_group_holds(
    vault: Vault, initialised: tuple[Vault, str], home: Path
) -> None:
    _, token = initialised

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["--home", str(home), "--token", token, *args])
        return result.exit_code, " ".join(result.output.split())

    code, output = run("segments", "recompute", "--as-of", "2011-12-10", "--json")
    assert code == 0, output
    assert '"as_of": "2011-12-10"' in output
    code, output = run("segments", "recompute", "--as-of", "10/12/2011")
    assert code != 0 and "10/12/2011" in output
    assert "with or without orders" in run("group", "--help")[1]
    assert "'vip' in tags" in run("group", "add", "--help")[1]
    assert "--as-of" in run("segments", "recompute", "--help")[1]
