"""Tier and stage rules from a policy file, the rule language, scores and their ties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from vault import ConfigError, NewCustomer, Vault
from vault.cli import cli
from vault.records import Order
from vault.segments import Segmenter, SegmentRules, default_rules
from vault.segments.expressions import compile_rule
from vault.segments.segmenter import quantile_cuts, quantile_score

NOW = datetime(2025, 6, 30, 4, tzinfo=UTC)  # 12:00 in Asia/Shanghai

POLICY = """
version = 1
[summary]
timezone = "Asia/Shanghai"
frequency = "orders"
[scores]
method = "fixed"
[scores.fixed]
recency_days = [200, 100, 50, 10]
frequency = [1, 2, 3, 5]
monetary = [1000, 5000, 10000, 50000]

[[tiers]]
name = "whale"
when = "m == 5 and f >= 3"
[[tiers]]
name = "sleeper"
when = "recency_days > 200"
[[tiers]]
name = "rest"
when = "orders > 0"

[[stages]]
name = "lead"
when = "orders == 0"
[[stages]]
name = "gone"
when = "recency_days > 200"
[[stages]]
name = "fan"
when = "orders >= 3"
[[stages]]
name = "newbie"
when = "orders == 1"
[[stages]]
name = "returning"
when = "orders >= 2"
"""


def order(customer_id: str, n: int, days_ago: int, amount: int, status: str = "paid") -> Order:
    at = NOW - timedelta(days=days_ago)
    return Order(
        platform="youzan",
        shop="s",
        order_id=f"{customer_id}-{n}",
        status=status,
        currency="CNY",
        total_amount=amount,
        created_at=at,
        updated_at=at,
        customer_id=customer_id,
    )


def test_tier_and_stage_rules_from_a_policy_file_place_hand_made_customers(
    initialised: tuple[Vault, str], home: Path
) -> None:
    first, token = initialised
    first.close()
    (home / "policies" / "segments.toml").write_text(POLICY, encoding="utf-8")
    with Vault.open(home) as vault:
        assert vault.segments.rules.tier_names() == ["whale", "sleeper", "rest"]
        vault.segments.clock = lambda: NOW
        admin = vault.session(token, purpose="administration")
        ids = admin.add_customers([NewCustomer(fields={}) for _ in range(5)], source="t")
        whale, sleeper, newbie, returning, lead = ids
        plans = {
            whale: [(0, 5, 30_000), (1, 20, 30_000), (2, 40, 30_000)],  # 90,000 over 3 orders
            sleeper: [(0, 300, 2_000), (1, 250, 2_000)],
            newbie: [(0, 3, 500)],
            returning: [(0, 60, 700), (1, 30, 800), (2, 10, 900, "cancelled")],
        }
        for customer_id, plan in plans.items():
            for n, days_ago, amount, *status in plan:
                admin.record_order(order(customer_id, n, days_ago, amount, *status), source="t")
        got = {cid: admin.segment_of(cid) for cid in ids}
        assert (got[whale].tier, got[whale].stage) == ("whale", "fan")
        assert (got[whale].r, got[whale].f, got[whale].m) == (5, 3, 5)
        assert (got[sleeper].tier, got[sleeper].stage) == ("sleeper", "gone")
        assert (got[newbie].tier, got[newbie].stage) == ("rest", "newbie")
        # The cancelled order does not count: two orders, last 30 days ago.
        assert (got[returning].tier, got[returning].stage) == ("rest", "returning")
        assert got[returning].history is not None and got[returning].history.orders == 2
        assert (got[lead].tier, got[lead].stage, got[lead].history) == (None, "lead", None)
        listing = admin.list_segments(stage="lead")
        assert listing.customer_ids == [lead]
        assert listing.counts["stage"] == {
            "lead": 1,
            "gone": 1,
            "fan": 1,
            "newbie": 1,
            "returning": 1,
        }
        assert listing.counts["tier"] == {"whale": 1, "sleeper": 1, "rest": 2}


BROKEN = {
    "syntax": ('when = "purchase_days >= 4"', 'when = "purchase_days >= "', "not valid syntax"),
    "unknown name": (
        'when = "purchase_days >= 4"',
        'when = "purchse_days >= 4"',
        "unknown name 'purchse_days'",
    ),
    "a call": ('when = "purchase_days >= 4"', "when = \"__import__('os')\"", "Call is not allowed"),
    "bad cuts": ("frequency = [1, 2, 4, 8]", "frequency = [1, 2, 2, 8]", "four increasing"),
    "toml": ("[scores]", "[scores", "not valid TOML"),
    "unknown key": ('method = "quantiles"', 'methd = "quantiles"', "unknown key 'methd'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_rule_file_stops_the_vault_at_start_with_a_clear_error(
    initialised: tuple[Vault, str], home: Path, case: str
) -> None:
    first, token = initialised
    first.close()
    path = home / "policies" / "segments.toml"
    old, new, message = BROKEN[case]
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"segments\.toml") as raised:
        Vault.open(home)
    assert message in str(raised.value)
    result = CliRunner().invoke(
        cli, ["--home", str(home), "--token", token, "segments", "list"], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert "ConfigError" in result.stderr and "segments.toml" in result.stderr
    assert "Traceback" not in result.output


def test_the_packaged_rules_give_the_default_tiers_and_stages() -> None:
    rules = default_rules()
    assert rules.tier_names() == ["dormant", "high_value", "potential", "normal"]
    assert rules.stage_names() == ["prospect", "lapsed", "loyal", "repeat", "first_purchase"]
    assert Segmenter(rules).empty_classification() == (None, "prospect")


@pytest.mark.parametrize(
    ("rule", "facts", "expected"),
    [
        ("r >= 4 and f >= 4", {"r": 4, "f": 5}, True),
        ("r >= 4 and f >= 4", {"r": 4, "f": 3}, False),
        ("r >= 4", {"r": None}, False),
        ("not r >= 4", {"r": None}, True),
        ('tier in ("a", "b")', {"tier": "b"}, True),
        ('"tea" in categories', {"categories": frozenset({"tea"})}, True),
        ('"tea" not in categories', {"categories": frozenset({"tea"})}, False),
        ('"vip" in tags', {"tags": frozenset({"vip", "wholesale"})}, True),
        ('"vip" in tags', {"tags": frozenset()}, False),
        ("1 <= r <= 3", {"r": 2}, True),
        ("1 <= r <= 3", {"r": 4}, False),
        ('province == "广东省" or city_code == "1101"', {"city_code": "1101"}, True),
        ("true", {}, True),
    ],
)
def test_rules_evaluate_as_written(rule: str, facts: dict[str, object], expected: bool) -> None:
    assert compile_rule(rule, where="test")(facts) is expected


@pytest.mark.parametrize(
    "rule",
    [
        "r.real > 1",
        "r + 1 > 2",
        "open('x')",
        "[x for x in categories]",
        "lambda: 1",
        "r if f else m",
    ],
)
def test_rules_outside_the_language_are_refused(rule: str) -> None:
    with pytest.raises(ConfigError, match="test"):
        compile_rule(rule, where="test")


def test_quantile_ties_share_the_highest_score_of_their_rank_range() -> None:
    # 60 of 100 customers bought once: ranks 1-60 span quintiles 1-3, so all of them score 3.
    frequencies = [1] * 60 + [2] * 20 + [3] * 10 + [5] * 10
    cuts = quantile_cuts(frequencies)
    assert cuts == (1, 1, 2, 3)
    assert [quantile_score(v, cuts) for v in (1, 2, 3, 5)] == [3, 4, 5, 5]
    # Distinct values: quintiles, 20 per score.
    cuts = quantile_cuts(range(100))
    scores = [quantile_score(v, cuts) for v in range(100)]
    assert [scores.count(s) for s in range(1, 6)] == [20, 20, 20, 20, 20]
    # All equal: the top quintile, not the bottom one. One customer alone: 5.
    assert [quantile_score(7, quantile_cuts([7] * n)) for n in (1, 2, 5, 1227)] == [5] * 4
    # Five values: one per quintile; two values: ranks 1 and 2 of 2, the 3rd and 5th fifths.
    assert [quantile_score(v, quantile_cuts([1, 2, 3, 4, 5])) for v in (1, 2, 3, 4, 5)] == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert [quantile_score(v, quantile_cuts([3, 9])) for v in (3, 9)] == [3, 5]


def test_a_score_is_the_quintile_of_the_highest_rank_of_its_value() -> None:
    """Against the definition, on random tied data: sort, give rank i (1-based) the quintile
    ceil(5 i / N), and let every value take the quintile of its last rank."""
    import random

    rng = random.Random(19)
    for _ in range(200):
        values = [rng.randint(0, rng.choice([1, 3, 10, 1000])) for _ in range(rng.randint(1, 60))]
        ordered = sorted(values)
        n = len(ordered)
        by_definition = {v: -(-5 * (i + 1) // n) for i, v in enumerate(ordered)}  # last wins
        cuts = quantile_cuts(values)
        assert {v: quantile_score(v, cuts) for v in values} == by_definition


def test_purchase_days_are_counted_in_the_shop_time_zone() -> None:
    rules = SegmentRules.parse(POLICY)
    segmenter = Segmenter(rules)
    # 23:30 UTC on 1 March is 07:30 on 2 March in Shanghai.
    assert segmenter.day_of(datetime(2025, 3, 1, 23, 30, tzinfo=UTC)) == date(2025, 3, 2)


def test_the_segments_package_exports_its_public_names() -> None:
    import vault.segments

    assert sorted(vault.segments.__all__) == [
        "PurchaseHistory",
        "RecomputeReport",
        "RepeatSummary",
        "SegmentRules",
        "Segmenter",
        "TransactionSummary",
        "default_rules",
        "members_query",
        "on_customers_added",
        "on_orders_changed",
        "repeat_summary",
        "resolve_segment",
        "round_half_up",
        "transaction_summary",
    ]
    assert all(hasattr(vault.segments, name) for name in vault.segments.__all__)
