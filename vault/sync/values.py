"""Value conversions that every Chinese shop platform's connector needs, written once.

Amounts arrive in yuan (JSON numbers or strings, ``"12.90"``) and become integer fen exactly;
times arrive as ``yyyy-MM-dd HH:mm:ss`` in China time (UTC+8, no DST). A value that does not
convert is the platform breaking its protocol: ``PlatformProtocolError`` naming the field, never
the value.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from vault.errors import PlatformProtocolError

CHINA = timezone(timedelta(hours=8))
"""China time: UTC+8 without daylight saving (kept since 1991)."""
CHINA_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def yuan_to_fen(value: Any, *, field: str, connector: str, missing: int | None = None) -> int:
    """Yuan as the platform sends them to integer fen, exactly (no float rounding).

    ``missing``: what an absent amount (None or ``""``) is worth, where the platform leaves
    zero amounts out; without it an absent amount is a protocol error."""
    if missing is not None and value in (None, ""):
        return missing
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PlatformProtocolError(f"{field} is not an amount", connector=connector)
    try:
        amount = Decimal(str(value)) * 100
    except InvalidOperation as exc:
        raise PlatformProtocolError(f"{field} is not an amount", connector=connector) from exc
    if not amount.is_finite():
        raise PlatformProtocolError(f"{field} is not an amount", connector=connector)
    if amount != amount.to_integral_value():
        raise PlatformProtocolError(f"{field} has more than two decimals", connector=connector)
    return int(amount)


def china_time(value: Any, *, field: str, connector: str) -> datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` in China time, or None for an empty value."""
    if value in (None, ""):
        return None
    try:
        return datetime.strptime(str(value), CHINA_TIME_FORMAT).replace(tzinfo=CHINA)
    except ValueError as exc:
        raise PlatformProtocolError(f"{field} is not a time", connector=connector) from exc


def china_text(moment: datetime) -> str:
    """``moment`` as the platforms write times: ``yyyy-MM-dd HH:mm:ss`` in China time."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous: give it a time zone")
    return moment.astimezone(CHINA).strftime(CHINA_TIME_FORMAT)
