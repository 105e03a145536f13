"""Importers for two public purchase logs, so that segments can be checked on real histories.

* ``cdnow``: the CDNOW purchase log of Fader & Hardie (``CDNOW_master.txt``: customer id,
  YYYYMMDD, CDs, dollars, with a header line; ``CDNOW_sample.txt``: master id, sample id,
  YYYYMMDD, CDs, dollars, no header). One line is one order of platform ``cdnow`` (order id
  ``<customer>-<date>-<n>``, USD, status ``completed``), placed at midnight of its day in the
  segment rules' time zone. The customer is ``cdnow:<master id>``.
* ``online-retail``: the UCI Online Retail invoices (CSV, optionally gzipped, columns
  ``InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country``). One
  invoice is one order of platform ``online-retail`` with one item per line (GBP, status
  ``completed``; an invoice number starting with ``C`` is a cancellation: status ``cancelled``).
  Invoice times carry no zone and are taken in the segment rules' time zone. Unit prices are
  converted to pence exactly; the 4 lines priced at £0.001 are rounded half-up to whole pence
  (to 0) and counted in the report. Lines without a CustomerID make orders without a customer.
  The customer is ``online-retail:<id>`` (``17850.0`` → ``17850``).

Customers are created as identity-only records (no name, phone or any invented personal data),
or found by that identity when they exist. A malformed line stops the import with an error
naming the line number, before anything is written for the file.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from vault.errors import InvalidValue
from vault.records import Order, OrderItem

FORMATS = ("cdnow", "online-retail")
CDNOW_PLATFORM = "cdnow"
RETAIL_PLATFORM = "online-retail"
RETAIL_COLUMNS = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedOrder:
    """An order as read from a file, its customer still an external id."""

    external_customer: str | None
    order: Order  # customer_id is None here; the importer fills it in


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedFile:
    platform: str
    orders: list[ParsedOrder]
    lines: int
    rounded_prices: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderImportReport:
    format: str
    lines: int
    orders: int
    orders_without_customer: int
    customers_created: int
    customers_found: int
    rounded_prices: int
    as_of: date | None = None
    """The day after the log's last order (shop time zone): recency is measured to it."""


def _bad(path: Path, line: int, reason: str) -> InvalidValue:
    return InvalidValue(field=f"{path.name} line {line}", reason=reason)


def _cents(text: str, path: Path, line: int) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _bad(path, line, "the amount is not a number") from None
    cents = value * 100
    if cents != cents.to_integral_value():
        raise _bad(path, line, "the amount has more than 2 decimals")
    return int(cents)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def parse_cdnow(path: Path, *, timezone: ZoneInfo) -> ParsedFile:
    """Read a CDNOW master or sample file (see the module docstring)."""
    parsed: list[ParsedOrder] = []
    per_day: dict[tuple[str, str], int] = {}
    lines = 0
    with path.open(encoding="ascii", errors="strict") as handle:
        for number, raw in enumerate(handle, start=1):
            parts = raw.split()
            if not parts or (number == 1 and not parts[0].isdigit()):
                continue  # blank line or the master file's header
            if len(parts) not in (4, 5):
                raise _bad(path, number, "expected 4 (master) or 5 (sample) columns")
            customer, stamp, dollars = parts[0], parts[-3], parts[-1]
            if not customer.isdigit() or not parts[-2].isdigit():
                raise _bad(path, number, "the customer id and CD count must be numbers")
            try:
                day = date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]))
            except ValueError:
                raise _bad(path, number, "the date is not YYYYMMDD") from None
            if len(stamp) != 8:
                raise _bad(path, number, "the date is not YYYYMMDD")
            customer = str(int(customer))
            key = (customer, stamp)
            per_day[key] = per_day.get(key, 0) + 1
            at = _midnight(day, timezone)
            parsed.append(
                ParsedOrder(
                    external_customer=customer,
                    order=Order(
                        platform=CDNOW_PLATFORM,
                        shop="cdnow",
                        order_id=f"{customer}-{stamp}-{per_day[key]}",
                        status="completed",
                        currency="USD",
                        total_amount=_cents(dollars, path, number),
                        created_at=at,
                        updated_at=at,
                        paid_at=at,
                    ),
                )
            )
            lines += 1
    return ParsedFile(platform=CDNOW_PLATFORM, orders=parsed, lines=lines)


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def parse_online_retail(path: Path, *, timezone: ZoneInfo) -> ParsedFile:
    """Read the UCI Online Retail CSV (see the module docstring)."""
    invoices: dict[str, list[tuple[int, dict[str, str]]]] = {}
    lines = 0
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != RETAIL_COLUMNS:
            raise _bad(path, 1, f"expected the columns {','.join(RETAIL_COLUMNS)}")
        for number, row in enumerate(reader, start=2):
            invoices.setdefault(row["InvoiceNo"], []).append((number, row))
            lines += 1
    rounded = 0
    parsed: list[ParsedOrder] = []
    for invoice, rows in invoices.items():
        first_line, first = rows[0]
        try:
            at = datetime.fromisoformat(first["InvoiceDate"]).replace(tzinfo=timezone)
        except ValueError:
            raise _bad(path, first_line, "InvoiceDate is not YYYY-MM-DD HH:MM:SS") from None
        customer_text = first["CustomerID"].strip()
        customer: str | None = None
        if customer_text:
            try:
                customer_number = Decimal(customer_text)
            except InvalidOperation:
                raise _bad(path, first_line, "CustomerID is not a number") from None
            if customer_number != customer_number.to_integral_value():
                raise _bad(path, first_line, "CustomerID is not a whole number")
            customer = str(int(customer_number))
        items: list[OrderItem] = []
        for number_, row in rows:
            if row["CustomerID"].strip() != customer_text:
                raise _bad(path, number_, "one invoice with two customers")
            try:
                quantity = int(row["Quantity"])
                price = Decimal(row["UnitPrice"]) * 100
            except (ValueError, InvalidOperation):
                raise _bad(path, number_, "Quantity or UnitPrice is not a number") from None
            pence = price.to_integral_value(rounding=ROUND_HALF_UP)
            if pence != price:
                rounded += 1
            items.append(
                OrderItem(
                    product_id=row["StockCode"] or "-",
                    product_name=(row["Description"] or "")[:500],
                    quantity=quantity,
                    unit_price=int(pence),
                )
            )
        parsed.append(
            ParsedOrder(
                external_customer=customer,
                order=Order(
                    platform=RETAIL_PLATFORM,
                    shop="online-retail",
                    order_id=invoice,
                    status="cancelled" if invoice.startswith("C") else "completed",
                    currency="GBP",
                    total_amount=sum(item.amount for item in items),
                    created_at=at,
                    updated_at=at,
                    paid_at=at,
                    items=items,
                ),
            )
        )
    return ParsedFile(platform=RETAIL_PLATFORM, orders=parsed, lines=lines, rounded_prices=rounded)


def parse(path: Path, fmt: str, *, timezone: ZoneInfo) -> ParsedFile:
    if fmt == "cdnow":
        return parse_cdnow(path, timezone=timezone)
    if fmt == "online-retail":
        return parse_online_retail(path, timezone=timezone)
    raise InvalidValue(field="format", reason=f"one of {', '.join(FORMATS)}")


def iter_batches(items: list[ParsedOrder], size: int) -> Iterator[list[ParsedOrder]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
