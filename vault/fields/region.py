"""The region of an address: province and prefecture-level city codes, derived when it is written.

Group rules may address customers by province or city. The address is sealed under the
customer's key, so reading it for every group evaluation would mean decrypting everyone's
address. Instead :class:`vault.store.customers.CustomerStore` calls :func:`region_of` on the
plain value at the moment it writes the address (it has it in hand to seal it) and keeps only the
derived codes, in ``customer_regions``: the 2-digit province code (44 = 广东省) and the 4-digit
city code (4403 = 深圳市) of the national division codes. These are coarse — a city has millions
of people — and are the minimum a regional group needs; street, building and flat never leave
the sealed field. An address that names no known province or city gets no region row.

Names come from the packaged division extract (``vault/synthetic/data/divisions.csv``, the
National Bureau of Statistics 2023 codes): full names (广东省, 深圳市) and the usual short forms
(广东, 深圳, 内蒙古, 广西).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

from vault.synthetic._divisions import divisions

_PROVINCE_SUFFIXES = (
    "壮族自治区",
    "回族自治区",
    "维吾尔自治区",
    "特别行政区",
    "自治区",
    "省",
    "市",
)
_CITY_SUFFIXES = ("地区", "自治州", "盟", "市")
_LONGEST_NAME = 16  # 新疆维吾尔自治区 is 8; prefecture names reach 12 (…自治州)


@dataclass(frozen=True, slots=True)
class Region:
    province_code: str
    city_code: str | None


@dataclass(frozen=True, slots=True)
class _Names:
    provinces: dict[str, str]  # name or short name -> province code
    province_names: dict[str, str]  # province code -> full name
    cities: dict[str, dict[str, str]]  # province code -> {name or short name -> city code}
    city_names: dict[str, str]  # city code -> full name
    municipal_city: dict[str, str]  # province code -> its one city code (北京市 -> 1101)
    unique_cities: dict[str, tuple[str, str]]  # "深圳市" -> (province, city) where unambiguous


def _short(name: str, suffixes: tuple[str, ...]) -> str | None:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return None


@cache
def _names() -> _Names:
    provinces: dict[str, str] = {}
    province_names: dict[str, str] = {}
    cities: dict[str, dict[str, str]] = {}
    city_names: dict[str, str] = {}
    municipal: dict[str, str] = {}
    for division in divisions():
        province_code, city_code = division.code[:2], division.code[:4]
        province_names[province_code] = division.province
        provinces[division.province] = province_code
        short = _short(division.province, _PROVINCE_SUFFIXES)
        if short:
            provinces.setdefault(short, province_code)
        if division.city == division.province:
            municipal.setdefault(province_code, city_code)
        city_names.setdefault(city_code, division.city)
        names = cities.setdefault(province_code, {})
        names.setdefault(division.city, city_code)
        short = _short(division.city, _CITY_SUFFIXES)
        if short:
            names.setdefault(short, city_code)
    # A city name ending in 市 that names one city only, for addresses that start without the
    # province ("深圳市南山区…"); a name found in two provinces is left out.
    owners: dict[str, set[tuple[str, str]]] = {}
    for province_code, table in cities.items():
        for name, city_code in table.items():
            if name.endswith("市"):
                owners.setdefault(name, set()).add((province_code, city_code))
    unique = {name: next(iter(found)) for name, found in owners.items() if len(found) == 1}
    return _Names(provinces, province_names, cities, city_names, municipal, unique)


def _longest_prefix(text: str, names: dict[str, str]) -> tuple[str, str] | None:
    for length in range(min(len(text), _LONGEST_NAME), 1, -1):
        code = names.get(text[:length])
        if code is not None:
            return text[:length], code
    return None


def region_of(address: str) -> Region | None:
    """The province and city an address names at its start, or ``None``."""
    names = _names()
    text = "".join(unicodedata.normalize("NFKC", address).split())
    found = _longest_prefix(text, names.provinces)
    if found is None:
        # "深圳市南山区…" without the province: a city name that is unique across provinces.
        for length in range(min(len(text), _LONGEST_NAME), 1, -1):
            owner = names.unique_cities.get(text[:length])
            if owner is not None:
                return Region(*owner)
        return None
    name, province = found
    rest = text[len(name) :]
    city = _longest_prefix(rest, names.cities.get(province, {}))
    if city is not None:
        return Region(province, city[1])
    return Region(province, names.municipal_city.get(province))


def province_name(code: str | None) -> str | None:
    return _names().province_names.get(code) if code else None


def city_name(code: str | None) -> str | None:
    return _names().city_names.get(code) if code else None
