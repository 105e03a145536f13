"""Segment state in the store, kept current: one customer at a time as orders arrive, or everyone.

Per customer with at least one qualifying purchase, ``customer_segments`` holds the
:class:`~vault.segments.summary.PurchaseHistory` (date-independent, so an order updates it without
looking at anyone else), the R/F/M scores, the tier and the stage. A customer without a
qualifying purchase has no row: it has no R/F/M scores and is in the stage (and tier) the rules
give an empty history — ``prospect`` by default — which :func:`vault.segments.members_query`
adds from ``customers``. ``group_members`` holds the rule-based groups of **every** live
customer, with or without a purchase: ``province == "广东省"`` counts the Guangdong customers
who never bought, and ``"vip" in tags`` the tagged ones (a comparison with a missing score is
false, so ``r >= 4`` holds only for buyers). A customer's groups are brought up to date when its
orders, address or tags change, when a group is added, and by a full recompute.

:meth:`Segmenter.refresh` (what ``CustomerStore.record_order`` calls, in the order's own
transaction) and :meth:`Segmenter.recompute` compute each customer's state with the same code
(:meth:`Segmenter._state`) from the same inputs, so they agree by construction; the property test
in ``tests/segments/test_incremental.py`` checks it. Quantile scores are the exception that
needs a word: their cut points are the snapshot in ``segment_cuts`` that
``recompute(rescore=True)`` takes, and ``refresh`` scores against that snapshot (so one order
does not move everyone else's scores); ``recompute(rescore=False)`` rebuilds everything against
the same snapshot and gives exactly what the incremental updates gave.

Time-based facts (``recency_days``, ``age_days``, fixed R scores) are measured to a day, the
``as_of``: by default the day of the computation (the clock in the shop's time zone), so a
customer who buys nothing moves to ``lapsed`` at the next recompute (run ``vault segments
recompute`` daily). A vault whose orders all come from closed purchase logs (``vault
import-orders``: CDNOW, Online Retail) is measured to the day after the last order of the logs
instead, as the RFM literature measures such a log (its observation ends there; against today
every customer of a 2011 log is 15 years lapsed). ``import-orders`` records that day in
``segment_logs``; as soon as the vault holds an order from any other source (a shop's sync, the
API), the default is today again. ``recompute(as_of=...)`` (``--as-of DATE``) overrides both.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete

from vault.fields.region import city_name, province_name
from vault.segments.expressions import FACTS, Facts, Predicate, compile_rule, names_in
from vault.segments.rules import METRICS, SegmentRules
from vault.segments.summary import PurchaseHistory
from vault.store._bulk import BulkInsert
from vault.store.engine import as_utc, utcnow
from vault.store.schema import (
    customer_segments,
    group_members,
    segment_cuts,
    segment_logs,
)

Cuts = dict[str, tuple[int, ...]]
REGION_FACTS = frozenset({"province", "province_code", "city", "city_code"})
# Facts a group rule can use on a customer without any purchase.
SEGMENT_COLUMNS = (
    "customer_id",
    "first_day",
    "last_day",
    "orders",
    "purchase_days",
    "total_amount",
    "first_day_amount",
    "r_score",
    "f_score",
    "m_score",
    "tier",
    "stage",
    "as_of",
    "updated_at",
)
MEMBER_COLUMNS = ("group_id", "customer_id", "added_at")

# The hot path (one order's customer) and the full pass go straight to the driver: building and
# executing SQLAlchemy constructs costs more than the queries (see vault/store/_bulk.py). Written
# with "?" and adapted to the driver's paramstyle by _sql().
_ORDERS_SELECT = (
    "SELECT id, customer_id, created_at, total_amount, status, refunded_at IS NOT NULL, "
    "currency, platform FROM orders WHERE "
)
_ORDERS_OF_SQL = _ORDERS_SELECT + "customer_id = ?"
_ALL_ORDERS_SQL = _ORDERS_SELECT + "customer_id IS NOT NULL"
_CATEGORIES_OF_SQL = (
    "SELECT i.order_pk, i.category FROM order_items i JOIN orders o ON o.id = i.order_pk "
    "WHERE o.customer_id = ? AND i.category IS NOT NULL"
)
_ALL_CATEGORIES_SQL = "SELECT order_pk, category FROM order_items WHERE category IS NOT NULL"
_REGION_OF_SQL = (
    "SELECT customer_id, province_code, city_code FROM customer_regions WHERE customer_id = ?"
)
_ALL_REGIONS_SQL = "SELECT customer_id, province_code, city_code FROM customer_regions"
_TAGS_SELECT = "SELECT ct.customer_id, t.name FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id"
_TAGS_OF_SQL = _TAGS_SELECT + " WHERE ct.customer_id = ?"
_ALL_TAGS_SQL = _TAGS_SELECT
_ALL_LIVE_SQL = "SELECT id FROM customers WHERE erased_at IS NULL"
_LIVE_OF_SQL = "SELECT id FROM customers WHERE erased_at IS NULL AND id = ?"
_LOG_AS_OF_SQL = "SELECT source, as_of FROM segment_logs"
_RULE_GROUPS_SQL = "SELECT id, name, rule FROM customer_groups WHERE rule IS NOT NULL"
_CUTS_SQL = "SELECT metric, position, value FROM segment_cuts"
_DELETE_SEGMENT_SQL = "DELETE FROM customer_segments WHERE customer_id = ?"
_DELETE_MEMBERSHIPS_SQL = (
    "DELETE FROM group_members WHERE customer_id = ? "
    "AND group_id IN (SELECT id FROM customer_groups WHERE rule IS NOT NULL)"
)


def _sql(connection: Connection, statement: str) -> str:
    """``statement`` in the driver's paramstyle (the texts above hold no literal ``?``)."""
    if connection.dialect.paramstyle in ("format", "pyformat"):
        return statement.replace("%", "%%").replace("?", "%s")
    return statement


