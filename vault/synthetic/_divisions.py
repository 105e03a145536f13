"""The packaged extract of China's county-level divisions (``data/divisions.csv``).

The file is built by ``tools/make_divisions_extract.py``; ``data/README.md`` gives its source,
licence and columns. It is read once per process and kept (about 3,000 small rows).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

DATA_FILE = "data/divisions.csv"


@dataclass(frozen=True, slots=True)
class Division:
    """One county-level area, with the names an address uses."""

    code: str
    """The 6-digit area code (the first six digits of a resident ID issued there)."""
    province: str
    city: str
    """The province name for municipalities (北京市), the county-level unit's own name for one
    directly under its province (济源市)."""
    county: str
    streets: tuple[str, ...]
    """Up to three township-level names; may be empty."""
    id_years: tuple[tuple[int | None, int | None], ...]
    """Inclusive birth-year ranges (``None`` = open) for which ``stdnum.cn.ric`` accepts this
    code in an ID number; empty when it accepts it for no year."""
    locality: str
    """The start of an address: :func:`locality` of the three names."""

    def accepts_birth_year(self, year: int) -> bool:
        """Whether an ID number with this area code and a birth date in ``year`` validates."""
        return any(
            (start is None or start <= year) and (end is None or year <= end)
            for start, end in self.id_years
        )


def locality(province: str, city: str, county: str) -> str:
    """Province, city and county without repeats: 北京市东城区, 广东省东莞市, 河南省济源市."""
    parts = [province]
    for part in (city, county):
        if part != parts[-1]:
            parts.append(part)
    return "".join(parts)


def _parse_years(text: str) -> tuple[tuple[int | None, int | None], ...]:
    if not text:
        return ()
    ranges: list[tuple[int | None, int | None]] = []
    for part in text.split(";"):
        start, _, end = part.partition("-")
        ranges.append((int(start) if start else None, int(end) if end else None))
    return tuple(ranges)


@cache
def divisions() -> tuple[Division, ...]:
    """Every county-level area in the extract, by area code."""
    text = files("vault.synthetic").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return tuple(
        Division(
            code=row["area_code"],
            province=row["province"],
            city=row["city"],
            county=row["county"],
            streets=tuple(name for name in row["streets"].split("|") if name),
            id_years=_parse_years(row["id_years"]),
            locality=locality(row["province"], row["city"], row["county"]),
        )
        for row in csv.DictReader(text.splitlines())
    )
