"""Masked views of field values, by the mask style the field catalogue gives each field.

``138****8000``, ``z***@qq.com``, ``张*`` / ``欧阳**``, ``110101********1234``, an address cut to
its province and city, a date cut to its year, free text hidden.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files

from vault.errors import ConfigError

STAR = "*"
# Two-character surnames (复姓) keep both characters: 欧阳娜娜 -> 欧阳**.
COMPOUND_SURNAMES = frozenset(
    """欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 端木 独孤
    南宫 西门 百里 呼延 万俟 申屠 太史 闻人 赫连 澹台 公冶 宗政 濮阳 淳于 单于 钟离 东郭""".split()  # noqa: SIM905
)


def _is_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def mask_phone(value: str) -> str:
    digits = value[3:] if value.startswith("+86") else value.lstrip("+")
    if len(digits) < 7:
        return STAR * len(digits)
    return digits[:3] + STAR * (len(digits) - 7) + digits[-4:]


def mask_email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at:
        return STAR * 3
    return (local[:1] or STAR) + STAR * 3 + "@" + domain


def mask_name(value: str) -> str:
    if _is_cjk(value):
        keep = 2 if value[:2] in COMPOUND_SURNAMES and len(value) > 2 else 1
        return value[:keep] + STAR * (len(value) - keep)
    return " ".join(word[:1] + STAR * (len(word) - 1) for word in value.split())


def mask_id_number(value: str) -> str:
    if len(value) < 10:
        return STAR * len(value)
    return value[:6] + STAR * (len(value) - 10) + value[-4:]


def mask_date(value: str) -> str:
    return value[:4] + "-**-**" if len(value) >= 4 else STAR * len(value)


def mask_partial(value: str) -> str:
    return STAR * max(len(value) - 4, 0) + value[-4:]


@cache
def _regions() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(province, cities) from the packaged extract of the administrative divisions."""
    try:
        text = files("vault.synthetic").joinpath("data/divisions.csv").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ConfigError("the packaged administrative divisions are missing") from exc
    cities: dict[str, set[str]] = {}
    for row in csv.DictReader(text.splitlines()):
        cities.setdefault(row["province"], set()).add(row["city"])
    return tuple(
        (province, tuple(sorted(names, key=len, reverse=True)))
        for province, names in sorted(cities.items(), key=lambda item: -len(item[0]))
    )


def mask_address(value: str) -> str:
    """Keep the province and city (北京市 for a municipality); hide the rest."""
    for province, cities in _regions():
        if value.startswith(province):
            rest = value[len(province) :]
            for city in cities:
                if city != province and rest.startswith(city):
                    return province + city + STAR * 3
            return province + STAR * 3
    return STAR * 3


MASKS = {
    "phone": mask_phone,
    "email": mask_email,
    "name": mask_name,
    "id_number": mask_id_number,
    "date": mask_date,
    "partial": mask_partial,
    "address": mask_address,
}


def mask(style: str, value: str) -> str | None:
    """The masked form of ``value``; ``None`` when the style hides the value entirely."""
    if style == "none":
        return value
    function = MASKS.get(style)
    return function(value) if function is not None else None