def _rows(connection: Connection, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run ``statement`` on the DBAPI cursor of the connection's current transaction and return
    the driver's tuples: no SQLAlchemy result processing (the columns read here need none)."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_sql(connection, statement), params)
        return list(cursor.fetchall()) if cursor.description is not None else []
    finally:
        cursor.close()


@dataclass(slots=True)
class _Input:
    """What one customer's segment state is computed from."""

    purchases: list[tuple[date, int]] = field(default_factory=list)
    platforms: set[str] = field(default_factory=set)
    categories: set[str] = field(default_factory=set)
    region: tuple[str, str | None] | None = None
    tags: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class RuleGroup:
    id: int
    name: str
    rule: str
    test: Predicate
    needs: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentState:
    """One customer's computed state: the ``customer_segments`` row (``None`` without a
    purchase) and its rule-based group ids."""

    row: dict[str, Any] | None
    groups: frozenset[int]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecomputeReport:
    customers: int
    """Customers with a qualifying purchase (a segment row)."""
    orders: int
    """Orders read (with a customer)."""
    qualifying_orders: int
    memberships: int
    rescored: bool
    cuts: Mapping[str, tuple[int, ...]]
    as_of: date
    """The day recency was measured to."""


def quantile_cuts(values: Iterable[int]) -> tuple[int, ...]:
    """The four cut points of ``values``: cut k (k = 1..4) is the value at 0-based position
    ⌊k·N/5⌋ of the ascending order. Empty without values. Scored by :func:`quantile_score`:
    a value scores ⌈5·rank/N⌉, its rank the highest (1-based) it shares, as ranking ties by
    their maximum rank and cutting the percentile rank into fifths does."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return ()
    return tuple(ordered[k * n // 5] for k in range(1, 5))


def quantile_score(value: int, cuts: tuple[int, ...]) -> int:
    """1 + the number of cut points ``value`` reaches (``>=``): ⌈5·rank/N⌉ for the value's
    highest rank, so ties share the higher score of their rank range, and values that are all
    equal all score 5 (1,002 buyers of today are the most recent, not the least)."""
    return 1 + sum(value >= cut for cut in cuts)


def score_above(value: int, cuts: tuple[int, ...]) -> int:
    """1 + the number of cut points ``value`` is strictly greater than (fixed F and M cuts)."""
    return 1 + sum(value > cut for cut in cuts)


class Segmenter:
    """Computes and stores segment state under one set of :class:`SegmentRules`.

    ``clock`` is the seam for time: tests pass a fixed one.
    """

    def __init__(self, rules: SegmentRules, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.rules = rules
        self.clock = clock
        self._compiled: dict[str, tuple[Predicate, frozenset[str]]] = {}
        self._days: dict[Any, date] = {}

    # --- inputs ------------------------------------------------------------------------------

    def today(self) -> date:
        return self.clock().astimezone(self.rules.timezone).date()

    def day_of(self, moment: datetime) -> date:
        """The calendar day of an order time in the shop's time zone."""
        return as_utc(moment).astimezone(self.rules.timezone).date()

    def default_as_of(self, connection: Connection) -> date:
        """The day recency is measured to when none is given (see the module docstring): the
        recorded end of the imported closed logs while every order comes from them, else
        today."""
        logs = _rows(connection, _LOG_AS_OF_SQL)
        if not logs:
            return self.today()
        sources = [str(source) for source, _ in logs]
        marks = ", ".join("?" for _ in sources)
        other = _rows(
            connection,
            f"SELECT 1 FROM orders WHERE source NOT IN ({marks}) LIMIT 1",  # noqa: S608
            tuple(sources),
        )
        if other:
            return self.today()
        return max(_as_date(as_of) for _, as_of in logs)

    def record_log(self, connection: Connection, source: str, last_day: date) -> date:
        """Record that ``source`` is a closed purchase log whose last order is on ``last_day``
        (shop time zone): its as-of is the day after. Returns that day."""
        as_of = last_day + timedelta(days=1)
        connection.execute(delete(segment_logs).where(segment_logs.c.source == source))
        connection.execute(
            segment_logs.insert().values(
                source=source, last_day=last_day, as_of=as_of, recorded_at=self.clock()
            )
        )
        return as_of

    def rule_groups(self, connection: Connection) -> list[RuleGroup]:
        groups: list[RuleGroup] = []
        for group_id, name, rule in _rows(connection, _RULE_GROUPS_SQL):
            compiled = self._compiled.get(rule)
            if compiled is None:
                compiled = (compile_rule(rule, where=f"group {name!r}"), frozenset(names_in(rule)))
                self._compiled[rule] = compiled
            groups.append(RuleGroup(group_id, name, rule, compiled[0], compiled[1]))
        return groups

    def _gather(
        self,
        connection: Connection,
        customer_ids: Collection[str] | None,
        groups: list[RuleGroup],
    ) -> tuple[dict[str, _Input], int, int]:
        """Inputs of ``customer_ids`` (everyone's when ``None``): qualifying purchases, their
        platforms and categories, regions and tags, each read only if some rule needs it. With
        rule groups, every live customer has an input (groups hold customers without orders
        too)."""
        needed: set[str] = set().union(*(g.needs for g in groups))
        inputs: dict[str, _Input] = {cid: _Input() for cid in customer_ids or ()}
        if groups and customer_ids is None:
            for (cid,) in _rows(connection, _ALL_LIVE_SQL):
                inputs[cid] = _Input()
        is_excluded = self.rules.is_excluded
        day_of = self._day_of_stored
        order_owner: dict[int, str] = {}
        read = qualifying = 0
        if customer_ids is None:
            batches: Iterable[Any] = [_rows(connection, _ALL_ORDERS_SQL)]
        else:
            batches = (_rows(connection, _ORDERS_OF_SQL, (cid,)) for cid in customer_ids)
        for result in batches:
            for pk, cid, created_at, amount, status, refunded, currency, platform in result:
                read += 1
                if is_excluded(status, bool(refunded), currency):
                    continue
                qualifying += 1
                entry = inputs.get(cid)
                if entry is None:
                    entry = inputs[cid] = _Input()
                entry.purchases.append((day_of(created_at), amount))
                entry.platforms.add(platform)
                order_owner[pk] = cid
        if "categories" in needed and order_owner:
            if customer_ids is None:
                batches = [_rows(connection, _ALL_CATEGORIES_SQL)]
            else:
                batches = (_rows(connection, _CATEGORIES_OF_SQL, (cid,)) for cid in customer_ids)
            for result in batches:
                for pk, category in result:
                    owner = order_owner.get(pk)
                    if owner is not None:
                        inputs[owner].categories.add(category)
        if needed & REGION_FACTS:
            if customer_ids is None:
                batches = [_rows(connection, _ALL_REGIONS_SQL)]
            else:
                batches = (_rows(connection, _REGION_OF_SQL, (cid,)) for cid in customer_ids)
            for result in batches:
                for cid, province, city in result:
                    entry = inputs.get(cid)
                    if entry is not None:
                        entry.region = (province, city)
        if "tags" in needed:
            if customer_ids is None:
                batches = [_rows(connection, _ALL_TAGS_SQL)]
            else:
                batches = (_rows(connection, _TAGS_OF_SQL, (cid,)) for cid in customer_ids)
            for result in batches:
                for cid, tag in result:
                    entry = inputs.get(cid)
                    if entry is not None:
                        entry.tags.add(tag)
        return inputs, read, qualifying

    def _live(self, connection: Connection, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` that are live customers (an erased one is in no group)."""
        return {cid for cid in ids if _rows(connection, _LIVE_OF_SQL, (cid,))}

    def _day_of_stored(self, value: Any) -> date:
        """The shop-time-zone day of a stored order time: SQLite hands back the text it
        stored (UTC), PostgreSQL an aware datetime. Every zone offset is whole minutes, so the
        day is cached by the minute."""
        key = value[:16] if isinstance(value, str) else value.replace(second=0, microsecond=0)
        day = self._days.get(key)
        if day is None:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
            day = as_utc(moment).astimezone(self.rules.timezone).date()
            if len(self._days) > 200_000:
                self._days.clear()
            self._days[key] = day
        return day

    # --- scores ------------------------------------------------------------------------------

    def frequency_of(self, history: PurchaseHistory) -> int:
        return history.purchase_days if self.rules.frequency == "days" else history.orders

    def metric_values(self, history: PurchaseHistory) -> dict[str, int]:
        """The quantile metrics: R = the last purchase day (later is more), F, M."""
        frequency = self.frequency_of(history)
        monetary = (
            history.total_amount
            if self.rules.monetary == "total"
            else history.total_amount // frequency
        )
        return {"r": history.last_day.toordinal(), "f": frequency, "m": monetary}

    def stored_cuts(self, connection: Connection) -> Cuts:
        found: dict[str, dict[int, int]] = {}
        for metric, position, value in _rows(connection, _CUTS_SQL):
            found.setdefault(metric, {})[position] = value
        return {
            metric: tuple(values[p] for p in range(1, 5))
            for metric, values in found.items()
            if sorted(values) == [1, 2, 3, 4]
        }

    def scores(
        self, history: PurchaseHistory, cuts: Cuts, as_of: date
    ) -> tuple[int | None, int | None, int | None]:
        values = self.metric_values(history)
        if self.rules.method == "fixed":
            fixed = self.rules.fixed_cuts
            recency = (as_of - history.last_day).days
            return (
                1 + sum(recency < cut for cut in fixed["r"]),
                score_above(values["f"], fixed["f"]),
                score_above(values["m"], fixed["m"]),
            )
        r, f, m = (
            quantile_score(values[metric], cuts[metric]) if metric in cuts else None
            for metric in METRICS
        )
        return r, f, m

    # --- one customer's state ----------------------------------------------------------------

    def facts(
        self,
        history: PurchaseHistory | None,
        scores: tuple[int | None, int | None, int | None],
        as_of: date,
    ) -> dict[str, Any]:
        if history is None:
            return {"orders": 0, "purchase_days": 0, "frequency": 0, "total": 0}
        frequency = self.frequency_of(history)
        return {
            "r": scores[0],
            "f": scores[1],
            "m": scores[2],
            "orders": history.orders,
            "purchase_days": history.purchase_days,
            "frequency": frequency,
            "total": history.total_amount,
            "average": history.total_amount // frequency,
            "recency_days": (as_of - history.last_day).days,
            "age_days": (as_of - history.first_day).days,
        }

    def classify(self, facts: Facts) -> tuple[str | None, str | None]:
        """The tier and the stage: the first rule of each list that holds."""
        tier = next((rule.name for rule in self.rules.tiers if rule.test(facts)), None)
        stage = next((rule.name for rule in self.rules.stages if rule.test(facts)), None)
        return tier, stage

    def empty_classification(self) -> tuple[str | None, str | None]:
        """The tier and stage of a customer without a purchase (no row in the store)."""
        return self.classify(self.facts(None, (None, None, None), self.today()))

    def _state(
        self,
        customer_id: str,
        entry: _Input,
        cuts: Cuts,
        as_of: date,
        groups: list[RuleGroup],
        now: datetime,
        history: PurchaseHistory | None,
    ) -> SegmentState:
        """``history`` is ``PurchaseHistory.of(entry.purchases)``, built once by the caller;
        ``None`` without a qualifying purchase: no row and no scores, but groups all the same."""
        scores: tuple[int | None, int | None, int | None] = (None, None, None)
        if history is not None:
            scores = self.scores(history, cuts, as_of)
        facts = self.facts(history, scores, as_of)
        tier, stage = self.classify(facts)
        member: set[int] = set()
        if groups:
            province, city = entry.region or (None, None)
            group_facts = {
                **facts,
                "tier": tier,
                "stage": stage,
                "categories": frozenset(entry.categories),
                "platforms": frozenset(entry.platforms),
                "tags": frozenset(entry.tags),
                "province_code": province,
                "province": province_name(province),
                "city_code": city,
                "city": city_name(city),
            }
            member = {group.id for group in groups if group.test(group_facts)}
        if history is None:
            return SegmentState(row=None, groups=frozenset(member))
        return SegmentState(
            row={
                "customer_id": customer_id,
                "first_day": history.first_day,
                "last_day": history.last_day,
                "orders": history.orders,
                "purchase_days": history.purchase_days,
                "total_amount": history.total_amount,
                "first_day_amount": history.first_day_amount,
                "r_score": scores[0],
                "f_score": scores[1],
                "m_score": scores[2],
                "tier": tier,
                "stage": stage,
                "as_of": as_of,
                "updated_at": now,
            },
            groups=frozenset(member),
        )

    # --- writing -----------------------------------------------------------------------------

    def _write(
        self,
        connection: Connection,
        states: Mapping[str, SegmentState],
        groups: list[RuleGroup],
        now: datetime,
    ) -> int:
        segment_insert = BulkInsert(connection, customer_segments, SEGMENT_COLUMNS)
        member_insert = BulkInsert(connection, group_members, MEMBER_COLUMNS)
        now_bound = member_insert.bind("added_at", now)
        updated_bound = segment_insert.bind("updated_at", now)
        as_of_cache: dict[date, Any] = {}
        day = segment_insert.bind
        segment_rows: list[tuple[Any, ...]] = []
        member_rows: list[tuple[Any, ...]] = []
        for customer_id, state in states.items():
            row = state.row
            if row is not None:
                as_of = row["as_of"]
                if as_of not in as_of_cache:
                    as_of_cache[as_of] = day("as_of", as_of)
                segment_rows.append(
                    (
                        customer_id,
                        day("first_day", row["first_day"]),
                        day("last_day", row["last_day"]),
                        row["orders"],
                        row["purchase_days"],
                        row["total_amount"],
                        row["first_day_amount"],
                        row["r_score"],
                        row["f_score"],
                        row["m_score"],
                        row["tier"],
                        row["stage"],
                        as_of_cache[as_of],
                        updated_bound,
                    )
                )
            member_rows.extend((group_id, customer_id, now_bound) for group_id in state.groups)
        segment_insert.execute(segment_rows)
        member_insert.execute(member_rows)
        return len(member_rows)

    def refresh(self, connection: Connection, customer_ids: Iterable[str | None]) -> None:
        """Recompute and store the segment state of ``customer_ids`` (``None`` entries, orders
        without a customer, are ignored), in the caller's transaction. Measured to
        :meth:`default_as_of`."""
        ids = sorted({cid for cid in customer_ids if cid is not None})
        if not ids:
            return
        groups = self.rule_groups(connection)
        inputs, _, _ = self._gather(connection, ids, groups)
        cuts = self.stored_cuts(connection) if self.rules.method == "quantiles" else {}
        now = self.clock()
        as_of = self.default_as_of(connection)
        live = self._live(connection, ids) if groups else set()
        states = {
            cid: self._state(
                cid,
                inputs[cid],
                cuts,
                as_of,
                groups if cid in live else [],
                now,
                PurchaseHistory.of(inputs[cid].purchases),
            )
            for cid in ids
        }
        for cid in ids:
            _rows(connection, _DELETE_SEGMENT_SQL, (cid,))
            if groups:
                _rows(connection, _DELETE_MEMBERSHIPS_SQL, (cid,))
        self._write(connection, states, groups, now)

    def admit(
        self, connection: Connection, regions: Mapping[str, tuple[str, str | None] | None]
    ) -> None:
        """Put new customers (no orders, no tags yet; their derived region or ``None``) into
        the rule groups they already belong to, without a query per customer: the path of a
        bulk insert."""
        groups = self.rule_groups(connection) if regions else []
        if not groups:
            return
        as_of = self.default_as_of(connection)
        now = self.clock()
        states = {
            cid: self._state(cid, _Input(region=region), {}, as_of, groups, now, None)
            for cid, region in regions.items()
        }
        self._write(connection, states, groups, now)

    def recompute(
        self, connection: Connection, *, rescore: bool = True, as_of: date | None = None
    ) -> RecomputeReport:
        """Rebuild every customer's segment state from the orders, and every live customer's
        rule groups. With ``rescore`` (and the quantile method) the cut points are first taken
        afresh from the whole customer base. Recency is measured to ``as_of`` (default:
        :meth:`default_as_of`); purchases after it do not count."""
        groups = self.rule_groups(connection)
        inputs, read, qualifying = self._gather(connection, None, groups)
        now = self.clock()
        if as_of is None:
            as_of = self.default_as_of(connection)
        else:
            for entry in inputs.values():
                entry.purchases = [p for p in entry.purchases if p[0] <= as_of]
        histories = {
            cid: history
            for cid, entry in inputs.items()
            if (history := PurchaseHistory.of(entry.purchases)) is not None
        }
        if self.rules.method == "quantiles" and rescore:
            values = [self.metric_values(h) for h in histories.values()]
            cuts = {m: quantile_cuts(v[m] for v in values) for m in METRICS} if values else {}
            connection.execute(delete(segment_cuts))
            rows = [
                {"metric": m, "position": p, "value": value, "computed_at": now}
                for m, points in cuts.items()
                for p, value in enumerate(points, start=1)
            ]
            if rows:
                connection.execute(segment_cuts.insert(), rows)
        elif self.rules.method == "quantiles":
            cuts = self.stored_cuts(connection)
        else:
            cuts = {}
        live = {cid for (cid,) in _rows(connection, _ALL_LIVE_SQL)} if groups else set()
        states = {
            cid: self._state(
                cid, entry, cuts, as_of, groups if cid in live else [], now, histories.get(cid)
            )
            for cid, entry in inputs.items()
        }
        connection.execute(delete(customer_segments))
        if groups:
            connection.execute(
                delete(group_members).where(group_members.c.group_id.in_([g.id for g in groups]))
            )
        memberships = self._write(connection, states, groups, now)
        return RecomputeReport(
            customers=len(histories),
            orders=read,
            qualifying_orders=qualifying,
            memberships=memberships,
            rescored=self.rules.method == "quantiles" and rescore,
            cuts=cuts,
            as_of=as_of,
        )

    def refresh_group(self, connection: Connection, group_id: int) -> int:
        """Evaluate one (new or changed) rule group for every live customer, with or without a
        purchase; returns its size."""
        groups = [g for g in self.rule_groups(connection) if g.id == group_id]
        if not groups:
            return 0
        inputs, _, _ = self._gather(connection, None, groups)
        cuts = self.stored_cuts(connection) if self.rules.method == "quantiles" else {}
        now = self.clock()
        as_of = self.default_as_of(connection)
        connection.execute(delete(group_members).where(group_members.c.group_id == group_id))
        member_insert = BulkInsert(connection, group_members, MEMBER_COLUMNS)
        now_bound = member_insert.bind("added_at", now)
        live = {cid for (cid,) in _rows(connection, _ALL_LIVE_SQL)}
        rows = [
            (group_id, cid, now_bound)
            for cid, entry in inputs.items()
            if cid in live
            and group_id
            in self._state(
                cid, entry, cuts, as_of, groups, now, PurchaseHistory.of(entry.purchases)
            ).groups
        ]
        member_insert.execute(rows)
        return len(rows)


def _as_date(value: Any) -> date:
    """A ``Date`` column read straight from the driver: SQLite hands back its text."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def check_group_rule(rule: str, *, name: str) -> None:
    """Raise ``ConfigError`` if ``rule`` is not a valid group rule."""
    compile_rule(rule, where=f"group {name!r}", allowed=frozenset(FACTS))
