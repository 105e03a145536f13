"""RFM summaries of one customer's purchase history: pure computation, exact arithmetic.

A *purchase* is one qualifying order (not cancelled, not refunded; see
:class:`vault.segments.rules.SummaryRules`) as ``(day, amount)``: the order's calendar day in the
shop's time zone and its total in integer minor units (cents, fen). Orders of the same day are one
*purchase day*. Everything here is exact: times are :class:`fractions.Fraction` of the time unit,
money stays in integer minor units (a mean is a ``Fraction`` of them), and
:func:`round_half_up` rounds for display only.

Two definitions, both computed from the same :class:`PurchaseHistory`:

* **Transaction count** (:func:`transaction_summary`), what most CRM tools call RFM: recency =
  time from the last purchase to the observation end, frequency = the number of purchase days
  (``frequency="days"``, the default) or of orders (``"orders"``), monetary = the total spend and
  the average spend per purchase (total / frequency), age = time since the first purchase.
* **Repeat purchase** (:func:`repeat_summary`), Fader, Hardie & Lee's ``(x, t_x, T)`` of the
  customer-base analysis literature ("RFM and CLV: using iso-value curves", 2005; Hardie's note
  on the CDNOW data set): ``x`` = the number of *repeat* purchase days (all purchase days but the
  first), ``t_x`` = the time of the last purchase measured from the first one (0 when ``x = 0``),
  ``T`` = the time from the first purchase to the observation end, and the monetary value = the
  mean value of the repeat purchase days (the first day excluded; 0 when ``x = 0``).

Purchases after the observation end do not count. Times are in days or weeks (7 days).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Literal

Unit = Literal["days", "weeks"]
Frequency = Literal["days", "orders"]
UNITS: dict[str, int] = {"days": 1, "weeks": 7}
FREQUENCIES = ("days", "orders")


@dataclass(frozen=True, slots=True, kw_only=True)
class PurchaseHistory:
    """What both definitions need, and what the vault stores per customer: it does not depend
    on the observation end, so a new order updates it without looking at anyone else."""

    first_day: date
    last_day: date
    orders: int
    purchase_days: int
    total_amount: int
    """Sum of every qualifying order, minor units."""
    first_day_amount: int
    """Sum of the orders of the first purchase day, minor units."""

    @classmethod
    def of(
        cls, purchases: Iterable[tuple[date, int]], *, end: date | None = None
    ) -> PurchaseHistory | None:
        """The history of ``purchases`` up to and including ``end`` (all when ``None``); ``None``
        when there is no purchase."""
        by_day: dict[date, int] = {}
        orders = 0
        for day, amount in purchases:
            if end is not None and day > end:
                continue
            by_day[day] = by_day.get(day, 0) + amount
            orders += 1
        if not by_day:
            return None
        first = min(by_day)
        return cls(
            first_day=first,
            last_day=max(by_day),
            orders=orders,
            purchase_days=len(by_day),
            total_amount=sum(by_day.values()),
            first_day_amount=by_day[first],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionSummary:
    first_purchase: date
    last_purchase: date
    frequency: int
    recency: Fraction
    age: Fraction
    total_amount: int
    average_amount: Fraction
    unit: Unit


@dataclass(frozen=True, slots=True, kw_only=True)
class RepeatSummary:
    x: int
    t_x: Fraction
    T: Fraction
    mean_repeat_value: Fraction
    """Minor units."""
    unit: Unit


def _in_unit(days: int, unit: Unit) -> Fraction:
    try:
        return Fraction(days, UNITS[unit])
    except KeyError:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {unit!r}") from None


def _check_end(history: PurchaseHistory, end: date) -> None:
    if end < history.last_day:
        raise ValueError(
            "the observation end is before the last purchase: build the history with "
            "PurchaseHistory.of(..., end=end)"
        )


def transaction_summary(
    history: PurchaseHistory, *, end: date, unit: Unit = "days", frequency: Frequency = "days"
) -> TransactionSummary:
    """The transaction-count RFM summary at the observation end ``end``."""
    _check_end(history, end)
    if frequency == "days":
        count = history.purchase_days
    elif frequency == "orders":
        count = history.orders
    else:
        raise ValueError(f"frequency must be one of {', '.join(FREQUENCIES)}, not {frequency!r}")
    return TransactionSummary(
        first_purchase=history.first_day,
        last_purchase=history.last_day,
        frequency=count,
        recency=_in_unit((end - history.last_day).days, unit),
        age=_in_unit((end - history.first_day).days, unit),
        total_amount=history.total_amount,
        average_amount=Fraction(history.total_amount, count),
        unit=unit,
    )


def repeat_summary(history: PurchaseHistory, *, end: date, unit: Unit = "weeks") -> RepeatSummary:
    """The Fader–Hardie repeat-purchase summary ``(x, t_x, T, mean repeat value)`` at ``end``."""
    _check_end(history, end)
    x = history.purchase_days - 1
    return RepeatSummary(
        x=x,
        t_x=_in_unit((history.last_day - history.first_day).days, unit),
        T=_in_unit((end - history.first_day).days, unit),
        mean_repeat_value=(
            Fraction(history.total_amount - history.first_day_amount, x) if x else Fraction(0)
        ),
        unit=unit,
    )


def round_half_up(value: Fraction | int, places: int = 2) -> Decimal:
    """``value`` rounded to ``places`` decimals, halves away from zero (2.345 → 2.35), exactly:
    no float is involved."""
    value = Fraction(value)
    scale = 10**places
    scaled = abs(value) * scale
    rounded = (scaled.numerator * 2 + scaled.denominator) // (scaled.denominator * 2)
    sign = "-" if value < 0 and rounded else ""
    return Decimal(f"{sign}{rounded}").scaleb(-places).quantize(Decimal(1).scaleb(-places))


def major_units(minor: Fraction | int, exponent: int = 2) -> Fraction:
    """Minor units (cents) as major units (dollars): ``exponent`` is the currency's number of
    decimals (2 for CNY, USD, GBP, EUR; 0 for JPY)."""
    return Fraction(minor) / Fraction(10**exponent)
