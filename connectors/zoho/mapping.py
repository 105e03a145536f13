"""Zoho fields ↔ the vault's field catalogue, as a connector setting.

The ``field_map`` setting is ``;``-separated entries ``vault_field=ZOHO_SPEC``::

    name=First_Name+Last_Name; email=Email; phone=Mobile|Phone; birthday=Date_of_Birth;
    address=Mailing_Street+Mailing_City+Mailing_State+Mailing_Zip+Mailing_Country

``A|B`` reads the first of A, B that has a value and writes A. ``A+B+…`` reads the parts that
have a value, joined with spaces in the order written (Latin order: given name first, street
first); when a part is written in Chinese, Japanese or Korean script they are joined without
spaces in the reverse order (family name first, country first: 张 + 伟 → 张伟, 中国 … 建国路 88 号).
Writing ``name`` splits the vault's name into the two parts (the family name is the last word of
a Latin name, the leading surname of a CJK one, compound surnames included); writing any other
joined field puts the whole value into the first part and clears the others, so that what is
read back is what was written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from vault.errors import ConfigError

DEFAULT_FIELD_MAPS: Final[Mapping[str, str]] = {
    "Contacts": (
        "name=First_Name+Last_Name; email=Email; phone=Mobile|Phone; "
        "address=Mailing_Street+Mailing_City+Mailing_State+Mailing_Zip+Mailing_Country; "
        "birthday=Date_of_Birth"
    ),
    "Leads": (
        "name=First_Name+Last_Name; email=Email; phone=Mobile|Phone; "
        "address=Street+City+State+Zip_Code+Country"
    ),
}

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_COMPOUND_SURNAMES: Final = frozenset(
    (  # noqa: SIM905  (a word list reads better as one string)
        "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 端木 "
        "独孤 南宫 西门 百里 呼延 第五 太史 申屠 闻人 澹台 公冶 宗政 濮阳 淳于 单于 钟离"
    ).split()
)


@dataclass(frozen=True, slots=True)
class _Entry:
    field: str
    parts: tuple[str, ...]
    joined: bool  # "+" (all parts make the value) rather than "|" (the first that has one)


class FieldMap:
    """A parsed ``field_map``: which Zoho fields make which vault field."""

    def __init__(self, entries: tuple[_Entry, ...]) -> None:
        self._entries = entries

    @classmethod
    def parse(cls, text: str) -> FieldMap:
        entries: list[_Entry] = []
        seen: set[str] = set()
        for raw in text.split(";"):
            item = raw.strip()
            if not item:
                continue
            field, sep, spec = (s.strip() for s in item.partition("="))
            if not sep or not field or not spec:
                raise ConfigError(f"zoho: field_map entry {item!r} is not vault_field=ZOHO_FIELD")
            if "+" in spec and "|" in spec:
                raise ConfigError(f"zoho: field_map entry for {field!r} mixes '+' and '|'")
            joined = "+" in spec
            parts = tuple(p.strip() for p in spec.split("+" if joined else "|"))
            if not all(_API_NAME.fullmatch(p) for p in parts):
                raise ConfigError(f"zoho: field_map entry for {field!r} names an invalid field")
            if field in seen:
                raise ConfigError(f"zoho: field_map maps {field!r} twice")
            seen.add(field)
            entries.append(_Entry(field, parts, joined))
        if not entries:
            raise ConfigError("zoho: field_map is empty")
        return cls(tuple(entries))

    @property
    def vault_fields(self) -> tuple[str, ...]:
        return tuple(e.field for e in self._entries)

    @property
    def zoho_fields(self) -> tuple[str, ...]:
        """Every Zoho field the map reads, in order, once each."""
        return tuple(dict.fromkeys(p for e in self._entries for p in e.parts))

    def read(self, record: Mapping[str, Any]) -> dict[str, str]:
        """The vault fields of one Zoho record (fields with no value are left out)."""
        out: dict[str, str] = {}
        get = record.get
        for entry in self._entries:
            if not entry.joined:
                for part in entry.parts:
                    value = _text(get(part))
                    if value:
                        out[entry.field] = value
                        break
                continue
            present = [v for v in map(_text, map(get, entry.parts)) if v]
            if not present:
                continue
            if any(_CJK.search(v) for v in present):
                out[entry.field] = "".join(reversed(present))
            else:
                out[entry.field] = " ".join(present)
        return out

    def write(self, fields: Mapping[str, str]) -> dict[str, str | None]:
        """The Zoho fields that carry these vault fields (unmapped vault fields are dropped)."""
        out: dict[str, str | None] = {}
        for entry in self._entries:
            value = fields.get(entry.field)
            if value is None or not value.strip():
                continue
            value = value.strip()
            if entry.joined and entry.field == "name" and len(entry.parts) == 2:
                given, family = split_name(value)
                out[entry.parts[0]] = given
                out[entry.parts[1]] = family
            else:
                out[entry.parts[0]] = value
                for other in entry.parts[1:]:
                    out[other] = None
        return out


def split_name(name: str) -> tuple[str | None, str]:
    """``(given, family)`` of a full name: Zoho's First_Name and Last_Name (which is required)."""
    name = " ".join(name.split())
    if _CJK.search(name) and " " not in name:
        surname_length = 2 if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else 1
        family, given = name[:surname_length], name[surname_length:]
        return (given or None), family
    given, _, family = name.rpartition(" ")
    return (given or None), family


def _text(value: Any) -> str:
    if type(value) is str:  # the common case, first
        return value.strip()
    if value is None or isinstance(value, bool | dict | list):
        return ""
    return str(value).strip()
