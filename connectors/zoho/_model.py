"""The Zoho sandbox's data model: module layouts, records with their duplicate-check index, and
Zoho's error envelopes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date
from typing import Any, Final

from vault.sandbox import Response, json_response

READ_ONLY: Final = frozenset(
    {"Full_Name", "Created_Time", "Modified_Time", "Created_By", "Modified_By", "Owner"}
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    api_name: str
    data_type: str  # text | textarea | email | phone | date | datetime | boolean | lookup
    length: int = 255
    unique: bool = False
    system_mandatory: bool = False
    custom: bool = False


def _layout(
    specs: Iterable[tuple[str, str, int]], unique: Iterable[str] = ()
) -> dict[str, FieldSpec]:
    unique_set = set(unique)
    out = {}
    for name, kind, length in specs:
        out[name] = FieldSpec(
            name,
            kind,
            length,
            unique=name in unique_set,
            system_mandatory=name == "Last_Name",
            custom=name in unique_set,
        )
    return out


_SYSTEM = [
    ("Full_Name", "text", 120),
    ("Owner", "lookup", 0),
    ("Created_By", "lookup", 0),
    ("Modified_By", "lookup", 0),
    ("Created_Time", "datetime", 0),
    ("Modified_Time", "datetime", 0),
    ("Description", "textarea", 32000),
    ("Lead_Source", "text", 120),
    ("Email_Opt_Out", "boolean", 0),
    ("Vault_Customer_ID", "text", 100),
]
LAYOUTS: Final[Mapping[str, dict[str, FieldSpec]]] = {
    "Contacts": _layout(
        [
            ("Salutation", "text", 25),
            ("First_Name", "text", 40),
            ("Last_Name", "text", 80),
            ("Email", "email", 100),
            ("Secondary_Email", "email", 100),
            ("Phone", "phone", 30),
            ("Mobile", "phone", 30),
            ("Home_Phone", "phone", 30),
            ("Other_Phone", "phone", 30),
            ("Mailing_Street", "text", 250),
            ("Mailing_City", "text", 100),
            ("Mailing_State", "text", 100),
            ("Mailing_Zip", "text", 30),
            ("Mailing_Country", "text", 100),
            ("Other_Street", "text", 250),
            ("Other_City", "text", 100),
            ("Other_State", "text", 100),
            ("Other_Zip", "text", 30),
            ("Other_Country", "text", 100),
            ("Date_of_Birth", "date", 0),
            ("Title", "text", 100),
            ("Department", "text", 100),
            *_SYSTEM,
        ],
        unique=["Vault_Customer_ID"],
    ),
    "Leads": _layout(
        [
            ("Salutation", "text", 25),
            ("First_Name", "text", 40),
            ("Last_Name", "text", 80),
            ("Company", "text", 200),
            ("Email", "email", 100),
            ("Secondary_Email", "email", 100),
            ("Phone", "phone", 30),
            ("Mobile", "phone", 30),
            ("Street", "text", 250),
            ("City", "text", 100),
            ("State", "text", 100),
            ("Zip_Code", "text", 30),
            ("Country", "text", 100),
            ("Lead_Status", "text", 120),
            *_SYSTEM,
        ],
        unique=["Vault_Customer_ID"],
    ),
}
SYSTEM_DUPLICATE_FIELD: Final = {"Contacts": "Email", "Leads": "Email"}
MODULE_IDS: Final = {"Contacts": "2179", "Leads": "2175"}

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"[0-9+\-() .xX]{1,30}")
_CJK = re.compile(r"[\u3400-\u9fff]")


# --- error envelopes ---------------------------------------------------------------------------


def zoho_error(status: int, code: str, message: str, **details: Any) -> Response:
    return json_response(
        {"code": code, "details": details, "message": message, "status": "error"}, status
    )


def record_error(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"code": code, "details": details, "message": message, "status": "error"}


class Refusal(Exception):
    """Raised inside a handler: answer with this Zoho error."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def refuse(status: int, code: str, message: str, **details: Any) -> Refusal:
    return Refusal(zoho_error(status, code, message, **details))


@dataclass(slots=True)
class ModuleData:
    name: str
    layout: dict[str, FieldSpec]
    records: dict[str, dict[str, Any]]  # id -> field values; times as epoch seconds (int)
    deleted: list[dict[str, Any]]
    version: int = 0
    # duplicate-check fields (Email, the unique ones) -> casefolded value -> ids
    index: dict[str, dict[str, set[str]]] = dataclass_field(default_factory=dict)

    def _keys(self, record: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        for name in self.index:
            value = record.get(name)
            if value not in (None, ""):
                yield name, str(value).casefold()

    def add(self, record: dict[str, Any]) -> None:
        self.records[record["id"]] = record
        for name, key in self._keys(record):
            self.index[name].setdefault(key, set()).add(record["id"])

    def change(self, record: dict[str, Any], values: Mapping[str, Any]) -> None:
        self._unindex(record)
        record.update(values)
        for name, key in self._keys(record):
            self.index[name].setdefault(key, set()).add(record["id"])

    def remove(self, record_id: str) -> dict[str, Any]:
        record = self.records.pop(record_id)
        self._unindex(record)
        return record

    def _unindex(self, record: Mapping[str, Any]) -> None:
        for name, key in self._keys(record):
            ids = self.index[name].get(key)
            if ids is not None:
                ids.discard(record["id"])
                if not ids:
                    del self.index[name][key]

    def find(self, name: str, value: Any) -> dict[str, Any] | None:
        """The oldest record whose ``name`` equals ``value`` (case-insensitive)."""
        wanted = str(value).casefold()
        if name in self.index:
            ids = self.index[name].get(wanted)
            return self.records[min(ids, key=int)] if ids else None
        for record in self.records.values():
            held = record.get(name)
            if held is not None and str(held).casefold() == wanted:
                return record
        return None


def full_name(given: Any, family: Any) -> str | None:
    parts = [str(p) for p in (given, family) if p]
    if not parts:
        return None
    if any(_CJK.search(p) for p in parts):
        return "".join(reversed(parts))
    return " ".join(parts)


def compare(held: Any, op: str, wanted: Any) -> bool:
    try:
        if op == "eq":
            return bool(held == wanted)
        if op == "ne":
            return bool(held != wanted)
        if op == "greater_than":
            return bool(held > wanted)
        if op == "greater_equal":
            return bool(held >= wanted)
        if op == "less_than":
            return bool(held < wanted)
        if op == "less_equal":
            return bool(held <= wanted)
    except TypeError:
        return False
    return False


def is_date(value: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True
